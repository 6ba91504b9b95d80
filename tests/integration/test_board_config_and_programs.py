"""Regression tests for findings F6, F8, F9 (/work/notes/integration-findings.md)."""
import re

from conftest import assert_error


def test_unknown_board_config_keys_are_not_silently_ignored(clean):
    d = clean
    for extra in ({"foo": "bar"}, {"memory_map": [{"start": "0x08000000", "size": "1M"}]}):
        bc = {"board": "mps2-an385"}
        bc.update(extra)
        r = d.post("/api/v1/sessions", {"backend": "qemu", "board_config": bc})
        assert r.status in (400, 501), (extra, r)
        assert_error(r, r.status)


def test_deleting_a_loaded_program_does_not_break_its_session(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    sid = s["id"]
    ws.read_until(b"mstest ready", timeout=30)
    r = d.delete("/api/v1/programs/" + prog["id"])
    if r.status == 409:
        assert_error(r, 409)
        return
    assert r.status == 200, r
    assert d.post("/api/v1/sessions/%s/poweroff" % sid).status == 200
    r = d.post("/api/v1/sessions/%s/poweron" % sid)
    assert r.status == 200, r
    ws.read_until(re.compile(rb"(mstest ready[\s\S]*){2}"), timeout=30)
    ws.close()
