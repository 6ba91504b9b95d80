#!/bin/bash
# Speed of the rehost engine against qemu-system-arm -M mps2-an385 on the
# same CPU-bound firmware (firmware/mps2-bench: CRC-32, insertion sort,
# matrix product), timed to its "done" line, best of 3 runs. QEMU runs twice:
# as users run it (real-time clock) and with -icount, QEMU's deterministic
# mode, which is what rehost always is (virtual time = instruction count).
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

timeit() { /usr/bin/python3 bench/timeit.py "$@"; }  # best of 3: "WALL CPU" seconds
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }

measure() { # name
	local f="$OUT/$1.elf" insns q qi r ri rc
	local qemu=(qemu-system-arm -M mps2-an385 -nographic -monitor none -serial stdio -kernel "$f")
	local rh=("$MS" run --board mps2-an385 --timeout 100000 --expect done)
	insns=$("${rh[@]}" --no-infer "$f" 2>&1 >/dev/null |
		sed -n 's/.*after \([0-9]*\) instructions.*/\1/p')
	q=$(timeit "${qemu[@]}")
	qi=$(timeit "${qemu[@]}" -icount shift=0,align=off,sleep=off)
	r=$(timeit "${rh[@]}" --no-infer "$f")
	ri=$(timeit "${rh[@]}" "$f")
	rc=$(timeit "${rh[@]}" --no-infer --bb-out "$OUT/bb" "$f")
	echo "rehost-speed [$1]: rounds=$ROUNDS guest_instructions=$insns (seconds: wall, CPU)"
	echo "  qemu-system-arm mps2-an385           : $q"
	echo "  qemu-system-arm -icount (deterministic): $qi"
	echo "  rehost --no-infer                    : $r  (CPU $(ratio "${r#* }" "${q#* }")x qemu, $(ratio "${r#* }" "${qi#* }")x qemu -icount)"
	echo "  rehost (inference on, the default)   : $ri  (CPU $(ratio "${ri#* }" "${q#* }")x qemu)"
	echo "  rehost --no-infer --bb-out (coverage): $rc  (CPU $(ratio "${rc#* }" "${r#* }")x rehost)"
	echo "  rehost MIPS (CPU time): $(echo "$insns / ${r#* } / 1000000" | bc -l | xargs printf '%.0f')"
}
measure crc
measure mixed
