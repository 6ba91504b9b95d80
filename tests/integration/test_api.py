"""
The REST surface without booting firmware: health, metrics, capabilities,
OpenAPI, the session and program life cycle, the seed README's example
bodies sent exactly as curl sends them, and the audit log.
"""
import hashlib
import json
import os
import re
import subprocess

from conftest import assert_error, sessions_of


def test_health(daemon):
    r = daemon.get("/health")
    assert r.status == 200
    assert r.header("Content-Type").startswith("application/json")
    assert isinstance(r.json(), dict)


def test_capabilities_computed_from_installed_qemu(daemon):
    r = daemon.get("/api/v1/capabilities")
    assert r.status == 200, r
    caps = r.json()
    assert isinstance(caps, list)
    qemu = [c for c in caps if c["backend"] == "qemu"]
    assert len(qemu) == 1, caps
    q = qemu[0]
    for key in ("boards", "processors", "peripherals", "bus_types", "operations"):
        assert isinstance(q[key], list), key
    # What `qemu-system-arm -machine help` lists must be offered.
    out = subprocess.run(["qemu-system-arm", "-machine", "help"], capture_output=True, text=True).stdout
    machines = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    for board in ("mps2-an385", "microbit", "virt", "lm3s6965evb"):
        assert board in machines
        assert board in q["boards"], board
    assert "cortex-m3" in q["processors"]
    assert "cortex-a57" in q["processors"]  # from qemu-system-aarch64
    assert any("snapshot" in op for op in q["operations"]), q["operations"]


def test_openapi_describes_every_route(daemon):
    r = daemon.get("/api/v1/openapi.json")
    assert r.status == 200, r
    doc = r.json()
    assert str(doc.get("openapi", "")).startswith("3"), doc.keys()
    paths = doc["paths"]
    norm = {re.sub(r"\{[^}]+\}", "{}", p) for p in paths}
    for p in ("/health", "/metrics", "/api/v1/capabilities", "/api/v1/sessions", "/api/v1/sessions/{}",
              "/api/v1/sessions/{}/poweron", "/api/v1/sessions/{}/poweroff", "/api/v1/sessions/{}/reset",
              "/api/v1/programs", "/api/v1/programs/{}", "/api/v1/sessions/{}/program",
              "/api/v1/sessions/{}/stream/console", "/api/v1/sessions/{}/console",
              "/api/v1/sessions/{}/console-ticket", "/api/v1/sessions/{}/snapshots",
              "/api/v1/sessions/{}/restore", "/api/v1/sessions/{}/snapshots/{}",
              "/api/v1/sessions/{}/devices", "/api/v1/audit"):
        assert p in norm, p


def test_session_lifecycle_without_program(clean):
    d = clean
    s = d.create_session("mps2-an385")
    assert re.fullmatch(r"sess_[0-9a-zA-Z]+", s["id"]), s
    assert s["backend"] == "qemu"
    assert s["board"] == "mps2-an385"
    assert s["state"] == "created"
    assert isinstance(s["gdb_port"], int) and s["gdb_port"] > 0
    lo, hi = d.cfg["resources"]["gdb_port_min"], d.cfg["resources"]["gdb_port_max"]
    assert lo <= s["gdb_port"] <= hi
    assert "/api/v1/sessions/%s/stream/console" % s["id"] in s["console_url"]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", s["created_at"]), s
    listed = sessions_of(d.get("/api/v1/sessions").json())
    assert s["id"] in [x["id"] for x in listed]
    got = d.session(s["id"])
    assert got["id"] == s["id"] and got["state"] == "created"
    r = d.delete("/api/v1/sessions/" + s["id"])
    assert r.status in (200, 204), r
    assert_error(d.get("/api/v1/sessions/" + s["id"]), 404)
    assert_error(d.delete("/api/v1/sessions/" + s["id"]), 404)


def test_two_sessions_get_distinct_gdb_ports(clean):
    a = clean.create_session("mps2-an385")
    b = clean.create_session("mps2-an385")
    assert a["id"] != b["id"]
    assert a["gdb_port"] != b["gdb_port"]


def test_board_config_cpu_and_memory(clean):
    s = clean.create_session("virt", cpu="cortex-a57", memory="256M")
    assert s["board"] == "virt"
    assert clean.session(s["id"])["state"] == "created"


def _curl(d, *args):
    """Run curl exactly as the seed README does (no Content-Type unless the README sets one)."""
    p = subprocess.run(["curl", "-s", "-w", "\n%{http_code}"] + list(args), capture_output=True, text=True, timeout=60)
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


def test_seed_readme_examples_verbatim(clean, fw):
    d = clean
    base = "http://127.0.0.1:%d" % d.port
    # Section 2.
    code, body = _curl(d, "-X", "GET", base + "/api/v1/capabilities")
    assert code == 200 and isinstance(json.loads(body), list)
    # Section 3: with -H "Content-Type: application/json".
    code, body = _curl(d, "-X", "POST", base + "/api/v1/sessions", "-H", "Content-Type: application/json",
                       "-d", '{"backend": "qemu", "board_config": {"board": "virt"}}')
    assert code == 201, body
    sid = json.loads(body)["id"]
    code, body = _curl(d, "-X", "GET", base + "/api/v1/sessions")
    assert code == 200 and sid in body
    # Section 4: no Content-Type, so curl sends application/x-www-form-urlencoded.
    code, body = _curl(d, "-X", "POST", base + "/api/v1/sessions",
                       "-d", '{"backend": "qemu", "board_config": {"board": "mps2-an385"}}')
    assert code == 201, body
    sid2 = json.loads(body)["id"]
    # Section 6: upload with -F, then load by program_path (seed form) of the stored file.
    path = os.path.join(os.path.dirname(fw.elf), "firmware.elf")
    with open(path, "wb") as f:
        f.write(fw.read())
    code, body = _curl(d, "-X", "POST", base + "/api/v1/programs", "-F", "file=@" + path)
    assert code == 201, body
    prog = json.loads(body)
    stored = [os.path.join(d.data_dir, "programs", n) for n in os.listdir(os.path.join(d.data_dir, "programs"))
              if n.startswith(prog["sha256"])]
    assert stored, os.listdir(os.path.join(d.data_dir, "programs"))
    code, body = _curl(d, "-X", "POST", base + "/api/v1/sessions/%s/program" % sid2, "-H",
                       "Content-Type: application/json", "-d", json.dumps({"program_path": stored[0]}))
    assert code // 100 == 2, body
    # The README's own path lies outside the upload directory.
    code, body = _curl(d, "-X", "POST", base + "/api/v1/sessions/%s/program" % sid2, "-H",
                       "Content-Type: application/json", "-d", '{"program_path": "/tmp/firmware.elf"}')
    assert code == 403, body
    # Section 5.
    code, body = _curl(d, "-X", "POST", base + "/api/v1/sessions/%s/poweron" % sid2)
    assert code == 200, body
    assert d.wait_state(sid2, "running")
    # Section 7: snapshot and restore bodies as written.
    code, body = _curl(d, "-X", "POST", base + "/api/v1/sessions/%s/snapshots" % sid2, "-H",
                       "Content-Type: application/json", "-d", '{"name": "boot_complete"}')
    assert code == 201, body
    assert json.loads(body)["name"] == "boot_complete"
    code, body = _curl(d, "-X", "POST", base + "/api/v1/sessions/%s/restore" % sid2, "-H",
                       "Content-Type: application/json", "-d", '{"snapshot_id": "boot_complete"}')
    assert code == 200, body
    code, body = _curl(d, "-X", "POST", base + "/api/v1/sessions/%s/reset" % sid2)
    assert code == 200, body
    code, body = _curl(d, "-X", "POST", base + "/api/v1/sessions/%s/poweroff" % sid2)
    assert code == 200, body
    # Section 11.
    code, body = _curl(d, base + "/metrics")
    assert code == 200 and "machineserver_http_requests_total" in body


def test_control_state_machine(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready")
    assert d.wait_state(sid, "running")["state"] == "running"
    # poweron while running is idempotent.
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    r = d.post("/api/v1/sessions/%s/pause" % sid)
    assert r.status == 200, r
    d.wait_state(sid, "paused")
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    d.wait_state(sid, "running")
    r = d.post("/api/v1/sessions/%s/poweroff" % sid)
    assert r.status == 200, r
    d.wait_state(sid, "stopped")
    assert d.post("/api/v1/sessions/%s/poweroff" % sid).status == 200  # idempotent
    # A stopped session cannot be paused.
    assert_error(d.post("/api/v1/sessions/%s/pause" % sid), 409)
    # Power on again: the loaded program runs again (the banner comes a second time).
    ws.close()
    ws = d.console(sid)
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    d.wait_state(sid, "running")
    out = ws.read_until(re.compile(rb"(mstest ready[\s\S]*){2}"), timeout=30)
    assert out.count(b"mstest ready") >= 2
    ws.close()


def test_program_upload_formats_and_crud(clean, fw):
    d = clean
    elf = fw.read("elf")
    r = d.upload(elf, "mstest.elf")
    assert r.status == 201, r
    p = r.json()
    assert p["format"] == "elf"
    assert p["size"] == len(elf)
    assert p["sha256"] == hashlib.sha256(elf).hexdigest()
    assert p["arch"] in ("arm", "ARM", "armv7m", "arm32"), p
    # Entry point from the ELF header.
    hdr = subprocess.run(["arm-none-eabi-readelf", "-h", fw.elf], capture_output=True, text=True).stdout
    entry = int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", hdr).group(1), 16)
    assert int(p["entry_point"], 16) == entry
    # The same bytes give the same program.
    r2 = d.upload(elf, "again.elf")
    assert r2.status in (200, 201) and r2.json()["id"] == p["id"]
    r = d.upload(fw.read("hex"), "mstest.hex")
    assert r.status == 201, r
    assert r.json()["format"] == "ihex"
    r = d.upload(fw.read("bin"), "mstest.bin")
    assert r.status == 201, r
    assert r.json()["format"] == "bin"
    ids = [x["id"] for x in d.get("/api/v1/programs").json()]
    assert p["id"] in ids
    g = d.get("/api/v1/programs/" + p["id"])
    assert g.status == 200 and g.json()["sha256"] == p["sha256"]
    r = d.delete("/api/v1/programs/" + p["id"])
    assert r.status in (200, 204), r
    assert_error(d.get("/api/v1/programs/" + p["id"]), 404)
    assert_error(d.delete("/api/v1/programs/" + p["id"]), 404)
    for x in d.get("/api/v1/programs").json():
        d.delete("/api/v1/programs/" + x["id"])


def test_metrics_prometheus_text(daemon):
    daemon.get("/health")
    daemon.get("/api/v1/sessions/sess_doesnotexist")
    r = daemon.get("/metrics")
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain")
    t = r.text
    for fam in ("machineserver_http_requests_total", "machineserver_http_request_duration_seconds_bucket",
                "machineserver_sessions", "simulation_jobs_queued", "process_resident_memory_bytes"):
        assert fam in t, fam
    assert re.search(r'machineserver_http_requests_total\{[^}]*status="404"[^}]*\} \d+', t), t[:2000]
    # promtool's rules in miniature: every sample line is NAME{labels} VALUE.
    for line in t.splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEinfNa]+', line), line


def test_audit_log_records_mutations(clean):
    d = clean
    s = d.create_session("mps2-an385")
    d.delete("/api/v1/sessions/" + s["id"])
    r = d.get("/api/v1/audit?limit=5")
    assert r.status == 200, r
    j = r.json()
    entries = j if isinstance(j, list) else j.get("entries", j.get("items"))
    assert 0 < len(entries) <= 5
    e = entries[0]
    for k in ("time", "subject", "client", "method", "path", "status"):
        assert k in e, e
    paths = [(x["method"], x["path"], x["status"]) for x in entries]
    assert ("DELETE", "/api/v1/sessions/" + s["id"], 200) in paths or \
        ("DELETE", "/api/v1/sessions/" + s["id"], 204) in paths, paths
    assert ("POST", "/api/v1/sessions", 201) in paths, paths
    assert all(x["method"] != "GET" for x in entries), entries
    # Pagination: "before" gives strictly older entries.
    if isinstance(j, dict) and j.get("next"):
        nxt = d.get(j["next"] if j["next"].startswith("/") else "/api/v1/audit?limit=5&before=" + str(j["next"]))
        assert nxt.status == 200
    else:
        key = "id" if "id" in e else "time"
        r2 = d.get("/api/v1/audit?limit=5&before=%s" % entries[-1][key])
        assert r2.status == 200, r2
        j2 = r2.json()
        older = j2 if isinstance(j2, list) else j2.get("entries", j2.get("items"))
        seen = {json.dumps(x, sort_keys=True) for x in entries}
        assert not any(json.dumps(x, sort_keys=True) in seen for x in older)


def test_devices_read_from_qemu(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready")
    ws.close()
    r = d.get("/api/v1/sessions/%s/devices" % s["id"])
    assert r.status == 200, r
    j = r.json()
    regions = j if isinstance(j, list) else j.get("regions", j.get("devices"))
    assert regions, j
    for reg in regions:
        for k in ("name", "base", "size", "kind"):
            assert k in reg, reg
        assert reg["kind"] in ("ram", "rom", "io", "unimplemented"), reg

    def num(v):
        return int(v, 16) if isinstance(v, str) else v
    # The CMSDK UART0 the firmware talks to, and RAM at 0x20000000.
    assert any(num(x["base"]) <= 0x40004000 < num(x["base"]) + num(x["size"]) and x["kind"] == "io"
               for x in regions), regions
    assert any(num(x["base"]) <= 0x20000000 < num(x["base"]) + num(x["size"]) and x["kind"] == "ram"
               for x in regions), regions
    assert any(x["kind"] == "unimplemented" for x in regions), regions


def test_console_log_and_backlog(clean, fw):
    """Nothing printed before a client connects is lost: backlog on the WebSocket, full log over GET."""
    d = clean
    s = d.create_session("mps2-an385")
    p = d.upload(fw.read(), "mstest.elf").json()
    assert d.post("/api/v1/sessions/%s/program" % s["id"], {"program_id": p["id"]}).status // 100 == 2
    assert d.post("/api/v1/sessions/%s/poweron" % s["id"]).status == 200
    d.wait_state(s["id"], "running")
    # Connect only after it has printed.
    import time
    deadline = time.monotonic() + 30
    while b"mstest ready" not in d.get("/api/v1/sessions/%s/console" % s["id"]).body:
        assert time.monotonic() < deadline, d.get("/api/v1/sessions/%s/console" % s["id"])
        time.sleep(0.1)
    ws = d.console(s["id"])
    ws.read_until(b"mstest ready\r\n> ", timeout=10)
    ws.send("hello world\r")
    ws.read_until(b"echo: hello world", timeout=20)
    ws.close()
    log = d.get("/api/v1/sessions/%s/console" % s["id"])
    assert log.status == 200
    assert log.header("Content-Type").startswith("text/plain")
    assert b"echo: hello world" in log.body
