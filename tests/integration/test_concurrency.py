"""
Several clients at once, and clients that misbehave: parallel session churn,
a console reader that never reads while the guest floods, and a console socket
dropped mid-stream.
"""
import re
import socket
import threading

from conftest import WS


def test_parallel_session_churn(clean, fw):
    d = clean
    prog = d.upload(fw.read(), "mstest.elf").json()
    errors = []

    def worker(n):
        try:
            for _ in range(3):
                r = d.post("/api/v1/sessions", {"backend": "qemu", "board_config": {"board": "mps2-an385"}})
                if r.status != 201:
                    errors.append(("create", r))
                    continue
                sid = r.json()["id"]
                for step, body in (("program", {"program_id": prog["id"]}), ("poweron", None),
                                   ("pause", None), ("reset", None), ("poweroff", None)):
                    r = d.post("/api/v1/sessions/%s/%s" % (sid, step), body)
                    if r.status != 200:
                        errors.append((step, r))
                r = d.delete("/api/v1/sessions/" + sid)
                if r.status != 200:
                    errors.append(("delete", r))
        except Exception as e:  # a dropped connection is a failure too
            errors.append(("exception", repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:5]
    assert d.get("/health").status == 200
    assert d.get("/api/v1/sessions").json() in ([], {"sessions": []})
    assert d.qemu_children() == []


def test_stalled_console_client_does_not_block_others(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    # A client that connects and never reads a byte.
    stalled = WS(d.port, "/api/v1/sessions/%s/stream/console" % sid)
    assert stalled.status == 101
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ws.send("flood 30000\r")
    out = ws.read_until(b"FLOOD-DONE\r\n", timeout=240)
    nums = [int(x) for x in re.findall(rb"L(\d{8})\r\n", out)]
    assert nums == list(range(30000)), "lines lost or reordered for the reading client"
    ws.send("inc\r")
    ws.read_until(b"counter=1", timeout=30)
    stalled.sock.close()
    assert d.session(sid)["state"] == "running"
    ws.close()


def test_console_dropped_mid_stream(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    ws.send("flood 5000\r")
    ws.read_until(b"L00000100", timeout=30)
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    ws.sock.close()  # RST, no close frame
    ws = d.console(sid)
    ws.read_until(b"FLOOD-DONE", timeout=120)
    ws.send("inc\r")
    ws.read_until(b"counter=1", timeout=30)
    ws.close()
    assert d.get("/health").status == 200


def test_concurrent_control_of_one_session(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready", timeout=30)
    ws.close()
    bad = []
    ops = ["poweron", "pause", "reset", "poweron", "pause", "poweron"]

    def worker(k):
        for i in range(12):
            op = ops[(i + k) % len(ops)]
            try:
                r = d.post("/api/v1/sessions/%s/%s" % (sid, op))
            except Exception as e:
                bad.append((op, repr(e)))
                continue
            # 409 is an honest answer when another thread changed the state first.
            if r.status not in (200, 409):
                bad.append((op, r))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not bad, bad[:5]
    assert d.session(sid)["state"] in ("running", "paused")
    assert len([p for p, cmd in d.qemu_children() if any(sid in c for c in cmd)]) == 1
    ws = d.console(sid)
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    ws.send("inc\r")
    ws.read_until(re.compile(rb"counter=\d+"), timeout=30)
    ws.close()


def test_delete_while_gdb_holds_the_stub(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready", timeout=30)
    ws.close()
    g = socket.create_connection(("127.0.0.1", s["gdb_port"]), timeout=10)
    g.sendall(b"$?#3f")
    g.recv(64)  # the stub answers: the guest is now stopped under gdb
    r = d.delete("/api/v1/sessions/" + s["id"])
    assert r.status == 200, r
    assert d.qemu_children() == []
    g.close()
