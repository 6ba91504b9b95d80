#!/bin/bash
# Throughput of MMIO accesses served by inferred models: bench/fw/infer-mmio.c
# does N reads + N writes of a register of a peripheral nobody modelled; the
# same loop on a RAM word is the baseline. Cost per access = difference of
# CPU time / 2N. Also with --mmio-log (every access written as JSON).
# Usage: BUILD=/abs/build bash bench/infer-mmio.sh [N]
set -euo pipefail
BUILD=${BUILD:-$(pwd)/build}
N=${1:-1000000}
MS=$BUILD/machineserver
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
export MS_BOARDS_DIR=${MS_BOARDS_DIR:-$(pwd)/boards}
build() { # name, extra flags
	arm-none-eabi-gcc -mthumb -O2 -ffreestanding -mcpu=cortex-m3 -DN="$N" $2 \
		-Ifirmware/common/mps2 -nostdlib -nostartfiles -Wl,--gc-sections \
		-Wl,--no-warn-rwx-segments -Tfirmware/common/mps2/link.ld -o "$OUT/$1.elf" \
		bench/fw/infer-mmio.c firmware/common/mps2/startup.c firmware/common/mps2/uart.c -lgcc
}
build mmio ""
build ram -DTARGET_RAM
run=("$MS" run --board mps2-an385 --timeout 100000 --expect done)
cpu() { /usr/bin/python3 bench/timeit.py "$@" | cut -d' ' -f2; }
ram=$(cpu "${run[@]}" "$OUT/ram.elf")
mmio=$(cpu "${run[@]}" "$OUT/mmio.elf")
logged=$(cpu "${run[@]}" --mmio-log "$OUT/log.jsonl" "$OUT/mmio.elf")
per() { echo "($1 - $ram) * 1000000000 / (2 * $N)" | bc -l | xargs printf '%.0f'; }
echo "infer-mmio: $N reads + $N writes (CPU seconds, best of 3)"
echo "  RAM word (baseline)          : $ram"
echo "  inferred register            : $mmio  ($(per "$mmio") ns per access, $(echo "2 * $N / ($mmio - $ram) / 1000000" | bc -l | xargs printf '%.1f') M accesses/s)"
echo "  inferred register, --mmio-log: $logged  ($(per "$logged") ns per access)"
