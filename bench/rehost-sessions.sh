#!/bin/bash
# rehost sessions through the daemon: time from POST /sessions to running
# (create + program + poweron, over loopback HTTP), and resident memory per
# idle session with N sessions (default 500) in one daemon.
# Usage: BUILD=/abs/build bash bench/rehost-sessions.sh [N]
set -euo pipefail
BUILD=${BUILD:-$(pwd)/build}
N=${1:-500}
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
sleep 0.5
python3 - "$PORT" "$N" "$DPID" "$BUILD/firmware/mps2-systick.elf" <<'PY'
import http.client, json, sys, time, statistics
port, n, pid, fw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port)
def req(method, path, body=None, ctype="application/json"):
    c.request(method, path, body=body, headers={"Content-Type": ctype})
    r = c.getresponse(); data = r.read()
    if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {data[:200]}")
    return json.loads(data) if data else None
def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
prog = req("POST", "/api/v1/programs", open(fw, "rb").read(), "application/octet-stream")["id"]
base = rss_kb(); lat = []
for i in range(n):
    t0 = time.perf_counter()
    s = req("POST", "/api/v1/sessions", json.dumps({"backend": "rehost", "board_config": {"board": "mps2-an385"}}))
    req("POST", f"/api/v1/sessions/{s['id']}/program", json.dumps({"program_id": prog}))
    st = req("POST", f"/api/v1/sessions/{s['id']}/poweron")
    lat.append((time.perf_counter() - t0) * 1000)
    assert st["state"] == "running", st
time.sleep(2)
total = rss_kb()
lat.sort()
print(f"rehost-sessions: {n} sessions (mps2-systick, idle in WFI between ticks)")
print(f"  create+program+poweron: median {statistics.median(lat):.2f} ms, p95 {lat[int(n*0.95)-1]:.2f} ms")
print(f"  daemon RSS: {base/1024:.1f} MiB before, {total/1024:.1f} MiB after: {(total-base)/n:.0f} KiB per session")
PY
