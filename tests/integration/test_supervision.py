"""
How the daemon runs QEMU, seen from outside: the child's argv (-S, its own
-gdb port on loopback, no -s, no display, no network, QMP in a private
directory), the event stream of a session, the sessions gauge in /metrics,
ports freed by a dead child, and the idle-session reaper.
"""
import json
import os
import re
import signal
import socket
import stat
import time

from conftest import WS, assert_error, sessions_of


def test_qemu_command_line(clean):
    d = clean
    s = d.create_session("mps2-an385")
    kids = [cmd for pid, cmd in d.qemu_children() if any(s["id"] in c for c in cmd)]
    assert len(kids) == 1, d.qemu_children()
    argv = kids[0]
    assert os.path.basename(argv[0]).startswith("qemu-system-arm")
    assert "-S" in argv
    assert "-s" not in argv
    gdb = argv[argv.index("-gdb") + 1]
    if gdb.startswith("chardev:"):
        # The daemon's own listener on 127.0.0.1:gdb_port, handed over as an fd
        # (test_gdb_port_is_loopback_only checks the address).
        chardevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-chardev"]
        assert any(c.startswith("socket,id=%s," % gdb[8:]) and ",fd=" in c for c in chardevs), chardevs
    else:
        assert gdb == "tcp:127.0.0.1:%d" % s["gdb_port"]
    assert argv[argv.index("-display") + 1] == "none"
    assert argv[argv.index("-nic") + 1] == "none"
    assert argv[argv.index("-M" if "-M" in argv else "-machine") + 1].split(",")[0] == "mps2-an385"
    # The hidden qcow2 drive that makes snapshots work on boards without a block device.
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert any("if=none" in x and "format=qcow2" in x for x in drives), drives
    qmp = argv[argv.index("-qmp") + 1]
    m = re.match(r"unix:([^,]+)", qmp)
    assert m, qmp
    rundir = os.path.dirname(m.group(1))
    assert stat.S_IMODE(os.stat(rundir).st_mode) == 0o700, oct(os.stat(rundir).st_mode)


def _events(d, sid):
    r = d.get("/api/v1/sessions/%s/events?limit=1000" % sid)
    assert r.status == 200, r
    return r.json()


def test_events_record_the_life_of_a_session(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready", timeout=30)
    ev = WS(d.port, "/api/v1/sessions/%s/stream/events" % sid)
    assert ev.status == 101, ev.handshake
    assert d.post("/api/v1/sessions/%s/pause" % sid).status == 200
    d.wait_state(sid, "paused")
    seen = []
    deadline = time.monotonic() + 20
    while not any(e["type"] == "state" and e["data"]["state"] == "paused" for e in seen):
        op, data = ev.recv_frame(max(0.1, deadline - time.monotonic()))
        if op in (1, 2):
            for line in data.decode().splitlines():
                if line.strip():
                    seen.append(json.loads(line))
    for e in seen:
        assert e["session"] == sid and e["type"] and e["time"], e
    evs = _events(d, sid)
    types = [e["type"] for e in evs]
    assert "created" in types and "program_loaded" in types, types
    states = [e["data"]["state"] for e in evs if e["type"] == "state"]
    assert "running" in states and states[-1] == "paused", states
    assert_error(d.get("/api/v1/sessions/%s/events?limit=0" % sid), 400)
    ws.close()
    ev.close()


def test_metrics_count_sessions_by_state(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready", timeout=30)
    ws.close()
    d.create_session("mps2-an385")
    t = d.get("/metrics").text
    running = re.search(r'machineserver_sessions\{backend="qemu",state="running"\} (\d+)', t)
    created = re.search(r'machineserver_sessions\{backend="qemu",state="created"\} (\d+)', t)
    assert running and int(running.group(1)) == 1, t
    assert created and int(created.group(1)) == 1, t


def test_dead_child_frees_its_gdb_port(own_daemon, fw):
    d = own_daemon().start()
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready", timeout=30)
    ws.close()
    port = s["gdb_port"]
    pid = [p for p, cmd in d.qemu_children() if any(s["id"] in c for c in cmd)][0]
    os.kill(pid, signal.SIGKILL)
    d.wait_state(s["id"], "error")
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", port))  # nobody holds it any more
    finally:
        probe.close()
    # Deleting the dead session and creating new ones works; the port may be handed out again.
    d.delete("/api/v1/sessions/" + s["id"])
    s2 = d.create_session("mps2-an385")
    assert s2["gdb_port"]


def test_control_refused_in_wrong_state(clean):
    d = clean
    s = d.create_session("mps2-an385")
    sid = s["id"]
    assert d.post("/api/v1/sessions/%s/poweroff" % sid).status == 200
    d.wait_state(sid, "stopped")
    assert_error(d.post("/api/v1/sessions/%s/pause" % sid), 409)
    assert_error(d.post("/api/v1/sessions/%s/reset" % sid), 409)
    r = d.post("/api/v1/sessions/%s/snapshots" % sid, {"name": "off"})
    assert_error(r, 409)
    r = d.get("/api/v1/sessions/%s/devices" % sid)
    assert_error(r, 409)


def test_idle_sessions_are_reaped(own_daemon):
    d = own_daemon({"resources": {"session_timeout": 1}}).start()
    s = d.create_session("mps2-an385")
    deadline = time.monotonic() + 60
    # Poll the list: a request on the session itself counts as use and keeps it alive.
    while s["id"] in [x["id"] for x in sessions_of(d.get("/api/v1/sessions").json())]:
        assert time.monotonic() < deadline, "session %s was never reaped" % s["id"]
        time.sleep(0.5)
    assert_error(d.get("/api/v1/sessions/" + s["id"]), 404)
    assert not any(s["id"] in " ".join(cmd) for pid, cmd in d.qemu_children())


def test_audit_query_validation(daemon):
    for q in ("limit=0", "limit=100000", "limit=abc", "before=-1", "before=x", "limit="):
        assert_error(daemon.get("/api/v1/audit?" + q), 400)


def test_emulator_failure_is_502_or_error_with_qemu_reason(clean, fw):
    """A raw image loaded where the core cannot run it: QEMU aborts; the API says so in QEMU's words."""
    d = clean
    s = d.create_session("mps2-an385")
    sid = s["id"]
    b = d.upload(fw.read("bin"), "mstest.bin").json()
    r = d.post("/api/v1/sessions/%s/program" % sid, {"program_id": b["id"], "load_address": "0xfffffff0"})
    assert r.status == 200, r
    r = d.post("/api/v1/sessions/%s/poweron" % sid)
    if r.status != 200:
        assert_error(r, 502)
    e = d.wait_state(sid, "error", timeout=30)
    assert "Lockup" in e["reason"], e
    # From error, poweroff then a good program brings it back.
    assert d.post("/api/v1/sessions/%s/poweroff" % sid).status == 200
    p = d.upload(fw.read(), "mstest.elf").json()
    assert d.post("/api/v1/sessions/%s/program" % sid, {"program_id": p["id"]}).status == 200
    ws = d.console(sid)
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    ws.read_until(b"mstest ready", timeout=30)
    assert d.session(sid)["state"] == "running"
    ws.close()
