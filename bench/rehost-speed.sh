#!/bin/bash
# Speed of the rehost engine against qemu-system-arm -M mps2-an385 on the
# same CPU-bound firmware (firmware/mps2-bench: CRC-32, insertion sort,
# matrix product), timed to its "done" line, best of 3 wall-clock runs.
# Usage: BUILD=/abs/build bash bench/rehost-speed.sh [ROUNDS]
set -euo pipefail
BUILD=${BUILD:-$(pwd)/build}
ROUNDS=${1:-400}
MS=$BUILD/machineserver
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
build() { # name, extra flags
	arm-none-eabi-gcc -mthumb -Os -g -ffreestanding -mcpu=cortex-m3 -DROUNDS="$ROUNDS" $2 \
		-Ifirmware/common/mps2 -nostdlib -nostartfiles -Wl,--gc-sections \
		-Wl,--no-warn-rwx-segments -Tfirmware/common/mps2/link.ld -o "$OUT/$1.elf" \
		firmware/mps2-bench/main.c firmware/common/mps2/startup.c firmware/common/mps2/uart.c -lgcc
}
build mixed ""
build crc -DCRC_ONLY
export MS_BOARDS_DIR=${MS_BOARDS_DIR:-$(pwd)/boards}

best() { # best-of-3 wall time of a command, in seconds
	local b=999999 t s e
	for _ in 1 2 3; do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>"$OUT/err" || { cat "$OUT/err" >&2; exit 1; }
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc -l)
		if (( $(echo "$t < $b" | bc -l) )); then b=$t; fi
	done
	printf '%.3f' "$b"
}

measure() { # name
	local f="$OUT/$1.elf" insns q r ri rc
	insns=$("$MS" run --board mps2-an385 --no-infer --timeout 100000 --expect done "$f" 2>&1 >/dev/null |
		sed -n 's/.*after \([0-9]*\) instructions.*/\1/p')
	q=$(best "$MS" run --backend qemu --board mps2-an385 --timeout 600 --expect done "$f")
	r=$(best "$MS" run --board mps2-an385 --no-infer --timeout 100000 --expect done "$f")
	ri=$(best "$MS" run --board mps2-an385 --timeout 100000 --expect done "$f")
	rc=$(best "$MS" run --board mps2-an385 --no-infer --timeout 100000 --expect done --bb-out "$OUT/bb" "$f")
	echo "rehost-speed [$1]: rounds=$ROUNDS guest_instructions=$insns"
	echo "  qemu-system-arm mps2-an385  : ${q} s"
	echo "  rehost (no inference)       : ${r} s  ($(echo "$r / $q" | bc -l | xargs printf '%.2f')x qemu)"
	echo "  rehost (inference on)       : ${ri} s"
	echo "  rehost + coverage (--bb-out): ${rc} s  ($(echo "$rc / $r" | bc -l | xargs printf '%.2f')x rehost)"
	echo "  rehost MIPS: $(echo "$insns / $r / 1000000" | bc -l | xargs printf '%.0f')"
}
measure crc
measure mixed
