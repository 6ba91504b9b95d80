"""
A session's backend state is used only while it exists.

Three ways the daemon used to crash (SIGSEGV, or glibc aborting on a
corrupted heap), found while hunting finding F12:
* console input arriving while the session is deleted: console writes do
  not take the session's operation lock, and reached the backend after its
  destroy (rehost: NULL engine; QEMU: freed session state);
* a control request that found the session just before a DELETE and ran
  after it (rehost: NULL engine);
* any control request or console byte on a rehost session reloaded after a
  daemon restart: the in-process engine had died with the old daemon and
  nothing set a new one up.
"""
import os
import signal
import threading

import pytest

from conftest import WS, yaml_dump

MICROPYTHON = "/usr/share/firmware-microbit-micropython/firmware.hex"
# The QEMU rounds are slower: a guest that does not read its UART makes each
# console write wait (up to a second) for room.
REHOST_ROUNDS = 8
QEMU_ROUNDS = 4


def rehost_session(d):
    r = d.post("/api/v1/sessions", {"backend": "rehost", "board_config": {"cpu": "cortex-m0"}})
    assert r.status == 201, r
    return r.json()["id"]


def hammer(d, sid, stop, errors):
    """Threads that type into console streams and send control requests until stop is set.
    Returns once every thread has done its first write or request."""
    started = []

    def typer(ws, ev):
        try:
            while not stop.is_set():
                ws.send(b"x" * 64)
                ev.set()
        except OSError:
            pass  # the daemon closed the stream: the session is gone
        ev.set()
        ws.close()

    def controller(ev):
        while not stop.is_set():
            for op in ("reset", "poweron", "pause", "poweroff"):
                try:
                    r = d.post("/api/v1/sessions/%s/%s" % (sid, op), timeout=30)
                except OSError as ex:
                    errors.append("%s: %s" % (op, ex))
                    ev.set()
                    return
                if r.status not in (200, 404, 409):
                    errors.append("%s: %r" % (op, r))
                ev.set()

    threads = []
    for _ in range(2):
        ws = WS(d.port, "/api/v1/sessions/%s/stream/console" % sid)
        assert ws.status == 101, ws.handshake
        started.append(threading.Event())
        threads.append(threading.Thread(target=typer, args=(ws, started[-1])))
    for _ in range(1):
        started.append(threading.Event())
        threads.append(threading.Thread(target=controller, args=(started[-1],)))
    for t in threads:
        t.start()
    for ev in started:
        ev.wait(30)
    return threads


def test_delete_while_typing_and_controlling(own_daemon):
    d = own_daemon().start()
    errors = []
    for i in range(REHOST_ROUNDS + QEMU_ROUNDS):
        sid = rehost_session(d) if i < REHOST_ROUNDS else d.create_session("mps2-an385")["id"]
        stop = threading.Event()
        threads = hammer(d, sid, stop, errors)
        r = d.delete("/api/v1/sessions/" + sid)
        stop.set()
        for t in threads:
            t.join()
        assert r.status == 200, r
        assert d.alive(), "round %d: the daemon died:\n%s" % (i, d.stderr_tail())
        assert not errors, errors
    assert d.stop() == 0, d.stderr_tail()


def test_rehost_session_runs_again_after_restart(own_daemon):
    if not os.path.isfile(MICROPYTHON):
        pytest.skip("firmware-microbit-micropython is not installed")
    d = own_daemon(name="rehost-restart").start()
    sid = rehost_session(d)
    bare = rehost_session(d)
    r = d.upload(open(MICROPYTHON, "rb").read(), "micropython.hex")
    assert r.status == 201, r
    assert d.post("/api/v1/sessions/%s/program" % sid, {"program_id": r.json()["id"]}).status == 200
    ws = d.console(sid)
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    ws.read_until(b">>> ", timeout=30)
    ws.close()
    assert d.stop(signal.SIGTERM) == 0, d.stderr_tail()

    d2 = own_daemon(name="rehost-restart")
    with open(d.config_path, "w") as f:
        f.write(yaml_dump(d.cfg) + "\n")
    d2.cfg, d2.port = d.cfg, d.port
    d2.start()
    assert d2.session(sid)["state"] == "stopped"
    # Without a program: refused with the usual error, not a crash.
    r = d2.post("/api/v1/sessions/%s/poweron" % bare)
    assert r.status == 409 and r.json()["error"]["code"] == "no_program", r
    ws = d2.console(bare)
    ws.send(b"typed into a machine that never ran\r")
    ws.close()
    # With one: it boots again from its program.
    ws = d2.console(sid)
    start = len(d2.get("/api/v1/sessions/%s/console" % sid).body)
    ws.read_until(b">>> ", timeout=30)  # the backlog from before the restart
    assert d2.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    assert d2.session(sid)["state"] == "running"
    ws.send(b"print(20+22)\r")
    ws.read_until(b"\r\n42\r\n>>> ", timeout=30)
    ws.close()
    assert len(d2.get("/api/v1/sessions/%s/console" % sid).body) > start
    for op in ("reset", "pause", "poweroff", "poweron"):
        assert d2.post("/api/v1/sessions/%s/%s" % (sid, op)).status == 200, op
    assert d2.delete("/api/v1/sessions/" + sid).status == 200
    assert d2.stop() == 0, d2.stderr_tail()
