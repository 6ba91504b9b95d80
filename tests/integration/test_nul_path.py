"""A percent-encoded NUL must not cut a path short (finding F3)."""
from conftest import assert_error


def test_nul_in_path_is_refused(clean):
    d = clean
    s = d.create_session("mps2-an385")
    r = d.delete("/api/v1/sessions/%s%%00junk" % s["id"])
    assert r.status in (400, 404), r
    assert_error(r, r.status)
    assert d.get("/api/v1/sessions/" + s["id"]).status == 200
    r = d.get("/api/v1/sessions/%00")
    assert r.status in (400, 404), r
