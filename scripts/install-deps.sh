#!/bin/sh
# Installs everything MachineServer needs to build, run and test on Debian
# bookworm: build tools and -dev libraries, QEMU and the firmware the tests
# boot, the ARM cross compiler, gdb-multiarch, Redis, OpenOCD, lcov, pytest.
# Idempotent: packages already present are left alone.
set -eu

PKGS="build-essential pkg-config git
 libmicrohttpd-dev libjansson-dev libcyaml-dev libyaml-dev libsqlite3-dev libssl-dev
 libcapstone-dev libelf-dev libdw-dev libxml2-dev libcurl4-openssl-dev
 libhiredis-dev libcmocka-dev
 qemu-system-arm qemu-utils u-boot-qemu firmware-microbit-micropython firmware-tomu
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

# Unicorn (the rehost engine's CPU core) comes from Debian 13 "trixie", not
# from bookworm. With bookworm's 2.0.1 every guest store to RAM takes QEMU's
# self-modifying-code slow path (perf: tb_invalidate_phys_page_fast and a
# g_tree allocated and freed by page_collection_lock on each store), 85-106 ns
# a store against 2 ns with 2.1.1 (docs/PERFORMANCE.md). trixie's libunicorn2t64 needs nothing newer than bookworm's
# libc. The pin (priority 1) keeps every other package on bookworm: only the
# two packages named below are ever taken from trixie.
unicorn_ok() {
	v=$(dpkg-query -W -f='${Version}' libunicorn-dev 2>/dev/null || true)
	[ -n "$v" ] && dpkg --compare-versions "$v" ge 2.1.1
}
if ! unicorn_ok; then
	echo "install-deps: installing Unicorn 2.1 from Debian trixie (pinned to these packages)"
	$SUDO sh -c 'cat > /etc/apt/sources.list.d/machineserver-trixie.sources' <<'EOF2'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF2
	$SUDO sh -c 'cat > /etc/apt/preferences.d/machineserver-trixie' <<'EOF2'
Package: *
Pin: release n=trixie
Pin-Priority: 1
EOF2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		libunicorn-dev/trixie libunicorn2t64/trixie
	unicorn_ok || { echo "install-deps: Unicorn >= 2.1.1 did not install" >&2; exit 1; }
fi
