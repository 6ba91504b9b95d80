"""Regression test for finding F11: a watched console keeps its session from being reaped."""
import time

from conftest import sessions_of


def test_console_activity_keeps_a_session_alive(own_daemon, fw):
    d = own_daemon({"resources": {"session_timeout": 2}}).start()
    s, prog, ws = d.boot("mps2-an385", fw.read(), "mstest.elf")
    ws.read_until(b"mstest ready\r\n> ", timeout=30)
    end = time.monotonic() + 15  # several reaper passes (every 5 s)
    while time.monotonic() < end:
        ws.send("x\r")
        ws.read_until(b"echo: x", timeout=10)
        time.sleep(0.5)
    assert s["id"] in [x["id"] for x in sessions_of(d.get("/api/v1/sessions").json())]
    ws.close()
