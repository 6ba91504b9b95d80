# MachineServer build. Plain make + pkg-config, as STYLE.md asks.
#   make            daemon (build/machineserver) and CLI (build/mctl)
#   make unit       cmocka unit tests
#   make firmware   test firmware with arm-none-eabi-gcc
#   make test       everything: build, unit, firmware, integration (pytest)
#   make sanitize   the same binaries with ASan + UBSan in build-asan/
#   make bench      benchmarks; figures go to docs/PERFORMANCE.md by hand
#   make format     clang-format in place;  make format-check  for CI

CC ?= gcc
# Debian's interpreter, which has python3-pytest and python3-websocket (a pyenv python3 earlier on PATH would not).
PYTHON ?= /usr/bin/python3
BUILD ?= build
PKGS := libmicrohttpd jansson libcyaml yaml-0.1 sqlite3 libcrypto unicorn capstone \
	libelf libdw libxml-2.0 libcurl hiredis
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
# The rehost engine runs on 2.0.1 too, but every guest store costs ~45x more there
# (bench/unicorn-store.sh); scripts/install-deps.sh installs 2.1.1 from Debian trixie.
ifneq ($(shell pkg-config --atleast-version=2.1.1 unicorn && echo ok),ok)
$(warning Unicorn $(shell pkg-config --modversion unicorn) is older than 2.1.1: rehost will be slow; run scripts/install-deps.sh)
endif

OPT ?= -O2
CFLAGS ?= $(OPT) -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation -Isrc $(PKG_CFLAGS) \
	-DMS_VERSION='"$(VERSION)"' -D_GNU_SOURCE -fno-strict-aliasing
LDLIBS += $(PKG_LIBS) -lpthread -lm

LIB_SRC := $(sort $(wildcard src/core/*.c src/http/*.c src/backend/*.c src/rehost/*.c \
	src/infer/*.c src/jobs/*.c src/cosim/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC := $(sort $(wildcard src/cli/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)

UNIT_SRC := $(sort $(wildcard tests/unit/*/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

all: $(BUILD)/machineserver $(BUILD)/mctl

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libms.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/machineserver: $(BUILD)/obj/src/main.o $(BUILD)/libms.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mctl: $(CLI_OBJ) $(BUILD)/libms.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests may #include the .c file they test to reach static functions;
# they are linked against the library (minus nothing: duplicates are avoided
# by including only static helpers' files under a guard, see tests/unit/README).
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libms.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libms.a $(LDLIBS) $(shell pkg-config --libs cmocka)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

firmware:
	$(MAKE) -C firmware BUILD=$(abspath $(BUILD))/firmware
	$(MAKE) -C firmware/infer BUILD=$(abspath $(BUILD))/firmware

integration: all firmware
	MS_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests/integration

test: all unit firmware integration

# -fsanitize is in CFLAGS (through OPT), which is also on every link line.
# Unicorn 2.1.1 leaks 32 bytes per uc_mmio_map inside the library: tests/integration/lsan.supp.
sanitize:
	LSAN_OPTIONS=suppressions=$(abspath tests/integration/lsan.supp) \
	$(MAKE) BUILD=build-asan OPT='-O1 -fsanitize=address,undefined -fno-omit-frame-pointer' all unit

bench: all firmware
	@set -e; for b in bench/*.sh; do echo "== $$b"; BUILD=$(abspath $(BUILD)) bash $$b; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan

.PHONY: all unit firmware integration test sanitize bench format format-check clean

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(BUILD)/obj/src/main.d
