"""
SIGTERM while WebSocket streams are open or ending (finding F12).

A daemon stopped while console, event or MMIO streams were open, just
closed by their client, or ending because their session had just been
deleted, used to crash with SIGSEGV: each stream's thread handed its
connection back to libmicrohttpd (MHD_upgrade_action) after MHD_stop_daemon
had already freed it. It is a race: before the fix about one stop in five
with this many streams crashed (this test failed in 5 of 6 runs), so it
stops several daemons, each with ~30 streams ending in all three ways as
the signal arrives. Every daemon must exit 0 with no sanitizer report (the
own_daemon fixture checks the reports; run it against `make sanitize` with
MS_BUILD=$PWD/build-asan too).
"""
import signal

from conftest import WS

ROUNDS = 10


def start(own_daemon, name):
    """A fresh daemon; another program may take the free port conftest picked before it binds."""
    for attempt in range(3):
        d = own_daemon(name="%s-%d" % (name, attempt))
        try:
            return d.start()
        except RuntimeError as ex:
            if "Address already in use" not in str(ex):
                raise
    raise RuntimeError("no free port for %s" % name)


def rehost_session(d):
    r = d.post("/api/v1/sessions", {"backend": "rehost", "board_config": {"cpu": "cortex-m0"}})
    assert r.status == 201, r
    return r.json()["id"]


def open_streams(d, sid, mmio):
    kinds = ["console"] * 6 + ["events"] * 3 + (["mmio"] if mmio else [])
    out = []
    for kind in kinds:
        ws = WS(d.port, "/api/v1/sessions/%s/stream/%s" % (sid, kind))
        assert ws.status == 101, ws.handshake
        out.append(ws)
    return out


def test_sigterm_while_websocket_streams_end(own_daemon):
    for i in range(ROUNDS):
        d = start(own_daemon, "stop-%d" % i)
        qemu = d.create_session("mps2-an385")["id"]
        rehost = [rehost_session(d) for _ in range(2)]
        kept = open_streams(d, qemu, mmio=False) + open_streams(d, rehost[0], mmio=True)
        ending = open_streams(d, rehost[1], mmio=True)
        # Half the streams are being closed by their client, the streams of
        # one session are ending because it is deleted, the rest stay open.
        closing = kept[::2]
        for ws in closing:
            ws.close()
        assert d.delete("/api/v1/sessions/" + rehost[1]).status == 200
        rc = d.stop(signal.SIGTERM)
        assert rc == 0, "round %d: machineserver exited %s on SIGTERM:\n%s" % (i, rc, d.stderr_tail())
        for ws in kept + ending:
            ws.close()
