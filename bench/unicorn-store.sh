#!/bin/bash
# Cost of a guest store, a guest load and a block hook in the installed
# Unicorn (bench/unicorn-store.c says why this matters).
# Usage: BUILD=/abs/build bash bench/unicorn-store.sh
set -euo pipefail
BUILD=${BUILD:-$(pwd)/build}
mkdir -p "$BUILD"
cc -O2 -g -std=gnu11 $(pkg-config --cflags unicorn) -o "$BUILD/unicorn-store-bench" \
	bench/unicorn-store.c $(pkg-config --libs unicorn)
"$BUILD/unicorn-store-bench"
