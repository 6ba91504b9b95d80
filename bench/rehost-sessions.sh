#!/bin/bash
# rehost session start through the daemon, as a client sees it: the time of
# the HTTP round trip(s) over loopback from sending the request until the
# answer says "running" (python http.client on a kept-alive connection, so
# request parsing, auth, the store, the engine and the JSON answer are all
# in it; connection set-up is not). Two ways to start a session:
#   one request   POST /sessions {backend, board_config, program_id, "poweron": true}
#   three         POST /sessions, POST .../program, POST .../poweron
# Phases:
#   idle daemon   ROUNDS starts on a daemon holding no other session (each
#                 session deleted before the next start, outside the timing)
#   N sessions    N one-request starts in a row, every session kept running
#                 (mps2-systick: a SysTick interrupt every 10 ms, WFI between),
#                 then the daemon's resident memory per idle session.
# Prints median, p90 and p99 of each, and the daemon's CPU time per start.
# Usage: BUILD=/abs/build bash bench/rehost-sessions.sh [N] (ROUNDS=200)
set -euo pipefail
BUILD=${BUILD:-$(pwd)/build}
N=${1:-500}
ROUNDS=${ROUNDS:-200}
DIR=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
make -s -C firmware BUILD="$BUILD/firmware" >/dev/null
cat > "$DIR/config.yaml" <<YAML
server:
  port: $PORT
  data_dir: $DIR/data
resources:
  max_sessions: $((N + 10))
  gdb_port_min: 40000
  gdb_port_max: 40999
YAML
MS_BOARDS_DIR=$(pwd)/boards "$BUILD/machineserver" --config "$DIR/config.yaml" >"$DIR/log" 2>&1 &
DPID=$!
trap 'kill $DPID 2>/dev/null; wait $DPID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do  # up to 10 s for the daemon to listen
	curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
	sleep 0.1
done
"${PYTHON:-/usr/bin/python3}" - "$PORT" "$N" "$ROUNDS" "$DPID" "$BUILD/firmware/mps2-systick.elf" <<'PY'
import http.client, json, os, sys, time
port, n, rounds, pid, fw = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
c = http.client.HTTPConnection("127.0.0.1", port)
def req(method, path, body=None, ctype="application/json"):
    c.request(method, path, body=body, headers={"Content-Type": ctype})
    r = c.getresponse(); data = r.read()
    if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {data[:200]}")
    return json.loads(data) if data else None
def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
def cpu_s():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(len(v) * p))]
def show(name, v):
    print(f"  {name:<44} median {pct(v, .5):6.2f} ms  p90 {pct(v, .9):6.2f} ms  p99 {pct(v, .99):6.2f} ms")
prog = req("POST", "/api/v1/programs", open(fw, "rb").read(), "application/octet-stream")["id"]
board = {"board": "mps2-an385"}
one_body = json.dumps({"backend": "rehost", "board_config": board, "program_id": prog, "poweron": True})
def start_one():
    t0 = time.perf_counter()
    s = req("POST", "/api/v1/sessions", one_body)
    dt = (time.perf_counter() - t0) * 1000
    if not one_ok:  # a daemon from before the one-request start: three requests instead
        sid, steps = start_three_on(s)
        return sid, dt + steps[3] - steps[0]
    assert s["state"] == "running", s
    return s["id"], dt
def start_three():
    t0 = time.perf_counter()
    s = req("POST", "/api/v1/sessions", json.dumps({"backend": "rehost", "board_config": board}))
    return start_three_on(s, t0)
def start_three_on(s, t0=None):
    t1 = time.perf_counter()
    t0 = t1 if t0 is None else t0
    req("POST", f"/api/v1/sessions/{s['id']}/program", json.dumps({"program_id": prog}))
    t2 = time.perf_counter()
    st = req("POST", f"/api/v1/sessions/{s['id']}/poweron")
    t3 = time.perf_counter()
    assert st["state"] == "running", st
    return s["id"], [(t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, (t3 - t0) * 1000]

probe = req("POST", "/api/v1/sessions", one_body)
one_ok = probe["state"] == "running"
req("DELETE", "/api/v1/sessions/" + probe["id"])
if not one_ok:
    print("rehost-sessions: this daemon ignores program_id/poweron in POST /sessions:"
          " 'one request' below is create + program + poweron")
for _ in range(5):  # warm-up: first-use costs (board file, page cache) out of the figures
    req("DELETE", "/api/v1/sessions/" + start_one()[0])
one, three, cpu = [], [], 0.0
for i in range(rounds):
    c0 = cpu_s()
    sid, dt = start_one()
    cpu += cpu_s() - c0
    one.append(dt)
    req("DELETE", "/api/v1/sessions/" + sid)
    sid, steps = start_three()
    three.append(steps)
    req("DELETE", "/api/v1/sessions/" + sid)
print(f"rehost-sessions: idle daemon, {rounds} starts each way (mps2-an385, mps2-systick)")
show("one request (create+program+poweron)", one)
show("three requests, total", [t[3] for t in three])
show("  create", [t[0] for t in three])
show("  program", [t[1] for t in three])
show("  poweron", [t[2] for t in three])
print(f"  daemon CPU per one-request start: {cpu / rounds * 1000:.2f} ms (clock ticks, coarse)")

base = rss_kb(); lat = []; c0 = cpu_s()
for i in range(n):
    lat.append(start_one()[1])
cpu = cpu_s() - c0
time.sleep(2)
total = rss_kb()
c0 = cpu_s(); time.sleep(5); idle_cpu = (cpu_s() - c0) / 5
state = {}
for s in req("GET", "/api/v1/sessions"):
    state[s["state"]] = state.get(s["state"], 0) + 1
    if s["state"] != "running":
        print(f"  not running: {s['id']} {s['state']} {s.get('reason', '')!r} gdb_port {s.get('gdb_port')}")
print(f"rehost-sessions: {n} sessions started in a row, one request each, all kept running")
show(f"one request, {n} starts", lat)
show(f"  the last 100 (400+ sessions live)", lat[-100:])
print(f"  daemon CPU per start: {cpu / n * 1000:.2f} ms; states afterwards: {state}")
print(f"  daemon RSS: {base/1024:.1f} MiB before, {total/1024:.1f} MiB after: {(total-base)/n:.0f} KiB per session")
print(f"  daemon CPU with the {n} sessions running (SysTick every 10 ms): {idle_cpu:.2f} cores")
PY
