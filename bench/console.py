"""
Console path benchmarks on one mps2-an385 session running the test firmware.

1. Round trip: the WebSocket client sends "p<i>\\r", the firmware echoes
   "echo: p<i>"; the time from send to the echo arriving is WS -> UART RX ->
   guest -> UART TX -> WS, an upper bound of the UART -> WebSocket latency.
   p50 / p99 / max over ROUNDS.
   The guest adds no waiting of its own (it sleeps in WFI until the byte
   arrives), so one-way UART -> WebSocket latency is below this figure.
2. Full speed: "flood N" makes the guest print N numbered lines as fast as
   the UART goes; every line must arrive, in order, once. Prints bytes/s.

usage: console.py [ROUNDS] [FLOOD_LINES]
"""
import re
import sys
import tempfile
import time

from benchlib import WS, Daemon, build_firmware, machine, percentile


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    lines = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    tmp = tempfile.mkdtemp(prefix="ms-bench-console-")
    elf = build_firmware(tmp)
    d = Daemon(max_sessions=4)
    try:
        prog = d.upload(elf)
        st, s = d.req("POST", "/api/v1/sessions", {"backend": "qemu", "board_config": {"board": "mps2-an385"}})
        sid = s["id"]
        d.req("POST", "/api/v1/sessions/%s/program" % sid, {"program_id": prog["id"]})
        ws = WS(d.port, "/api/v1/sessions/%s/stream/console" % sid)
        d.req("POST", "/api/v1/sessions/%s/poweron" % sid)
        ws.read_until(b"mstest ready\r\n> ")
        rtt = []
        for i in range(rounds + 20):
            tok = b"echo: p%d\r\n> " % i
            t0 = time.perf_counter()
            ws.send("p%d\r" % i)
            ws.read_until(tok)
            if i >= 20:
                rtt.append(time.perf_counter() - t0)
        print("machine: %s" % machine())
        print("round trip WS->UART->guest->UART->WS over %d rounds: p50 %.3f ms, p99 %.3f ms, max %.3f ms"
              % (rounds, percentile(rtt, 50) * 1e3, percentile(rtt, 99) * 1e3, max(rtt) * 1e3))
        # Full speed.
        t0 = time.perf_counter()
        frames0 = ws.frames
        ws.send("flood %d\r" % lines)
        got = bytearray()
        while b"FLOOD-DONE\r\n" not in got[-64:]:
            got += ws.recv()
        dt = time.perf_counter() - t0
        body = bytes(got).split(b"FLOOD-DONE")[0]
        nums = [int(x) for x in re.findall(rb"L(\d{8})\r\n", body)]
        expected = list(range(lines))
        lost = len(set(expected) - set(nums))
        dup = len(nums) - len(set(nums))
        in_order = nums == expected
        print("flood: %d lines (%d bytes) in %.2f s = %.0f KiB/s in %d WebSocket frames; lost %d, duplicated %d, "
              "in order: %s" % (lines, len(body), dt, len(body) / dt / 1024, ws.frames - frames0, lost, dup, in_order))
        st, j = d.req("GET", "/api/v1/sessions/%s" % sid)
        print("session state after flood: %s" % j["state"])
        ws.close()
    finally:
        d.stop()


if __name__ == "__main__":
    main()
