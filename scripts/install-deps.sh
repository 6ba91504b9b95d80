#!/bin/sh
# Installs everything MachineServer needs to build, run and test on Debian
# bookworm: build tools and -dev libraries, QEMU and the firmware the tests
# boot, the ARM cross compiler, gdb-multiarch, Redis, OpenOCD, lcov, pytest.
# Idempotent: packages already present are left alone.
set -eu

PKGS="build-essential pkg-config git
 libmicrohttpd-dev libjansson-dev libcyaml-dev libyaml-dev libsqlite3-dev libssl-dev
 libunicorn-dev libcapstone-dev libelf-dev libdw-dev libxml2-dev libcurl4-openssl-dev
 libhiredis-dev libcmocka-dev
 qemu-system-arm qemu-utils u-boot-qemu firmware-microbit-micropython
 gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi gdb-multiarch
 python3 python3-pytest python3-websocket lcov sqlite3 wrk redis-server openocd procps curl
 prometheus"

SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO="sudo"
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
else
	echo "install-deps: all Debian packages present"
fi
