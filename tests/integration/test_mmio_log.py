"""
`machineserver run --mmio-log`: every access outside RAM and flash is a JSON
line naming the instruction that made it. Unicorn reports the block's start
as the PC inside memory hooks, so the engine finds the instruction by
walking the block (infer/locate.h); this checks the result against
arm-none-eabi-objdump for board devices (the CMSDK UART and the SCS on
mps2-an385) and inferred ones (an STM32F4 image, zero-config): the PC of a
read is a load, the PC of a write a store, on every line.
"""
import json
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MS_BUILD", os.path.join(ROOT, "build"))


def disassembly(elf):
    out = subprocess.run(["arm-none-eabi-objdump", "-d", elf], capture_output=True, text=True,
                         check=True).stdout
    insns = {}
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(?:[0-9a-f]{4}\s?){1,2}\s+(\S+)", line)
        if m:
            insns[int(m.group(1), 16)] = m.group(2)
    return insns


LOADS = re.compile(r"^(ldr|ldm|pop|ldrex|lda|tbb|tbh)")
STORES = re.compile(r"^(str|stm|push|strex|stl)")


@pytest.mark.parametrize("image,board", [("mps2-systick", "mps2-an385"),
                                         ("mps2-hello", "mps2-an385"),
                                         ("infer-stm32f4-spi-i2c-adc", None)])
def test_every_logged_pc_is_the_access(tmp_path, image, board):
    elf = os.path.join(BUILD, "firmware", image + ".elf")
    log = tmp_path / "mmio.jsonl"
    cmd = [os.path.join(BUILD, "machineserver"), "run", "--timeout", "0.05", "--mmio-log", str(log)]
    if board:
        cmd += ["--board", board]
    subprocess.run(cmd + [elf], capture_output=True, timeout=60)
    insns = disassembly(elf)
    lines = [json.loads(l) for l in open(log)]
    accesses = [e for e in lines if e.get("type") == "mmio"]
    assert len(accesses) > 20
    for e in accesses:
        mnemonic = insns.get(int(e["pc"], 16), "?")
        want = LOADS if e["dir"] == "r" else STORES
        assert want.match(mnemonic), "%s at %s is %r" % (e["dir"], e["pc"], mnemonic)
