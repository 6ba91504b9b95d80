"""
Hostile and broken input, each answered with its 4xx and the one error
shape; afterwards the daemon still serves and has not leaked descriptors or
spool files.
"""
import json
import os
import socket
import struct

import pytest

from conftest import WSClosed, assert_error, multipart

SESSIONS = "/api/v1/sessions"
GOOD = {"backend": "qemu", "board_config": {"board": "mps2-an385"}}


@pytest.mark.parametrize("body", [
    b"{",
    b'{"backend": "qemu",}',
    b'{"backend": "qemu", "board_config": {"board": "mps2-an385"}} trailing',
    b"null",
    b"[]",
    b'"qemu"',
    b"123",
    b'{"backend": "\xff\xfe"}',
    b'{"backend": "qemu", "backend": "qemu", "board_config": {"board": "mps2-an385"}}',
    b"[" * 100000 + b"]" * 100000,
    b'{"a":' * 50000 + b"1" + b"}" * 50000,
    b"\x00\x01\x02",
    b'{"backend": "qemu", "board_config": {"board": "mps2-an385"}}\x00',
])
def test_malformed_json(daemon, body):
    r = daemon.post(SESSIONS, body, headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_empty_body(daemon):
    assert_error(daemon.post(SESSIONS, b"", headers={"Content-Type": "application/json"}), 400)


@pytest.mark.parametrize("body", [
    {"backend": 5, "board_config": {"board": "mps2-an385"}},
    {"backend": "qemu", "board_config": "mps2-an385"},
    {"backend": "qemu", "board_config": {"board": 5}},
    {"backend": "qemu", "board_config": {"board": None}},
    {"backend": "qemu", "board_config": {}},
    {"backend": "qemu"},
    {"board_config": {"board": "mps2-an385"}},
    {"backend": "qemu", "board_config": {"board": "mps2-an385", "memory": "lots"}},
    {"backend": "qemu", "board_config": {"board": "mps2-an385", "memory": -1}},
    {"backend": "qemu", "board_config": {"board": "mps2-an385", "memory": "256M -monitor stdio"}},
])
def test_wrong_field_types_and_missing_fields(daemon, body):
    assert_error(daemon.post(SESSIONS, body), 400)


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "image/png",
                                   "multipart/form-data; boundary=x"])
def test_wrong_content_type_for_json_route(daemon, ctype):
    r = daemon.post(SESSIONS, json.dumps(GOOD), headers={"Content-Type": ctype})
    assert_error(r, 415)


def test_wrong_content_type_for_upload(daemon, fw):
    assert_error(daemon.post("/api/v1/programs", {"file": "x"}), 415)
    assert_error(daemon.post("/api/v1/programs", fw.read(), headers={"Content-Type": "text/plain"}), 415)
    assert_error(daemon.post("/api/v1/programs", fw.read()), 415)
    # The documented alternative to multipart: the raw bytes as application/octet-stream.
    r = daemon.post("/api/v1/programs", fw.read(), headers={"Content-Type": "application/octet-stream"})
    assert r.status == 201 and r.json()["format"] == "elf", r


def test_upload_without_file_field(daemon, fw):
    body, ctype = multipart([("name", "x")], [("data", "fw.elf", fw.read())])
    assert_error(daemon.post("/api/v1/programs", body, headers={"Content-Type": ctype}), 400)


def test_truncated_multipart(daemon, fw):
    body, ctype = multipart([], [("file", "fw.elf", fw.read())])
    assert_error(daemon.post("/api/v1/programs", body[:len(body) // 2], headers={"Content-Type": ctype}), 400)
    assert_error(daemon.post("/api/v1/programs", body, headers={"Content-Type": "multipart/form-data"}), 400)


def _send_big(d, path, ctype, body):
    """Send a big body; the server may answer 413 and close before reading it all."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=20)
    try:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                  % (path.encode(), ctype.encode(), len(body)))
        try:
            s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        try:
            while True:
                d_ = s.recv(65536)
                if not d_:
                    break
                out += d_
                if b"\r\n\r\n" in out and b"}}" in out:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return out
    finally:
        s.close()


def test_oversized_json_body(daemon):
    big = json.dumps({"backend": "qemu", "board_config": {"board": "mps2-an385", "pad": "x" * (4 << 20)}})
    out = _send_big(daemon, SESSIONS, "application/json", big.encode())
    assert out.startswith(b"HTTP/1.1 413"), out[:300]
    body = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] and body["error"]["message"]
    assert daemon.get("/health").status == 200


def test_lying_content_length_is_refused_early(daemon):
    out = daemon.raw(b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000000\r\n\r\n{}", timeout=10)
    assert out.startswith(b"HTTP/1.1 413"), out[:200]
    assert b'"error"' in out
    assert daemon.get("/health").status == 200


def test_oversized_upload(small_daemon):
    body, ctype = multipart([], [("file", "big.bin", b"\x00" * 100000)])
    assert_error(small_daemon.post("/api/v1/programs", body, headers={"Content-Type": ctype}), 413)


@pytest.mark.parametrize("backend", ["bochs", "", "QEMU", "qemu\n", "qemu; rm -rf /"])
def test_unknown_backend(daemon, backend):
    r = daemon.post(SESSIONS, {"backend": backend, "board_config": {"board": "mps2-an385"}})
    assert_error(r, r.status)
    assert r.status in (400, 404), r


@pytest.mark.parametrize("bc", [
    {"board": "no-such-board"},
    {"board": "mps2-an385\n"},
    {"board": "mps2-an385,accel=kvm"},
    {"board": "mps2-an385 -monitor stdio"},
    {"board": "$(touch /tmp/ms-pwned)"},
    {"board": "help"},
    {"board": "?"},
    {"board": "mps2-an385", "cpu": "cortex-z99"},
    {"board": "mps2-an385", "cpu": "cortex-m3,x=y"},
    {"board": "mps2-an385", "cpu": "help"},
])
def test_unknown_or_hostile_board_and_cpu(daemon, bc):
    r = daemon.post(SESSIONS, {"backend": "qemu", "board_config": bc})
    assert_error(r, r.status)
    assert r.status in (400, 404), r
    assert not os.path.exists("/tmp/ms-pwned")


@pytest.mark.parametrize("method,suffix,body", [
    ("GET", "", None), ("DELETE", "", None), ("POST", "/poweron", None), ("POST", "/poweroff", None),
    ("POST", "/reset", None), ("POST", "/pause", None), ("POST", "/program", {"program_id": "prog_x"}),
    ("GET", "/console", None), ("POST", "/console-ticket", None), ("GET", "/devices", None),
    ("GET", "/snapshots", None), ("POST", "/restore", {"snapshot_id": "a"}),
])
def test_unknown_session(daemon, method, suffix, body):
    r = daemon.request(method, SESSIONS + "/sess_ffffffffffffffff" + suffix, body=body)
    assert_error(r, 404)


@pytest.mark.parametrize("sid", ["..%2F..%2Fetc%2Fpasswd", "sess_%0Aabc", "x" * 300, "sess_%24(id)"])
def test_hostile_session_ids(daemon, sid):
    assert_error(daemon.get(SESSIONS + "/" + sid), 404)


def test_unknown_route_and_wrong_method(daemon):
    assert_error(daemon.get("/api/v1/nothing-here"), 404)
    assert_error(daemon.get("/api/v2/sessions"), 404)
    assert_error(daemon.request("PUT", SESSIONS, body=GOOD), 405)
    assert_error(daemon.request("DELETE", "/health"), 405)
    assert_error(daemon.request("PATCH", SESSIONS + "/sess_ffffffffffffffff"), 405)
    r = daemon.request("DELETE", "/api/v1/capabilities")
    assert_error(r, 405)


def test_program_path_traversal(clean, fw):
    d = clean
    s = d.create_session("mps2-an385")
    url = SESSIONS + "/%s/program" % s["id"]
    prog = d.upload(fw.read(), "mstest.elf").json()
    pdir = os.path.join(d.data_dir, "programs")
    stored = [n for n in os.listdir(pdir) if n.startswith(prog["sha256"])][0]
    link = os.path.join(pdir, "evil.elf")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink("/etc/passwd", link)
    outside = os.path.join(os.path.dirname(fw.elf), "mstest.elf")
    for path in ["/etc/passwd", "/tmp/firmware.elf", outside, "../../../../etc/passwd",
                 os.path.join(pdir, "..", "..", "config.yaml"), os.path.join(pdir, "..", "programs", "..", "..",
                                                                          "stderr.log"),
                 link, pdir, "/proc/self/environ", os.path.join(pdir, stored) + "/../../../../etc/passwd"]:
        r = d.post(url, {"program_path": path})
        assert_error(r, 403)
    for bad in ["", None, 5, ["x"], os.path.join(pdir, stored) + "\x00.elf"]:
        r = d.post(url, {"program_path": bad})
        assert r.status in (400, 403), (bad, r)
        assert_error(r, r.status)
    assert_error(d.post(url, {"program_path": os.path.join(pdir, "0" * 64 + ".elf")}), 404)
    assert_error(d.post(url, {"program_id": "prog_" + "0" * 24}), 404)
    for pid in ["../../etc/passwd", "prog_x\nsavevm", 5, None]:
        r = d.post(url, {"program_id": pid})
        assert r.status in (400, 404), (pid, r)
        assert_error(r, r.status)
    assert_error(d.post(url, {}), 400)
    # The real stored file by its path is fine.
    r = d.post(url, {"program_path": os.path.join(pdir, stored)})
    assert r.status // 100 == 2, r
    os.unlink(link)


def test_program_for_another_architecture_is_refused_at_load(clean):
    d = clean
    with open("/bin/true", "rb") as f:
        r = d.upload(f.read(), "true")
    assert r.status == 201, r
    assert r.json()["arch"] in ("x86_64", "amd64", "x86-64"), r
    s = d.create_session("mps2-an385")
    r = d.post(SESSIONS + "/%s/program" % s["id"], {"program_id": r.json()["id"]})
    assert r.status in (400, 409), r
    assert_error(r, r.status)


def test_upload_name_with_newline_and_shell_text(clean, fw):
    d = clean
    body, ctype = multipart([], [("file", "a\nb;$(reboot)`id`.elf", fw.read())])
    r = d.post("/api/v1/programs", body, headers={"Content-Type": ctype})
    assert r.status in (200, 201), r
    name = r.json().get("name", "")
    assert "\n" not in name and "/" not in name and "$(" not in name and "`" not in name, name
    body, ctype = multipart([], [("file", "../../../../tmp/ms-escape.elf", fw.read())])
    r = d.post("/api/v1/programs", body, headers={"Content-Type": ctype})
    assert r.status in (200, 201), r
    assert not os.path.exists("/tmp/ms-escape.elf")


def _elf_variants(elf):
    out = {}
    out["empty"] = b""
    out["magic only"] = elf[:4]
    out["truncated header"] = elf[:30]
    out["header only"] = elf[:52]
    out["cut in half"] = elf[:len(elf) // 2]
    e = bytearray(elf)
    struct.pack_into("<I", e, 28, len(elf) + 4096)  # e_phoff past the end
    out["phoff past end"] = bytes(e)
    e = bytearray(elf)
    struct.pack_into("<H", e, 44, 0xFFFF)  # e_phnum huge
    out["phnum lies"] = bytes(e)
    e = bytearray(elf)
    struct.pack_into("<H", e, 42, 7)  # e_phentsize wrong
    out["phentsize lies"] = bytes(e)
    e = bytearray(elf)
    phoff = struct.unpack_from("<I", e, 28)[0]
    struct.pack_into("<I", e, phoff + 4, len(elf) - 16)  # first segment's p_offset near the end
    struct.pack_into("<I", e, phoff + 16, 0x10000)       # p_filesz far past the end
    out["segment past end"] = bytes(e)
    e = bytearray(elf)
    e[4] = 9  # EI_CLASS invalid
    out["bad class"] = bytes(e)
    e = bytearray(elf)
    e[5] = 7  # EI_DATA invalid
    out["bad data encoding"] = bytes(e)
    return out


def test_truncated_and_lying_elf(daemon, fw):
    before = sorted(os.listdir(os.path.join(daemon.data_dir, "programs")))
    for what, data in _elf_variants(fw.read()).items():
        body, ctype = multipart([], [("file", "fw.elf", data)])
        r = daemon.post("/api/v1/programs", body, headers={"Content-Type": ctype})
        assert r.status == 400, (what, r)
        assert_error(r, 400)
    assert sorted(os.listdir(os.path.join(daemon.data_dir, "programs"))) == before


def _hex_variants(hx):
    lines = hx.splitlines(keepends=True)
    out = {}
    out["cut mid-line"] = hx[:len(hx) // 2 + 3]
    out["no EOF record"] = b"".join(l for l in lines if not l.startswith(b":00000001"))
    bad = bytearray(lines[0])
    last = bad.rstrip()[-2:]
    bad[len(bad.rstrip()) - 2:len(bad.rstrip())] = b"%02X" % ((int(last, 16) + 1) & 0xFF)
    out["bad checksum"] = bytes(bad) + b"".join(lines[1:])
    out["non-hex characters"] = lines[0][:9] + b"ZZ" + lines[0][11:] + b"".join(lines[1:])
    rec = lines[0]
    out["length lies"] = b":FF" + rec[3:] + b"".join(lines[1:])
    out["unknown record type"] = b":0000000AF6\r\n" + hx
    out["data after EOF"] = hx + b":0400000000000000FC\r\n"
    out["hex then binary junk"] = lines[0] + b"\x00\xff\x10\x20" * 64 + b"".join(lines[1:])
    return out


def test_truncated_and_lying_hex(daemon, fw):
    hx = fw.read("hex")
    assert hx.startswith(b":")
    for what, data in _hex_variants(hx).items():
        body, ctype = multipart([], [("file", "fw.hex", data)])
        r = daemon.post("/api/v1/programs", body, headers={"Content-Type": ctype})
        # A HEX that does not parse must not be stored as a "raw binary" either.
        assert r.status == 400, (what, r)
        assert_error(r, 400)


def test_garbage_http_keeps_daemon_alive(daemon):
    for junk in [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                 b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 200000 + b"\r\n\r\n",
                 b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: application/json\r\n\r\nZZZ\r\n"]:
        daemon.raw(junk, timeout=5)
        assert daemon.get("/health").status == 200


def test_bad_websocket_frames_close_cleanly(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready", timeout=30)
    # An unmasked client frame is a protocol error: the server must close, not crash.
    ws.sock.sendall(b"\x81\x05hello")
    got_close = False
    try:
        for _ in range(100):
            op, _ = ws.recv_frame(5)
            if op == 8:
                got_close = True
                break
    except Exception:
        got_close = True
    assert got_close
    ws.close()
    ws = d.console(s["id"])
    # A 64-bit length nobody can send.
    ws.sock.sendall(b"\x82\xff" + struct.pack("!Q", 1 << 62) + b"abcd")
    try:
        for _ in range(100):
            op, _ = ws.recv_frame(5)
            if op == 8:
                break
    except Exception:
        pass
    ws.close()
    assert d.get("/health").status == 200
    assert d.session(s["id"])["state"] == "running"


def test_no_descriptor_leak_after_bad_requests(clean, fw):
    d = clean
    d.get("/health")
    before = d.fd_count()
    for i in range(60):
        d.post(SESSIONS, b"{", headers={"Content-Type": "application/json"})
        d.post(SESSIONS, {"backend": "qemu", "board_config": {"board": "nope"}})
        body, ctype = multipart([], [("file", "x.elf", fw.read()[:40])])
        d.post("/api/v1/programs", body, headers={"Content-Type": ctype})
        d.get(SESSIONS + "/sess_ffffffffffffffff")
    after = d.fd_count()
    assert after <= before + 8, (before, after)


def test_websocket_handshake_errors(clean, fw):
    d = clean
    s = d.create_session("mps2-an385")
    path = "/api/v1/sessions/%s/stream/console" % s["id"]
    assert_error(d.get(path), 400)  # plain GET on a WebSocket route
    base = "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" % path
    for extra in ["Sec-WebSocket-Version: 13\r\n",                                    # no key
                  "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n",         # malformed key
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"]:
        out = d.raw((base + extra + "\r\n").encode(), timeout=5)
        assert out.startswith(b"HTTP/1.1 4"), out[:200]
        assert not out.startswith(b"HTTP/1.1 101")
        body = json.loads(out.split(b"\r\n\r\n", 1)[1])
        assert body["error"]["code"] and body["error"]["message"]


def test_websocket_message_too_big_is_closed_1009(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready", timeout=30)
    code = None
    try:
        ws.send(b"x" * (2 << 20))
        for _ in range(1000):
            op, data = ws.recv_frame(20)
            if op == 8:
                code = struct.unpack("!H", data[:2])[0]
                break
    except (ConnectionResetError, BrokenPipeError, WSClosed):
        # The server may close while our 2 MiB are still in flight; the kernel then
        # resets the connection and its close frame can be lost on the way.
        code = "reset"
    assert code in (1009, "reset"), code
    ws.close()
    ws = d.console(s["id"])
    ws.send("inc\r")
    ws.read_until(b"counter=1", timeout=30)
    ws.close()
