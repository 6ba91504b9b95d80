"""
Real firmware on real QEMU through the daemon: Debian's U-Boot on virt,
Debian's MicroPython on microbit, our own firmware on mps2-an385 as ELF,
Intel HEX and raw binary, typed at over the console WebSocket.
"""
import re

import pytest

from conftest import MICROBIT_HEX, UBOOT_ELF, WS


def test_uboot_on_virt_answers_a_command(clean):
    d = clean
    with open(UBOOT_ELF, "rb") as f:
        data = f.read()
    s, prog, ws = d.boot("virt", data, "uboot.elf", cpu="cortex-a57", memory="256M")
    assert prog["format"] == "elf"
    assert prog["arch"] in ("aarch64", "arm64"), prog
    out = ws.read_until(re.compile(rb"Hit any key to stop autoboot|=> "), timeout=120)
    if b"=> " not in out:
        ws.send("\r")
    out = ws.read_until(b"=> ", timeout=120, start=out)
    ws.send("echo hello-$bootdelay-machineserver\r")
    out = ws.read_until(re.compile(rb"hello-\d+-machineserver"), timeout=60)
    ws.send("version\r")
    ws.read_until(b"U-Boot 2023", timeout=60)
    ws.close()


def test_micropython_on_microbit_prints_3(clean):
    d = clean
    with open(MICROBIT_HEX, "rb") as f:
        data = f.read()
    s, prog, ws = d.boot("microbit", data, "firmware.hex")
    assert prog["format"] == "ihex"
    # MicroPython prints its banner and ">>> " once the UART is up; a CR nudges the prompt.
    try:
        ws.read_until(b">>> ", timeout=10)
    except AssertionError:
        ws.send("\r")
        ws.read_until(b">>> ", timeout=60)
    ws.send("print(1+2)\r")
    ws.read_until(re.compile(rb"print\(1\+2\)\r\n3\r\n"), timeout=60)
    ws.close()


@pytest.mark.parametrize("kind", ["elf", "hex", "bin"])
def test_mps2_our_firmware_each_format(clean, fw, kind):
    d = clean
    extra = {"load_address": "0x0"} if kind == "bin" else None
    s, prog, ws = d.boot("mps2-an385", fw.read(kind), "mstest." + kind, load_extra=extra)
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    ws.send("inc\r")
    ws.read_until(b"counter=1\r\n", timeout=20)
    ws.send(b"binary frames work too\r")
    ws.read_until(b"echo: binary frames work too", timeout=20)
    ws.close()


def test_program_survives_reset(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready", timeout=30)
    ws.send("inc\r")
    ws.read_until(b"counter=1", timeout=20)
    assert d.post("/api/v1/sessions/%s/reset" % s["id"]).status == 200
    out = ws.read_until(b"mstest ready", timeout=30)
    d.wait_state(s["id"], "running")
    ws.send("get\r")
    # RAM is cleared by the firmware's start-up again after the reset.
    ws.read_until(re.compile(rb"mstest ready[\s\S]*counter=0\r\n"), timeout=20, start=out)
    ws.close()


def test_mps2_hello_from_make_firmware(clean, hello_fw):
    """firmware/mps2-hello, the firmware `make firmware` builds for every test."""
    d = clean
    s, prog, ws = d.boot("mps2-an385", hello_fw.read(), "mps2-hello.elf")
    ws.read_until(b"Hello from MachineServer\r\n> ", timeout=30)
    # This firmware polls the UART in a tight loop; input must still reach it.
    ws.send("hi there\r")
    ws.read_until(b"echo: hi there\r\n> ", timeout=30)
    ws.send("count\r")
    out = ws.read_until(re.compile(rb"count: \d+\r\n> "), timeout=30)
    assert int(re.search(rb"count: (\d+)", out).group(1)) > 0
    ws.close()


def test_two_console_clients_both_see_output(clean, fw):
    d = clean
    s, prog, ws1 = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws1.read_until(b"mstest ready", timeout=30)
    ws2 = d.console(s["id"])
    ws2.read_until(b"mstest ready", timeout=10)  # backlog
    ws1.send("from-one\r")
    ws1.read_until(b"echo: from-one", timeout=20)
    ws2.read_until(b"echo: from-one", timeout=20)
    ws1.close()
    ws2.close()


def test_console_ticket_url_opens_the_console(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready", timeout=30)
    ws.close()
    r = d.post("/api/v1/sessions/%s/console-ticket" % s["id"])
    assert r.status in (200, 201), r
    url = r.json()["url"]
    m = re.search(r"(/api/v1/sessions/%s/stream/console\?ticket=[0-9a-zA-Z]+)" % s["id"], url)
    assert m, url
    ws = WS(d.port, m.group(1))
    assert ws.status == 101, ws.handshake
    ws.read_until(b"mstest ready", timeout=10)
    ws.close()


def test_console_of_unknown_session_is_404(daemon):
    ws = WS(daemon.port, "/api/v1/sessions/sess_0000000000000000/stream/console")
    assert ws.status == 404, ws.handshake


def test_load_while_running_switches_program(clean, fw, hello_fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    h = d.upload(hello_fw.read(), "mps2-hello.elf").json()
    r = d.post("/api/v1/sessions/%s/program" % s["id"], {"program_id": h["id"]})
    assert r.status == 200, r
    assert r.json()["program_id"] == h["id"]
    ws.read_until(b"Hello from MachineServer", timeout=30)
    assert d.wait_state(s["id"], "running")["state"] == "running"
    ws.close()


def test_console_input_is_not_lost(clean, fw):
    """Typing faster than the guest reads: every byte reaches the UART, in order."""
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    n = 500
    ws.send("".join("line%d\r" % i for i in range(n)))  # one big message
    out = ws.read_until(b"echo: line%d\r\n" % (n - 1), timeout=120)
    assert [int(x) for x in re.findall(rb"echo: line(\d+)\r\n", out)] == list(range(n))
    for i in range(n):  # many small messages
        ws.send("x%d\r" % i)
    out = ws.read_until(b"echo: x%d\r\n" % (n - 1), timeout=120)
    assert [int(x) for x in re.findall(rb"echo: x(\d+)\r\n", out)] == list(range(n))
    ws.close()
