#!/bin/bash
# Snapshot save + restore of a 64 KiB RAM / 256 KiB flash rehost machine.
# Usage: BUILD=/abs/build bash bench/rehost-snapshot.sh
set -euo pipefail
BUILD=${BUILD:-$(pwd)/build}
make -s -C firmware BUILD="$BUILD/firmware" >/dev/null
cc -O2 -g -std=gnu11 -Isrc -D_GNU_SOURCE $(pkg-config --cflags jansson unicorn) \
	-o "$BUILD/rehost-snapshot-bench" bench/rehost-snapshot.c "$BUILD/libms.a" \
	$(pkg-config --libs unicorn capstone libdw libelf jansson yaml-0.1 libcurl libxml-2.0 \
	libcrypto libmicrohttpd libcyaml sqlite3 hiredis) -lpthread -lm
"$BUILD/rehost-snapshot-bench" "$BUILD/firmware/mps2-hello.elf"
