"""
100 idle QEMU sessions on one host, then wrk against the daemon.

1. Start a daemon, note its RSS and the host's MemAvailable.
2. Create N (default 100) mps2-an385 sessions, load the test firmware and
   power them on; the firmware waits for UART input in WFI, so they idle.
3. Report the daemon's RSS per session, the QEMU children's RSS and PSS,
   and the host's MemAvailable drop.
4. wrk (64 connections, 2 threads) on GET /health and GET /api/v1/sessions
   (which lists the N sessions).

usage: sessions100.py [N] [WRK_SECONDS]
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from benchlib import Daemon, boot, build_firmware, machine


def kib(path, key):
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wrk(port, path, seconds):
    cmd = ["wrk", "-t2", "-c64", "-d%ds" % seconds, "--latency", "http://127.0.0.1:%d%s" % (port, path)]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = {p: re.search(r"^\s+%s%%\s+(\S+)" % p, out, re.M) for p in ("50", "99")}
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: .*", out)
    return " ".join(cmd), float(rps.group(1)) if rps else 0.0, \
        {k: (v.group(1) if v else "?") for k, v in lat.items()}, \
        int(errs.group(1)) if errs else 0, sock.group(0) if sock else "none"


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    secs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    tmp = tempfile.mkdtemp(prefix="ms-bench-100-")
    elf = build_firmware(tmp)
    d = Daemon(max_sessions=n + 4)
    try:
        time.sleep(0.5)
        avail0 = kib("/proc/meminfo", "MemAvailable")
        wrk(d.port, "/health", 2)  # warm-up: worker threads, caches
        cmd, rps, lat, errs, sock = wrk(d.port, "/health", secs)
        empty = "wrk /health with no session: %.0f req/s, p50 %s, p99 %s, non-2xx %d, socket errors %s" % (
            rps, lat["50"], lat["99"], errs, sock)
        prog = d.upload(elf)
        rss0 = kib("/proc/%d/status" % d.proc.pid, "VmRSS")
        t0 = time.perf_counter()
        ids = []
        for i in range(n):
            sid, j = boot(d, prog["id"])
            ids.append(sid)
        for sid in ids:
            while d.req("GET", "/api/v1/sessions/" + sid)[1]["state"] != "running":
                time.sleep(0.05)
        t_boot = time.perf_counter() - t0
        time.sleep(3)  # let every guest reach WFI and the host settle
        rss1 = kib("/proc/%d/status" % d.proc.pid, "VmRSS")
        kids = d.children()
        q_rss = sum(kib("/proc/%d/status" % p, "VmRSS") for p in kids)
        q_pss = sum(kib("/proc/%d/smaps_rollup" % p, "Pss") for p in kids)
        avail1 = kib("/proc/meminfo", "MemAvailable")
        load = os.getloadavg()
        cpu0 = {p: sum(int(x) for x in open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[11:13])
                for p in kids}
        time.sleep(5)
        cpu1 = {p: sum(int(x) for x in open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[11:13])
                for p in kids}
        idle_cpu = sum(cpu1[p] - cpu0[p] for p in kids) / os.sysconf("SC_CLK_TCK") / 5.0
        print("machine: %s" % machine())
        print("sessions: %d running mps2-an385 (firmware idle in WFI), %d QEMU children; all up in %.1f s"
              % (n, len(kids), t_boot))
        print("daemon RSS: %.1f MiB before, %.1f MiB after -> %.1f KiB per session"
              % (rss0 / 1024, rss1 / 1024, (rss1 - rss0) / n))
        print("QEMU children: RSS %.1f MiB total (%.1f MiB each), PSS %.1f MiB total (%.1f MiB each)"
              % (q_rss / 1024, q_rss / 1024 / max(1, len(kids)), q_pss / 1024, q_pss / 1024 / max(1, len(kids))))
        print("host MemAvailable drop: %.1f MiB (%.1f MiB per session)"
              % ((avail0 - avail1) / 1024, (avail0 - avail1) / 1024 / n))
        print("idle CPU of all QEMU children: %.2f cores; loadavg %.2f" % (idle_cpu, load[0]))
        print(empty)
        for path in ("/health", "/api/v1/sessions"):
            cmd, rps, lat, errs, sock = wrk(d.port, path, secs)
            print("wrk %s: %.0f req/s, p50 %s, p99 %s, non-2xx %d, socket errors %s"
                  % (path, rps, lat["50"], lat["99"], errs, sock))
            print("  command: " + cmd)
        st, body = d.req("GET", "/api/v1/sessions")
        print("GET /api/v1/sessions body: %d sessions, %d bytes of JSON"
              % (len(body if isinstance(body, list) else body["sessions"]), len(json.dumps(body, separators=(",", ":")))))
        print("daemon RSS after wrk: %.1f MiB" % (kib("/proc/%d/status" % d.proc.pid, "VmRSS") / 1024))
    finally:
        d.stop()


if __name__ == "__main__":
    main()
