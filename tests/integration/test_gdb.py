"""
Real gdb-multiarch attached to a session's GDB port: read registers and a
RAM symbol the console changed, detach, and the guest goes on running.
"""
import re
import subprocess
import time


def test_gdb_multiarch_attaches_and_reads_state(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    for i in range(1, 6):
        ws.send("inc\r")
        ws.read_until(b"counter=%d\r\n> " % i, timeout=20)
    port = d.session(sid)["gdb_port"]
    p = subprocess.run(["gdb-multiarch", "-q", "-nx", "--batch",
                        "-ex", "set confirm off",
                        "-ex", "target remote 127.0.0.1:%d" % port,
                        "-ex", "info registers",
                        "-ex", "print counter",
                        "-ex", "print/x vectors[1]",
                        "-ex", "detach",
                        fw.elf], capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert re.search(r"^pc\s+0x[0-9a-f]+", out, re.M), out
    assert re.search(r"^sp\s+0x2000[0-9a-f]{4}", out, re.M), out
    assert re.search(r"\$1 = 5\b", out), out
    entry = subprocess.run(["arm-none-eabi-nm", fw.elf], capture_output=True, text=True).stdout
    reset = int(re.search(r"([0-9a-f]+) T reset_handler", entry).group(1), 16)
    assert re.search(r"\$2 = 0x%x\b" % (reset | 1), out), out
    # Detach resumed the guest: it still answers on the console and the session says running.
    ws.send("inc\r")
    ws.read_until(b"counter=6\r\n", timeout=20)
    assert d.wait_state(sid, "running")["state"] == "running"
    ws.close()


def test_gdb_port_is_loopback_only(clean):
    s = clean.create_session("mps2-an385")
    port = s["gdb_port"]
    # create may answer before QEMU has bound its ports: wait for the listener.
    deadline = time.monotonic() + 20
    while True:
        out = open("/proc/net/tcp").read() + open("/proc/net/tcp6").read()
        listening = [l.split() for l in out.splitlines()[1:] if l.split()[3:4] == ["0A"]]
        mine = [l[1] for l in listening if int(l[1].split(":")[1], 16) == port]
        if mine:
            break
        assert time.monotonic() < deadline, "nothing listens on gdb port %d" % port
        time.sleep(0.05)
    for local in mine:
        addr = local.split(":")[0]
        assert addr in ("0100007F", "00000000000000000000000001000000"), local
