#!/bin/bash
# Inference results table: every firmware of firmware/infer, zero-config and
# with its vendor SVD, plus Debian's micro:bit MicroPython, each run once with
# `machineserver run --backend rehost` (deterministic: one run is the result).
# Prints one Markdown row per run: pass/fail, wall time, devices created,
# decisions by kind, fault-to-resume latency (median of the run's regions).
# The pass criterion of each image is in its firmware/infer/<name>/build.mk
# (INPUT / EXPECT / FW_SVD lines; EVENTS names its --events file). Usage: BUILD=$PWD/build bash bench/infer-corpus.sh
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-$PWD/build}
SVD_DIR=${SVD_DIR:-$PWD/../shared/svd}
PY=${PYTHON:-/usr/bin/python3}
make -s firmware BUILD="$BUILD" >/dev/null || exit 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

row() { # name mode firmware input expect [svd [events]]
	local name=$1 mode=$2 fw=$3 input=$4 expect=$5 svd=${6:-} events=${7:-}
	local args=(--backend rehost --timeout 20 --input-text "$input" --expect "$expect" --mmio-log "$tmp/log")
	[ -n "$svd" ] && args+=(--svd "$svd")
	[ -n "$events" ] && args+=(--events "$events")
	local t0 t1 rc
	t0=$(date +%s.%N)
	"$BUILD/machineserver" run "${args[@]}" "$fw" >/dev/null 2>"$tmp/err"
	rc=$?
	t1=$(date +%s.%N)
	"$PY" - "$name" "$mode" "$rc" "$t0" "$t1" "$tmp/log" <<'PYEOF'
import json, statistics, sys
name, mode, rc, t0, t1, log = sys.argv[1:]
kinds, lat = {}, []
for line in open(log):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    t = ev.get("type", "")
    if t.startswith("infer."):
        k = t[6:]
        kinds[k] = kinds.get(k, 0) + 1
        if k == "region" and "latency_ns" in ev:
            lat.append(ev["latency_ns"] / 1000.0)
verdict = "PASS" if rc == "0" else "FAIL(%s)" % rc
med = "%.1f" % statistics.median(lat) if lat else "-"
print("| %s | %s | %s | %.2f | %d | %s | %s |" % (name, mode, verdict, float(t1) - float(t0),
      kinds.get("region", 0), ", ".join("%s %d" % kv for kv in sorted(kinds.items())), med))
PYEOF
}

echo "| firmware | mode | result | wall s | devices | decisions | fault→resume µs (median) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for mk in firmware/infer/*/build.mk; do
	dir=$(dirname "$mk")
	name=$(basename "$dir")
	input=$(sed -n 's/^# INPUT: //p' "$mk")
	expect=$(sed -n 's/^# EXPECT: //p' "$mk")
	svd=$(sed -n 's/^# FW_SVD: //p' "$mk")
	events=$(sed -n 's/^# EVENTS: //p' "$mk")
	[ -n "$events" ] && events="$dir/$events"
	fw="$BUILD/firmware/infer-$name.elf"
	row "$name" zero "$fw" "$input" "$expect" "" "$events"
	if [ -n "$svd" ] && [ -f "$SVD_DIR/$svd" ]; then
		row "$name" svd "$fw" "$input" "$expect" "$SVD_DIR/$svd" "$events"
	fi
done
mp=/usr/share/firmware-microbit-micropython/firmware.hex
if [ -f "$mp" ]; then
	row microbit-micropython zero "$mp" 'print(1+2)\r' '\r\n3\r\n>>> '
	[ -f "$SVD_DIR/Nordic/nrf51.svd" ] &&
		row microbit-micropython svd "$mp" 'print(1+2)\r' '\r\n3\r\n>>> ' "$SVD_DIR/Nordic/nrf51.svd"
fi
