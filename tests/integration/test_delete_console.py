"""Regression tests for findings F6, F8, F9 (/work/notes/integration-findings.md)."""
from conftest import WSClosed


def test_delete_session_under_open_console(clean, fw):
    d = clean
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready", timeout=30)
    assert d.delete("/api/v1/sessions/" + s["id"]).status == 200
    closed = False
    try:
        for _ in range(1000):
            op, _ = ws.recv_frame(20)
            if op == 8:
                closed = True
                break
    except (WSClosed, ConnectionResetError):
        closed = True
    assert closed, "console stayed open after its session was deleted"
    ws.close()
    assert d.get("/health").status == 200
    assert d.qemu_children() == []
