"""
Real-world firmware that nobody here wrote, for a family nothing in the
project describes: Debian's firmware-tomu ships Toboot, the USB DFU
bootloader of the Tomu board (Silicon Labs EFM32HG, Cortex-M0+). There is no
board file, no SVD and no model of its clock unit (CMU) or USB core: the
engine picks the CPU from the ELF's build attributes and infers every
peripheral while it runs. With no USB host attached, Toboot's expected
behaviour is to bring up its clocks and USB core and wait in its DFU loop;
the test checks that it gets there (its own symbols: bootloader_main,
usb_init, dfu_init), without a fault, and that two runs make the same
decisions and execute the same blocks.
"""
import json
import os
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MS_BUILD", os.path.join(ROOT, "build"))
TOBOOT = "/usr/lib/firmware-tomu/toboot.elf"
CMU = 0x400C8000  # EFM32HG clock management unit; CMU_STATUS is at +0x2c


def symbols(elf):
    out = subprocess.run(["arm-none-eabi-nm", elf], capture_output=True, text=True, check=True)
    syms = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16) & ~1
    return syms


def run_toboot(tmp_path, tag, *extra):
    bb = tmp_path / ("%s.bb" % tag)
    log = tmp_path / ("%s.jsonl" % tag)
    cmd = [os.path.join(BUILD, "machineserver"), "run", "--timeout", "0.05", "--bb-out", str(bb),
           "--mmio-log", str(log)] + list(extra) + [TOBOOT]
    r = subprocess.run(cmd, capture_output=True, timeout=120)
    decisions = []
    for line in open(log):
        ev = json.loads(line)
        if ev.get("type", "").startswith("infer."):
            # Host wall-clock measurements of the inference itself vary; the rest must not.
            ev.pop("latency_ns", None)
            ev.pop("map_ns", None)
            decisions.append(ev)
    blocks = [int(x, 16) for x in open(bb).read().split()]
    return r, blocks, decisions


@pytest.fixture
def toboot():
    if not os.path.isfile(TOBOOT):
        pytest.fail("%s missing: scripts/install-deps.sh installs firmware-tomu" % TOBOOT)
    return symbols(TOBOOT)


def test_toboot_reaches_its_dfu_loop_zero_config(tmp_path, toboot):
    r, blocks, decisions = run_toboot(tmp_path, "a")
    # Exit 0 without --expect: the run ended at its limit and nothing crashed.
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert b"lockup" not in r.stderr.lower() and b"fault" not in r.stderr.lower()
    reached = set(blocks)
    for fn in ("bootloader_main", "usb_init", "dfu_init"):
        assert toboot[fn] in reached, "%s (0x%08x) never executed" % (fn, toboot[fn])
    # Its clock unit was inferred, and its ready-bit polls were answered.
    regions = [int(d["base"], 16) for d in decisions if d["type"] == "infer.region"]
    assert CMU in regions
    polls = [d for d in decisions if d["type"] == "infer.poll" and int(d["addr"], 16) == CMU + 0x2C]
    assert polls, "no poll of CMU_STATUS was solved"


def test_toboot_runs_are_deterministic(tmp_path, toboot):
    r1, b1, d1 = run_toboot(tmp_path, "a")
    r2, b2, d2 = run_toboot(tmp_path, "b")
    assert r1.returncode == r2.returncode == 0
    assert b1 == b2
    assert d1 == d2


def test_toboot_through_the_daemon_with_an_empty_board_config(clean, toboot):
    """No board, no cpu: the session runs the core the ELF names (M0+), says so
    on its event stream, infers the clock unit and keeps running."""
    d = clean
    r = d.post("/api/v1/sessions", {"backend": "rehost", "board_config": {}})
    assert r.status == 201, r
    sid = r.json()["id"]
    up = d.upload(open(TOBOOT, "rb").read(), "toboot.elf")
    assert up.status == 201, up
    assert d.post("/api/v1/sessions/%s/program" % sid, {"program_id": up.json()["id"]}).status == 200
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    d.wait_state(sid, "running")
    evs = d.get("/api/v1/sessions/%s/events?limit=10000" % sid).json()
    cpu = [e["data"] for e in evs if e["type"] == "cpu"]
    assert cpu == [{"cpu": "cortex-m0plus", "from": "build attributes"}], cpu
    # Its clock unit shows up among the inferred peripherals once the firmware touched it.
    for _ in range(200):
        periph = d.get("/api/v1/sessions/%s/peripherals" % sid).json()["peripherals"]
        if any(int(p["base"], 16) == CMU for p in periph):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the CMU was never inferred: %s" % [p["base"] for p in periph])
    assert d.get("/api/v1/sessions/%s" % sid).json()["state"] == "running"
