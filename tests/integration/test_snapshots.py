"""
Snapshots on real QEMU (QMP, hidden qcow2 drive): take one, change the
guest's RAM, restore, and see the old value; list, delete, refuse bad names
and boards that QEMU 7.2 cannot restore.
"""
import re
import signal

from conftest import UBOOT_ELF, assert_error, yaml_dump


def _get_counter(ws):
    ws.send("get\r")
    out = ws.read_until(re.compile(rb"counter=(\d+)\r\n> $"), timeout=20)
    return int(re.findall(rb"counter=(\d+)\r\n", out)[-1])


def test_snapshot_restore_brings_old_state_back(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    for i in range(1, 4):
        ws.send("inc\r")
        ws.read_until(b"counter=%d\r\n> " % i, timeout=20)
    r = d.post("/api/v1/sessions/%s/snapshots" % sid, {"name": "three"})
    assert r.status == 201, r
    snap = r.json()
    assert snap["name"] == "three" and snap["id"]
    for i in range(4, 8):
        ws.send("inc\r")
        ws.read_until(b"counter=%d\r\n> " % i, timeout=20)
    assert _get_counter(ws) == 7
    listed = d.get("/api/v1/sessions/%s/snapshots" % sid)
    assert listed.status == 200
    lj = listed.json()
    items = lj if isinstance(lj, list) else lj["snapshots"]
    assert "three" in [x["name"] for x in items]
    # Restore by name.
    r = d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "three"})
    assert r.status == 200, r
    assert d.wait_state(sid, "running")["state"] == "running"
    assert _get_counter(ws) == 3
    ws.send("inc\r")
    ws.read_until(b"counter=4\r\n", timeout=20)
    # Restore by id.
    r = d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": snap["id"]})
    assert r.status == 200, r
    assert _get_counter(ws) == 3
    # Same name twice is a conflict.
    assert_error(d.post("/api/v1/sessions/%s/snapshots" % sid, {"name": "three"}), 409)
    # Delete, then it is gone.
    r = d.delete("/api/v1/sessions/%s/snapshots/three" % sid)
    assert r.status in (200, 204), r
    assert_error(d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "three"}), 404)
    assert_error(d.delete("/api/v1/sessions/%s/snapshots/three" % sid), 404)
    # The failed restore left the session running and usable.
    assert d.session(sid)["state"] == "running"
    assert _get_counter(ws) == 3
    ws.close()


def test_snapshot_of_paused_session_stays_paused_after_restore(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    ws.send("inc\r")
    ws.read_until(b"counter=1\r\n> ", timeout=20)
    assert d.post("/api/v1/sessions/%s/pause" % sid).status == 200
    d.wait_state(sid, "paused")
    assert d.post("/api/v1/sessions/%s/snapshots" % sid, {"name": "p1"}).status == 201
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    ws.send("inc\r")
    ws.read_until(b"counter=2\r\n> ", timeout=20)
    assert d.post("/api/v1/sessions/%s/pause" % sid).status == 200
    d.wait_state(sid, "paused")
    assert d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "p1"}).status == 200
    assert d.session(sid)["state"] == "paused"
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    assert _get_counter(ws) == 1
    ws.close()


def test_snapshot_names_are_validated(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready", timeout=30)
    ws.close()
    sid = s["id"]
    for bad in ["", "a b", "x\ny", "$(touch /tmp/pwned)", "a;savevm b", "../etc", "-rf", ".hidden",
                "a" * 65, "snap\r\nloadvm x", "é", None, 5, ["a"], {"a": 1}]:
        r = d.post("/api/v1/sessions/%s/snapshots" % sid, {"name": bad})
        assert_error(r, 400)
    assert_error(d.post("/api/v1/sessions/%s/snapshots" % sid, {}), 400)
    # A lookup by a name that could never have been created: refused or not found, never sent to QEMU.
    r = d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "x\ninfo"})
    assert r.status in (400, 404), r
    assert_error(r, r.status)
    assert_error(d.post("/api/v1/sessions/%s/restore" % sid, {}), 400)
    assert_error(d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "never_taken"}), 404)
    lj = d.get("/api/v1/sessions/%s/snapshots" % sid).json()
    assert (lj if isinstance(lj, list) else lj["snapshots"]) == []
    assert d.session(sid)["state"] == "running"


def test_snapshot_unknown_session_404(daemon):
    assert_error(daemon.post("/api/v1/sessions/sess_0000000000000000/snapshots", {"name": "a"}), 404)
    assert_error(daemon.get("/api/v1/sessions/sess_0000000000000000/snapshots"), 404)


def test_lm3s6965evb_restore_is_501_and_qemu_survives(clean):
    """QEMU 7.2's loadvm aborts on lm3s6965evb: the daemon must refuse, not kill the emulator."""
    d = clean
    s = d.create_session("lm3s6965evb")
    sid = s["id"]
    saved = d.post("/api/v1/sessions/%s/snapshots" % sid, {"name": "s1"})
    assert saved.status in (201, 501), saved
    r = d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "s1"})
    if saved.status == 201:
        assert_error(r, 501)
    else:
        assert_error(saved, 501)
        assert r.status in (404, 501), r
    # The emulator is still there and the session is not in error.
    assert d.session(sid)["state"] in ("created", "paused")
    assert any(sid in " ".join(cmd) for pid, cmd in d.qemu_children()), d.qemu_children()


def test_snapshot_on_virt_uboot(clean):
    """A 256 MiB AArch64 machine: U-Boot's environment goes back to its snapshotted value."""
    d = clean
    with open(UBOOT_ELF, "rb") as f:
        s, prog, ws = d.boot("virt", f.read(), "uboot.elf", cpu="cortex-a57", memory="256M")
    sid = s["id"]
    out = ws.read_until(re.compile(rb"Hit any key to stop autoboot|=> "), timeout=120)
    if b"=> " not in out:
        ws.send("\r")
        ws.read_until(b"=> ", timeout=120, start=out)
    ws.send("setenv msvar before\r")
    ws.read_until(b"=> ", timeout=30)
    r = d.post("/api/v1/sessions/%s/snapshots" % sid, {"name": "uboot_before"})
    assert r.status == 201, r
    ws.send("setenv msvar after\r")
    ws.read_until(b"=> ", timeout=30)
    ws.send("echo [$msvar]\r")
    ws.read_until(b"[after]", timeout=30)
    r = d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "uboot_before"})
    assert r.status == 200, r
    assert d.session(sid)["state"] == "running"
    ws.send("echo [$msvar]\r")
    ws.read_until(b"[before]", timeout=30)
    ws.close()


def test_snapshot_quota_is_429(own_daemon, fw):
    d = own_daemon({"resources": {"max_snapshot_bytes": 100000}}).start()
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    assert_error(d.post("/api/v1/sessions/%s/snapshots" % s["id"], {"name": "big"}), 429)
    assert d.session(s["id"])["state"] == "running"
    ws.send("inc\r")
    ws.read_until(b"counter=1", timeout=30)
    ws.close()


def test_snapshots_survive_poweroff_and_daemon_restart(own_daemon, fw):
    make = own_daemon
    d = make(name="snaprestart").start()
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    for i in range(1, 4):
        ws.send("inc\r")
        ws.read_until(b"counter=%d\r\n> " % i, timeout=20)
    assert d.post("/api/v1/sessions/%s/snapshots" % sid, {"name": "three"}).status == 201
    ws.close()
    # Power cycle: a new QEMU process, the snapshot is still there and restores.
    assert d.post("/api/v1/sessions/%s/poweroff" % sid).status == 200
    assert_error(d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "three"}), 409)
    ws = d.console(sid)
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    assert d.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "three"}).status == 200
    ws.send("inc\r")
    ws.read_until(b"counter=4\r\n", timeout=20)
    ws.close()
    # Daemon restart: the record and the qcow2 survive.
    assert d.stop(signal.SIGTERM) == 0
    d2 = make(name="snaprestart")
    with open(d.config_path, "w") as f:
        f.write(yaml_dump(d.cfg) + "\n")
    d2.cfg, d2.port = d.cfg, d.port
    d2.start()
    lj = d2.get("/api/v1/sessions/%s/snapshots" % sid).json()
    assert "three" in [x["name"] for x in (lj if isinstance(lj, list) else lj["snapshots"])]
    ws = d2.console(sid)
    assert d2.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    assert d2.post("/api/v1/sessions/%s/restore" % sid, {"snapshot_id": "three"}).status == 200
    # The backlog holds the old "counter=4": a fresh marker ties the answer to this request.
    ws.send("inc\rafter-restart-mark\r")
    out = ws.read_until(re.compile(rb"counter=(\d+)\r\n> echo: after-restart-mark"), timeout=20)
    assert re.findall(rb"counter=(\d+)\r\n> echo: after-restart-mark", out)[-1] == b"4", out[-200:]
    ws.close()
