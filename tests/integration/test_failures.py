"""
Things going wrong for real: a QEMU child SIGKILLed, a guest that locks up
and makes QEMU abort, the session limit, SIGTERM with children running, and
a daemon restart that must reload its sessions.
"""
import os
import signal
import time

from conftest import assert_error, sessions_of, yaml_dump


def _running(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _child_of(d, sid):
    kids = [pid for pid, cmd in d.qemu_children() if any(sid in c for c in cmd)]
    assert len(kids) == 1, d.qemu_children()
    return kids[0]


def test_sigkilled_qemu_moves_session_to_error(own_daemon, fw):
    d = own_daemon().start()
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready", timeout=30)
    pid = _child_of(d, sid)
    os.kill(pid, signal.SIGKILL)
    e = d.wait_state(sid, "error", timeout=30)
    assert e["reason"], e
    assert "9" in e["reason"] or "kill" in e["reason"].lower(), e
    # The daemon keeps serving, the child was reaped, and new sessions work.
    assert d.alive()
    assert d.get("/health").status == 200
    time.sleep(0.5)
    assert pid not in [p for p, _ in d.qemu_children()]
    assert not os.path.exists("/proc/%d" % pid), "the daemon did not reap its dead child"
    s2, _, ws2 = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws2.read_until(b"mstest ready", timeout=30)
    ws2.close()
    # A control request on the dead session says why instead of pretending.
    r = d.post("/api/v1/sessions/%s/pause" % sid)
    assert_error(r, 409)
    # It can be deleted.
    assert d.delete("/api/v1/sessions/" + sid).status in (200, 204)
    ws.close()


def test_guest_lockup_gives_error_with_qemu_reason(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    ws.send("crash\r")
    e = d.wait_state(s["id"], "error", timeout=30)
    # QEMU's own words: "qemu: fatal: Lockup: can't escalate 3 to HardFault ..."
    assert "Lockup" in e["reason"], e
    assert d.get("/health").status == 200


def test_max_sessions_is_429(small_daemon):
    d = small_daemon
    try:
        a = d.create_session("mps2-an385")
        b = d.create_session("mps2-an385")
        r = d.post("/api/v1/sessions", {"backend": "qemu", "board_config": {"board": "mps2-an385"}})
        assert_error(r, 429)
        assert len(sessions_of(d.get("/api/v1/sessions").json())) == 2
        # Freeing one makes room again.
        d.delete("/api/v1/sessions/" + a["id"])
        c = d.create_session("mps2-an385")
        assert c["id"] not in (a["id"], b["id"])
    finally:
        d.delete_all_sessions()


def test_sigterm_stops_children_and_restart_reloads_sessions(own_daemon, fw):
    make = own_daemon
    d = make(name="restart").start()
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready", timeout=30)
    ws.close()
    idle = d.create_session("mps2-an385")
    kids = [pid for pid, _ in d.qemu_children()]
    assert len(kids) == 2
    assert d.stop(signal.SIGTERM) == 0, d.stderr_tail()
    for pid in kids:
        assert not _running(pid), "qemu %d outlived the daemon" % pid
    # Same config, same data directory.
    d2 = make(name="restart")
    assert d2.config_path == d.config_path and d2.data_dir == d.data_dir
    with open(d.config_path, "w") as f:
        f.write(yaml_dump(d.cfg) + "\n")
    d2.cfg, d2.port = d.cfg, d.port
    d2.start()
    ids = {x["id"]: x for x in sessions_of(d2.get("/api/v1/sessions").json())}
    assert sid in ids and idle["id"] in ids, ids
    assert ids[sid]["state"] == "stopped", ids[sid]
    assert ids[idle["id"]]["state"] == "stopped", ids[idle["id"]]
    assert ids[sid]["board"] == "mps2-an385"
    # Its console log from before the restart is still there.
    log = d2.get("/api/v1/sessions/%s/console" % sid)
    assert log.status == 200 and b"mstest ready" in log.body, log
    # A reloaded session can be deleted.
    assert d2.delete("/api/v1/sessions/" + idle["id"]).status == 200
    assert d2.get("/api/v1/sessions/" + idle["id"]).status == 404


def test_reloaded_session_powers_on_with_its_program(own_daemon, fw):
    make = own_daemon
    d = make(name="restart2").start()
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready", timeout=30)
    ws.close()
    assert d.stop(signal.SIGTERM) == 0
    d2 = make(name="restart2")
    with open(d.config_path, "w") as f:
        f.write(yaml_dump(d.cfg) + "\n")
    d2.cfg, d2.port = d.cfg, d.port
    d2.start()
    assert {x["id"]: x for x in sessions_of(d2.get("/api/v1/sessions").json())}[sid]["state"] == "stopped"
    # The reloaded session still has its program: power on and it runs again.
    ws = d2.console(sid)
    r = d2.post("/api/v1/sessions/%s/poweron" % sid)
    assert r.status == 200, r
    d2.wait_state(sid, "running")
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    ws.send("inc\r")
    ws.read_until(b"counter=1", timeout=20)
    ws.close()
    # Its console log from before the restart is still there.
    assert d2.get("/api/v1/sessions/%s/console" % sid).body.count(b"mstest ready") >= 2


def test_sigkilled_daemon_reattaches_to_live_qemu(own_daemon, fw):
    """The daemon dies hard, its QEMU lives on: the next daemon takes the session back."""
    make = own_daemon
    d = make(name="reattach").start()
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    ws.send("inc\r")
    ws.read_until(b"counter=1\r\n", timeout=30)
    ws.close()
    kids = [pid for pid, _ in d.qemu_children()]
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    d2 = make(name="reattach")
    with open(d.config_path, "w") as f:
        f.write(yaml_dump(d.cfg) + "\n")
    d2.cfg, d2.port = d.cfg, d.port
    d2.start()
    got = d2.session(sid)
    assert got["state"] == "running", got
    ws = d2.console(sid)
    ws.send("inc\r")
    ws.read_until(b"counter=2\r\n", timeout=30)  # the same guest, its RAM intact
    ws.close()
    assert d2.stop(signal.SIGTERM) == 0
    deadline = time.monotonic() + 20
    while any(_running(p) for p in kids):
        assert time.monotonic() < deadline, "reattached qemu outlived the daemon"
        time.sleep(0.2)
