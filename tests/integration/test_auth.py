"""
Authentication on a daemon with auth enabled: API keys, HS256 JWTs (bad,
expired, not yet valid, alg=none, other algorithms, other keys), the
WebSocket and its single-use tickets, and the audit subject.
"""
import hashlib
import time

import pytest

from conftest import API_KEY, JWT_SECRET, WS, assert_error, b64url, jwt_encode


def _bearer(tok):
    return {"Authorization": "Bearer " + tok}


def test_health_stays_open(auth_daemon):
    assert auth_daemon.get("/health", auth=False).status == 200


@pytest.mark.parametrize("path", ["/api/v1/sessions", "/api/v1/capabilities", "/api/v1/programs",
                                  "/api/v1/openapi.json", "/api/v1/audit",
                                  "/api/v1/sessions/sess_ffffffffffffffff"])
def test_missing_auth_is_401(auth_daemon, path):
    assert_error(auth_daemon.get(path, auth=False), 401)


def test_missing_auth_on_mutations_is_401_and_nothing_happens(auth_daemon):
    d = auth_daemon
    r = d.post("/api/v1/sessions", {"backend": "qemu", "board_config": {"board": "mps2-an385"}}, auth=False)
    assert_error(r, 401)
    assert d.get("/api/v1/sessions").json() in ([], {"sessions": []})


@pytest.mark.parametrize("value", ["ApiKey wrong", "ApiKey ", "ApiKey", "apikey " + "x", "Basic " + b64url(b"a:b"),
                                   "Bearer", "Bearer ", "Bearer not-a-jwt", "Bearer a.b", "Bearer a.b.c.d",
                                   "Token " + API_KEY, API_KEY, "ApiKey " + API_KEY + "x",
                                   "ApiKey " + API_KEY[:-1]])
def test_bad_credentials(auth_daemon, value):
    assert_error(auth_daemon.get("/api/v1/sessions", headers={"Authorization": value}), 401)


def test_api_key_works(auth_daemon):
    assert auth_daemon.get("/api/v1/sessions").status == 200


def test_valid_jwt_works(auth_daemon):
    tok = jwt_encode({"sub": "alice", "exp": int(time.time()) + 600}, JWT_SECRET)
    assert auth_daemon.get("/api/v1/sessions", headers=_bearer(tok)).status == 200


def _bad_tokens():
    now = int(time.time())
    good = {"sub": "mallory", "exp": now + 600}
    toks = {
        "expired": jwt_encode({"sub": "m", "exp": now - 3600}, JWT_SECRET),
        "no exp": jwt_encode({"sub": "m"}, JWT_SECRET),
        "exp as string": jwt_encode({"sub": "m", "exp": str(now + 600)}, JWT_SECRET),
        "nbf in future": jwt_encode({"sub": "m", "exp": now + 7200, "nbf": now + 3600}, JWT_SECRET),
        "other secret": jwt_encode(good, "not-the-secret"),
        "alg none unsigned": jwt_encode(good, JWT_SECRET, header={"alg": "none", "typ": "JWT"}, sign=False),
        "alg None unsigned": jwt_encode(good, JWT_SECRET, header={"alg": "None"}, sign=False),
        "alg none signed": jwt_encode(good, JWT_SECRET, header={"alg": "none"}),
        "alg HS512 header": jwt_encode(good, JWT_SECRET, header={"alg": "HS512", "typ": "JWT"}),
        "alg RS256 header": jwt_encode(good, JWT_SECRET, header={"alg": "RS256", "typ": "JWT"}),
        "no alg": jwt_encode(good, JWT_SECRET, header={"typ": "JWT"}),
        "empty signature": jwt_encode(good, JWT_SECRET).rsplit(".", 1)[0] + ".",
    }
    t = jwt_encode(good, JWT_SECRET)
    h, p, s = t.split(".")
    toks["tampered payload"] = h + "." + b64url(b'{"sub":"admin","exp":%d}' % (now + 600)) + "." + s
    toks["payload not json"] = h + "." + b64url(b"not json") + "." + s
    toks["bad base64"] = h + ".!!!." + s
    toks["signature flipped"] = h + "." + p + "." + ("A" if s[0] != "A" else "B") + s[1:]
    return toks


@pytest.mark.parametrize("what", list(_bad_tokens()))
def test_bad_jwt(auth_daemon, what):
    tok = _bad_tokens()[what]
    assert_error(auth_daemon.get("/api/v1/sessions", headers=_bearer(tok)), 401)


def test_huge_token_refused(auth_daemon):
    tok = jwt_encode({"sub": "x" * 6000, "exp": int(time.time()) + 600}, "other")
    r = auth_daemon.get("/api/v1/sessions", headers=_bearer(tok))
    assert r.status in (401, 431), r
    assert auth_daemon.get("/health").status == 200


def test_audit_records_subjects(auth_daemon):
    d = auth_daemon
    tok = jwt_encode({"sub": "alice", "exp": int(time.time()) + 600}, JWT_SECRET)
    r = d.post("/api/v1/sessions", {"backend": "qemu", "board_config": {"board": "mps2-an385"}},
               headers=_bearer(tok))
    assert r.status == 201, r
    sid = r.json()["id"]
    r = d.delete("/api/v1/sessions/" + sid)
    assert r.status == 200
    entries = d.get("/api/v1/audit?limit=10").json()["entries"]
    by = {}
    for e in entries:  # newest first: keep the newest of each
        by.setdefault((e["method"], e["path"]), e)
    made = by[("POST", "/api/v1/sessions")]
    assert made["subject"] == "jwt:alice", made
    assert made["status"] == 201 and made["client"] in ("127.0.0.1", "::ffff:127.0.0.1")
    gone = by[("DELETE", "/api/v1/sessions/" + sid)]
    assert gone["subject"] == "key:" + hashlib.sha256(API_KEY.encode()).hexdigest()[:12], gone
    assert API_KEY not in d.get("/api/v1/audit?limit=1000").text


def test_websocket_requires_auth_and_tickets_work_once(auth_daemon, fw):
    d = auth_daemon
    try:
        s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
        sid = s["id"]
        ws.read_until(b"mstest ready", timeout=30)
        ws.close()
        path = "/api/v1/sessions/%s/stream/console" % sid
        assert WS(d.port, path).status == 401
        assert WS(d.port, path, headers={"Authorization": "ApiKey nope"}).status == 401
        assert WS(d.port, path + "?ticket=" + "0" * 32).status == 401
        r = d.post("/api/v1/sessions/%s/console-ticket" % sid)
        assert r.status in (200, 201), r
        url = r.json()["url"]
        tpath = url[url.index("/api/"):]
        ws = WS(d.port, tpath)
        assert ws.status == 101, ws.handshake
        ws.read_until(b"mstest ready", timeout=10)
        ws.close()
        assert WS(d.port, tpath).status == 401  # used once
        # A ticket is bound to its session.
        other = d.create_session("mps2-an385")
        url = d.post("/api/v1/sessions/%s/console-ticket" % sid).json()["url"]
        ticket = url.split("ticket=")[1]
        assert WS(d.port, "/api/v1/sessions/%s/stream/console?ticket=%s" % (other["id"], ticket)).status == 401
        # Getting a ticket needs auth itself.
        assert_error(d.post("/api/v1/sessions/%s/console-ticket" % sid, auth=False), 401)
    finally:
        d.delete_all_sessions()


def test_jwt_subject_with_control_characters_never_reaches_the_audit_log(auth_daemon):
    d = auth_daemon
    tok = jwt_encode({"sub": "evil\nname\x1b[31m", "exp": int(time.time()) + 600}, JWT_SECRET)
    r = d.post("/api/v1/sessions", {"backend": "qemu", "board_config": {"board": "nope"}}, headers=_bearer(tok))
    assert r.status in (400, 401), r
    for e in d.get("/api/v1/audit?limit=50").json()["entries"]:
        assert all(0x20 <= ord(ch) < 0x7F for ch in e["subject"]), e


def test_console_ticket_expires(auth_daemon):
    """Tickets live 30 s (plus nothing): one left unused for longer is refused."""
    d = auth_daemon
    try:
        s = d.create_session("mps2-an385")
        url = d.post("/api/v1/sessions/%s/console-ticket" % s["id"]).json()["url"]
        time.sleep(33)
        assert WS(d.port, url[url.index("/api/"):]).status == 401
    finally:
        d.delete_all_sessions()
