"""
Session start-up: POST /sessions + POST program + POST poweron until the
session is "running" on mps2-an385, against QEMU alone from spawn to its QMP
greeting, interleaved in one run. Prints medians and their ratio.

usage: session_start.py [ROUNDS]
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import Daemon, build_firmware, machine, median, percentile


def qemu_alone(elf, tmp, i):
    qmp = os.path.join(tmp, "q%d.qmp" % i)
    t0 = time.perf_counter()
    p = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an385", "-kernel", elf, "-S",
                          "-qmp", "unix:%s,server=on,wait=off" % qmp, "-display", "none",
                          "-monitor", "none", "-nic", "none", "-serial", "null"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(qmp)
            break
        except OSError:
            s.close()
            time.sleep(0.0005)
    buf = b""
    while b"\n" not in buf:
        buf += s.recv(4096)
    dt = time.perf_counter() - t0
    s.close()
    p.kill()
    p.wait()
    assert b'"QMP"' in buf
    return dt


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    tmp = tempfile.mkdtemp(prefix="ms-bench-start-")
    elf = build_firmware(tmp)
    d = Daemon(max_sessions=8)
    try:
        prog = d.upload(elf)
        alone, full = [], []
        steps = {"create": [], "load": [], "poweron": []}
        for i in range(rounds + 2):
            a = qemu_alone(elf, tmp, i)
            t0 = time.perf_counter()
            st, s = d.req("POST", "/api/v1/sessions",
                          {"backend": "qemu", "board_config": {"board": "mps2-an385"}})
            assert st == 201, (st, s)
            sid = s["id"]
            t1 = time.perf_counter()
            st, j = d.req("POST", "/api/v1/sessions/%s/program" % sid, {"program_id": prog["id"]})
            assert st == 200, (st, j)
            t2 = time.perf_counter()
            st, j = d.req("POST", "/api/v1/sessions/%s/poweron" % sid)
            assert st == 200, (st, j)
            while j["state"] != "running":
                st, j = d.req("GET", "/api/v1/sessions/" + sid)
            t3 = time.perf_counter()
            d.req("DELETE", "/api/v1/sessions/" + sid)
            if i >= 2:  # the first rounds warm caches
                alone.append(a)
                full.append(t3 - t0)
                steps["create"].append(t1 - t0)
                steps["load"].append(t2 - t1)
                steps["poweron"].append(t3 - t2)
        print("machine: %s" % machine())
        print("rounds: %d (after 2 warm-up rounds)" % rounds)
        print("qemu alone, spawn -> QMP greeting:   median %.1f ms  p90 %.1f ms"
              % (median(alone) * 1e3, percentile(alone, 90) * 1e3))
        print("daemon, create+load+poweron->running: median %.1f ms  p90 %.1f ms"
              % (median(full) * 1e3, percentile(full, 90) * 1e3))
        print("  steps (medians): " + ", ".join("%s %.1f ms" % (k, median(v) * 1e3) for k, v in steps.items()))
        print("ratio of medians: %.2fx (target <= 2.5x)" % (median(full) / median(alone)))
    finally:
        d.stop()


if __name__ == "__main__":
    main()
