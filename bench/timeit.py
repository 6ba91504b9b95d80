"""
Best of 3 runs of a command, each started and watched until its output shows
"done" (then killed: QEMU never exits by itself) or it exits. Prints
"WALL CPU" in seconds: wall clock, and user+sys CPU of the child (all its
threads). CPU time is the steadier figure on a shared machine.
Usage: python3 bench/timeit.py COMMAND [ARGS...]
"""
import resource
import subprocess
import sys
import time

best_w = best_c = 1e9
for _ in range(3):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    buf = b""
    while b"done" not in buf:
        chunk = p.stdout.read1(4096)
        if not chunk:
            break
        buf += chunk
    wall = time.monotonic() - t0
    p.kill()
    p.wait()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if b"done" not in buf:
        sys.exit("timeit: no 'done' from " + " ".join(sys.argv[1:]))
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    best_w, best_c = min(best_w, wall), min(best_c, cpu)
print("%.3f %.3f" % (best_w, best_c))
