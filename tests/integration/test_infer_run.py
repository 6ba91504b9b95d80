"""
Peripheral inference through the real engine and `machineserver run`: every
image of firmware/infer must pass zero-config and with its vendor SVD (its
pass criterion is in firmware/infer/<name>/build.mk), Debian's micro:bit
MicroPython must reach its REPL with no board file, and runs are
deterministic (same executed blocks and the same decisions, run after run).
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
            for key in ("INPUT", "EXPECT", "FW_SVD"):
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
    if mode == "svd":
        svd = os.path.join(SVD_DIR, meta.get("FW_SVD", "-"))
        if not os.path.isfile(svd):
            pytest.skip("vendor SVD %s not found beside the project (../shared/svd)" % meta.get("FW_SVD"))
        args += ["--svd", svd]
    r = run(fw, *args)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])


def test_micropython_zero_config_reaches_the_repl(tmp_path):
    if not os.path.isfile(MICROPYTHON):
        pytest.skip("firmware-microbit-micropython is not installed")
    logs = []
    for i in range(2):
        bb, mmio = tmp_path / ("bb%d" % i), tmp_path / ("mmio%d" % i)
        r = run(MICROPYTHON, "--input-text", "print(1+2)\\r", "--expect", "\\r\\n3\\r\\n>>> ",
                "--bb-out", str(bb), "--mmio-log", str(mmio))
        assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
        assert b"MicroPython" in r.stdout
        decisions = []
        for line in open(mmio):
            ev = json.loads(line)
            if ev.get("type", "").startswith("infer."):
                ev.pop("latency_ns", None)
                ev.pop("map_ns", None)
                decisions.append(ev)
        logs.append((bb.read_bytes(), decisions))
    assert logs[0][0] == logs[1][0], "executed blocks differ between two runs"
    assert logs[0][1] == logs[1][1], "inference decisions differ between two runs"
    assert len(logs[0][1]) > 0

