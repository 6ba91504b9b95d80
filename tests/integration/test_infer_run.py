"""
Peripheral inference through the real engine and `machineserver run`: every
image of firmware/infer must pass zero-config and with its vendor SVD (its
pass criterion is in firmware/infer/<name>/build.mk), Debian's micro:bit
MicroPython must reach its REPL with no board file, and runs are
deterministic (same executed blocks and the same decisions, run after run).
Images with an EVENTS file (external events: GPIO levels and their
interrupts) are run with `--events`.
"""
import glob
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MS_BUILD", os.path.join(ROOT, "build"))
SVD_DIR = os.path.join(ROOT, "..", "shared", "svd")
MICROPYTHON = "/usr/share/firmware-microbit-micropython/firmware.hex"


def corpus():
    out = []
    for mk in sorted(glob.glob(os.path.join(ROOT, "firmware", "infer", "*", "build.mk"))):
        meta = {}
        for line in open(mk):
            for key in ("INPUT", "EXPECT", "FW_SVD", "EVENTS"):
                if line.startswith("# %s: " % key):
                    meta[key] = line[len("# %s: " % key):].rstrip("\n")
        out.append((os.path.basename(os.path.dirname(mk)), meta))
    return out


def run(fw, *args, timeout=60):
    cmd = [os.path.join(BUILD, "machineserver"), "run", "--backend", "rehost", "--timeout", "20"]
    cmd += list(args) + [fw]
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


@pytest.mark.parametrize("name,meta", corpus(), ids=[n for n, _ in corpus()])
@pytest.mark.parametrize("mode", ["zero", "svd"])
def test_corpus_passes(name, meta, mode):
    fw = os.path.join(BUILD, "firmware", "infer-%s.elf" % name)
    args = ["--input-text", meta.get("INPUT", ""), "--expect", meta["EXPECT"]]
    if "EVENTS" in meta:
        args += ["--events", os.path.join(ROOT, "firmware", "infer", name, meta["EVENTS"])]
    if mode == "svd":
        svd = os.path.join(SVD_DIR, meta.get("FW_SVD", "-"))
        if not os.path.isfile(svd):
            pytest.skip("vendor SVD %s not found beside the project (../shared/svd)" % meta.get("FW_SVD"))
        args += ["--svd", svd]
    r = run(fw, *args)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])


def twice(tmp_path, fw, *args):
    """Run fw twice; returns [(executed blocks, decisions, stdout)] per run."""
    logs = []
    for i in range(2):
        bb, mmio = tmp_path / ("bb%d" % i), tmp_path / ("mmio%d" % i)
        r = run(fw, *args, "--bb-out", str(bb), "--mmio-log", str(mmio))
        assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
        decisions = []
        for line in open(mmio):
            ev = json.loads(line)
            if ev.get("type", "").startswith("infer."):
                ev.pop("latency_ns", None)
                ev.pop("map_ns", None)
                decisions.append(ev)
        logs.append((bb.read_bytes(), decisions, r.stdout))
    assert logs[0][0] == logs[1][0], "executed blocks differ between two runs"
    assert logs[0][1] == logs[1][1], "inference decisions differ between two runs"
    assert len(logs[0][1]) > 0
    return logs


def test_micropython_zero_config_reaches_the_repl(tmp_path):
    if not os.path.isfile(MICROPYTHON):
        pytest.skip("firmware-microbit-micropython is not installed")
    logs = twice(tmp_path, MICROPYTHON, "--input-text", "print(1+2)\\r", "--expect",
                 "\\r\\n3\\r\\n>>> ")
    assert b"MicroPython" in logs[0][2]


def test_interrupt_only_transmit_deterministic(tmp_path):
    """stm32f4-uart-txirq: the console comes from the TXE interrupt alone, the same way twice."""
    fw = os.path.join(BUILD, "firmware", "infer-stm32f4-uart-txirq.elf")
    logs = twice(tmp_path, fw, "--input-text", "irq\\r", "--expect", "got: irq\\r\\nPASS")
    kinds = [(ev["type"], ev.get("model")) for ev in logs[0][1]]
    assert ("infer.irq", "tx-irq") in kinds
    assert ("infer.register", "tx") in kinds
    assert ("infer.register", "rx-ready") in kinds



def decisions(path):
    out = []
    for line in open(path):
        ev = json.loads(line)
        if ev.get("type", "").startswith("infer."):
            ev.pop("latency_ns", None)
            ev.pop("map_ns", None)
            out.append(ev)
    return out


GPIO_IMAGES = {
    # image: (pending flag the handler tests, how the firmware clears it)
    "stm32f1-exti": ({"addr": "0x40010414", "mask": "0x1"}, "write-1"),
    "nrf52-gpiote": ({"addr": "0x40006100", "mask": "0x1"}, "write-0"),
}


@pytest.mark.parametrize("name", sorted(GPIO_IMAGES))
@pytest.mark.parametrize("mode", ["zero", "svd"])
def test_gpio_external_interrupt_is_deterministic(tmp_path, name, mode):
    """The same events give the same console, blocks and decisions; the
    third edge, after the firmware disabled the line in the peripheral, is
    held back with its reason; the flag is acknowledged the image's way."""
    meta = dict(corpus())[name]
    fw = os.path.join(BUILD, "firmware", "infer-%s.elf" % name)
    args = ["--events", os.path.join(ROOT, "firmware", "infer", name, meta["EVENTS"]),
            "--expect", meta["EXPECT"]]
    if mode == "svd":
        svd = os.path.join(SVD_DIR, meta["FW_SVD"])
        if not os.path.isfile(svd):
            pytest.skip("vendor SVD %s not found beside the project (../shared/svd)" % meta["FW_SVD"])
        args += ["--svd", svd]
    runs = []
    for i in range(2):
        bb, mmio = tmp_path / ("bb%d" % i), tmp_path / ("mmio%d" % i)
        r = run(fw, *args, "--bb-out", str(bb), "--mmio-log", str(mmio))
        assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
        runs.append((r.stdout, bb.read_bytes(), decisions(mmio)))
    assert runs[0] == runs[1], "console, executed blocks or decisions differ between two runs"
    flag, clear = GPIO_IMAGES[name]
    dec = runs[0][2]
    injects = [d for d in dec if d["type"] == "infer.inject"]
    assert [d["raised"] for d in injects] == [True, True, False], injects
    assert all(d["flag"] == flag for d in injects), injects
    acks = [d for d in dec if d.get("model") == "event-flag" and d["type"] == "infer.register"]
    assert [a["clear"] for a in acks] == [clear], acks


def test_events_file_errors_name_the_line(tmp_path):
    fw = os.path.join(BUILD, "firmware", "infer-stm32f1-exti.elf")
    bad = tmp_path / "ev.jsonl"
    bad.write_text('{"at_us": 1000, "kind": "gpio", "addr": "0x40010808", "mask": 1, "value": 1}\n'
                   '{"at_us": 2000, "kind": "gpio", "addr": "0x40010808", "mask": 1, "value": 1, "irq": "6"}\n')
    r = run(fw, "--events", str(bad))
    assert r.returncode == 4
    assert ("%s:2:" % bad).encode() in r.stderr, r.stderr
    bad.write_text('{"at_us": 1000, "kind": "gpio", "addr": "0x40010808", "mask": 1, "value": 1, "irq": 9}\n')
    r = run(fw, "--events", str(bad))
    assert r.returncode == 4
    assert ("%s:1: event at 1000 us refused: interrupt 9 is not enabled" % bad).encode() in r.stderr, r.stderr


@pytest.mark.parametrize("level,shown", [(0, b"0"), (0x20000, b"1")])
def test_micropython_reads_an_injected_pin(tmp_path, level, shown):
    """Real firmware nobody here wrote reads an injected input level: the
    micro:bit's button A is P0.17 (pin5); MicroPython's read_digital() of
    it shows the level injected on the nRF51 GPIO IN register, zero-config."""
    if not os.path.isfile(MICROPYTHON):
        pytest.skip("firmware-microbit-micropython is not installed")
    ev = tmp_path / "ev.jsonl"
    # Released first (the reset value of IN is 0), then the level under test.
    ev.write_text("".join(json.dumps({"at_us": t, "kind": "gpio", "addr": "0x50000510",
                                      "mask": "0x20000", "value": v}) + "\n"
                          for t, v in ((500, 0x20000), (1000, level))))
    r = run(MICROPYTHON, "--events", str(ev), "--input-text", "print(pin5.read_digital())\\r",
            "--expect", "\\r\\n%s\\r\\n>>> " % shown.decode())
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])


def test_hal_style_transmit_complete_deterministic(tmp_path):
    """stm32f4-hal-uart-it: handle in RAM, TXE then TC interrupts, the same way twice."""
    fw = os.path.join(BUILD, "firmware", "infer-stm32f4-hal-uart-it.elf")
    logs = twice(tmp_path, fw, "--input-text", "hal\\r", "--expect", "got: hal\\r\\nPASS")
    kinds = [(ev["type"], ev.get("model")) for ev in logs[0][1]]
    assert ("infer.irq", "tx-irq") in kinds
    assert ("infer.irq", "tx-done-irq") in kinds
    assert ("infer.register", "rx-ready") in kinds
