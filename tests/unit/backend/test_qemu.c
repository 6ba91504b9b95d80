/*
 * Tests for the QEMU backend: its text parsers fed real and hostile QEMU
 * output, board_config validation against the installed binaries, and
 * whole sessions on a real qemu-system-arm (mps2-an385 running firmware
 * built here with arm-none-eabi-gcc) through the session module, the way
 * the API drives them: state changes, console bytes both ways, program
 * formats, snapshots, device discovery, a gdb attach, children that die.
 *
 * Threads: the test thread drives sessions; the backend's supervisor
 * threads update them. Waiting is by polling with generous deadlines,
 * never by asserting on durations.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "backend/qemu.h"
#include "backend/qmp.h"
#include "core/config.h"
#include "core/ports.h"
#include "core/program.h"
#include "core/session.h"
#include "core/store.h"
#include "core/stream.h"
#include "fw_fixture.h"

static char tmpdir[256];
static struct ms_config cfg;
static struct ms_program prog_elf, prog_hex, prog_bin;
/* A QEMU the test spawned itself; killed in teardown if a failed assertion left it. */
static pid_t own_qemu;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---- parsers ------------------------------------------------------------ */

static void test_parse_machines(void **state)
{
	const char *text = "Supported machines are:\n"
	                   "mps2-an385           ARM MPS2 with AN385 FPGA image for Cortex-M3\n"
	                   "virt                 QEMU 7.2 ARM Virtual Machine (alias of virt-7.2)\n"
	                   "virt-7.2             QEMU 7.2 ARM Virtual Machine\n"
	                   "none                 empty machine\n"
	                   "   indented line that is not a machine\n"
	                   "bad;name             shell text must not become a board\n"
	                   "\n"
	                   "trailing-without-newline  last";
	json_t *m = ms__qemu_parse_machines(text);

	(void)state;
	assert_int_equal(json_array_size(m), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "name")),
	                    "mps2-an385");
	assert_non_null(strstr(
	    json_string_value(json_object_get(json_array_get(m, 0), "description")), "Cortex-M3"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "alias_of")),
	                    "virt-7.2");
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 3), "name")),
	                    "trailing-without-newline");
	json_decref(m);

	/* Empty, binary and oversized input: no crash, nothing found. */
	m = ms__qemu_parse_machines("");
	assert_int_equal(json_array_size(m), 0);
	json_decref(m);
	{
		char *big = malloc(200000);

		memset(big, 'a', 199999);
		big[199999] = '\0';
		m = ms__qemu_parse_machines(big);
		assert_int_equal(json_array_size(m), 0);
		json_decref(m);
		free(big);
	}
	m = ms__qemu_parse_machines("\x01\x02\xff\xfe:\n:::\n");
	assert_int_equal(json_array_size(m), 0);
	json_decref(m);
}

static void test_parse_cpus_devices(void **state)
{
	json_t *c = ms__qemu_parse_cpus("Available CPUs:\n  arm926\n  cortex-m3\n  cortex-m3\n"
	                                "x86 qemu64  QEMU Virtual CPU\n  bad$cpu\n\n");
	json_t *d;

	(void)state;
	assert_int_equal(json_array_size(c), 3);
	assert_string_equal(json_string_value(json_array_get(c, 1)), "cortex-m3");
	assert_string_equal(json_string_value(json_array_get(c, 2)), "qemu64");
	json_decref(c);

	d = ms__qemu_parse_devices("Storage devices:\n"
	                           "name \"virtio-blk-device\", bus virtio-bus\n"
	                           "name \"ide-cd\", bus IDE, desc \"virtual IDE CD-ROM\"\n"
	                           "\n"
	                           "USB devices:\n"
	                           "name \"usb-host\", bus usb-bus\n"
	                           "Misc devices:\n"
	                           "name \"loader\", desc \"Generic Loader\"\n"
	                           "name \"unterminated\n"
	                           "garbage line\n");
	assert_int_equal(json_array_size(json_object_get(d, "peripherals")), 4);
	{
		json_t *usb = json_array_get(json_object_get(d, "peripherals"), 2);

		assert_string_equal(json_string_value(json_object_get(usb, "category")), "usb");
		assert_string_equal(json_string_value(json_object_get(usb, "bus")), "usb");
	}
	/* Sorted, unique, lower case, "-bus" removed. */
	{
		json_t *b = json_object_get(d, "bus_types");

		assert_int_equal(json_array_size(b), 3);
		assert_string_equal(json_string_value(json_array_get(b, 0)), "ide");
		assert_string_equal(json_string_value(json_array_get(b, 1)), "usb");
		assert_string_equal(json_string_value(json_array_get(b, 2)), "virtio");
	}
	json_decref(d);
}

static void test_parse_mtree(void **state)
{
	const char *text = "FlatView #0\r\n"
	                   " AS \"I/O\", root: io\r\n"
	                   " Root memory region: io\r\n"
	                   "  0000000000000000-000000000000ffff (prio 0, i/o): io\r\n"
	                   "\r\n"
	                   "FlatView #1\r\n"
	                   " AS \"memory\", root: system\r\n"
	                   " Root memory region: system\r\n"
	                   "  0000000000000000-00000000003fffff (prio 0, ram): mps.ssram1\r\n"
	                   "  0000000000400000-00000000007fffff (prio 0, ram): mps.ssram1\r\n"
	                   "  0000000000800000-0000000000ffffff (prio -1000, i/o): RESERVED 1\r\n"
	                   "  0000000040003000-0000000040003fff (prio -1000, i/o): CMSDK APB "
	                   "peripheral region @0x40000000 @0000000000003000\r\n"
	                   "  0000000040004000-0000000040004fff (prio 0, i/o): uart\r\n"
	                   "  0000000000800000-garbage (prio 0, i/o): broken\r\n"
	                   "  00000000ffff0000-00000000fffeffff (prio 0, i/o): end before start\r\n"
	                   "  0000000008000000-0000000008003fff (prio 0, romd): flash\r\n"
	                   "\r\n"
	                   "FlatView #2\r\n"
	                   " AS \"cpu-memory-1\", root: system\r\n"
	                   "  0000000000000000-00000000003fffff (prio 0, ram): other-view\r\n";
	json_t *m = ms__qemu_parse_mtree(text);
	json_t *r;

	(void)state;
	assert_int_equal(json_array_size(m), 5);
	r = json_array_get(m, 0);
	assert_string_equal(json_string_value(json_object_get(r, "name")), "mps.ssram1");
	assert_string_equal(json_string_value(json_object_get(r, "base")), "0x0");
	assert_string_equal(json_string_value(json_object_get(r, "size")), "0x800000");
	assert_string_equal(json_string_value(json_object_get(r, "kind")), "ram");
	r = json_array_get(m, 1);
	assert_string_equal(json_string_value(json_object_get(r, "kind")), "unimplemented");
	r = json_array_get(m, 2);
	assert_string_equal(json_string_value(json_object_get(r, "name")),
	                    "CMSDK APB peripheral region @0x40000000");
	r = json_array_get(m, 3);
	assert_string_equal(json_string_value(json_object_get(r, "name")), "uart");
	assert_string_equal(json_string_value(json_object_get(r, "base")), "0x40004000");
	assert_string_equal(json_string_value(json_object_get(r, "size")), "0x1000");
	assert_string_equal(json_string_value(json_object_get(r, "kind")), "io");
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 4), "kind")),
	                    "rom");
	json_decref(m);

	/* The first CPU's view wins over system memory (M-profile SoC containers). */
	m = ms__qemu_parse_mtree(
	    "FlatView #0\n AS \"memory\", root: system\n"
	    "  0000000040000000-0000000040000fff (prio 0, i/o): sys-only\n"
	    "FlatView #1\n AS \"cpu-memory-0\", root: armv7m-container\n"
	    "  0000000000000000-000000000003ffff (prio 0, romd): nrf51_soc.flash\n"
	    "  0000000040000000-0000000040000fff (prio -1, i/o): nrf51_soc.clock\n"
	    "  0000000040001000-0000000040001fff (prio -1000, i/o): nrf51_soc.io "
	    "@0000000000001000\n");
	assert_int_equal(json_array_size(m), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "kind")),
	                    "rom");
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "kind")), "io");
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 2), "name")),
	                    "nrf51_soc.io");
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 2), "kind")),
	                    "unimplemented");
	json_decref(m);

	m = ms__qemu_parse_mtree("FlatView #0\n AS \"memory\"\n  (prio\n-\n:\n");
	assert_int_equal(json_array_size(m), 0);
	json_decref(m);
	m = ms__qemu_parse_mtree("");
	assert_int_equal(json_array_size(m), 0);
	json_decref(m);
}

static void test_closest(void **state)
{
	json_t *names =
	    json_pack("[s,s,s,s,s]", "mps2-an385", "mps2-an386", "virt", "microbit", "netduino2");
	char buf[256];

	(void)state;
	ms__qemu_closest("mps2-an38", names, 2, buf, sizeof(buf));
	assert_string_equal(buf, "mps2-an385, mps2-an386");
	ms__qemu_closest("vrit", names, 1, buf, sizeof(buf));
	assert_string_equal(buf, "virt");
	ms__qemu_closest("", names, 3, buf, sizeof(buf));
	assert_true(strlen(buf) > 0);
	/* A name too long for the distance table still answers something sane. */
	{
		char longname[300];

		memset(longname, 'z', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		ms__qemu_closest(longname, names, 3, buf, sizeof(buf));
		assert_string_equal(buf, "");
	}
	ms__qemu_closest("virt", names, 10, buf, 8);
	assert_true(strlen(buf) < 8);
	json_decref(names);
}

/* ---- environment for real sessions --------------------------------------- */

static int setup_env(void **state)
{
	struct ms_err e;
	char path[512];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ms-test-qemu-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	if (fw_build(tmpdir) != 0)
		return -1;
	ms_config_defaults(&cfg);
	free(cfg.server.data_dir);
	cfg.server.data_dir = strdup(tmpdir);
	cfg.backends.qemu.enabled = true;
	cfg.backends.rehost.enabled = false;
	cfg.resources.max_sessions = 20;
	cfg.resources.session_timeout = 0;
	cfg.resources.gdb_port_min = 23400;
	cfg.resources.gdb_port_max = 23499;
	snprintf(path, sizeof(path), "%s/ms.db", tmpdir);
	if (ms_store_open(path, &e) != 0)
		return -1;
	if (ms_ports_init(cfg.resources.gdb_port_min, cfg.resources.gdb_port_max) != 0)
		return -1;
	if (ms_programs_init(tmpdir, 64u << 20) != 0)
		return -1;
	ms_backends_init(&cfg);
	if (!ms_backend_find("qemu"))
		return -1;
	if (ms_sessions_init(&cfg, &e) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/fw.elf", tmpdir);
	if (ms_programs_add_file(path, "fw.elf", &prog_elf, &e) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/fw.hex", tmpdir);
	if (ms_programs_add_file(path, "fw.hex", &prog_hex, &e) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/fw.bin", tmpdir);
	if (ms_programs_add_file(path, "fw.bin", &prog_bin, &e) != 0)
		return -1;
	return 0;
}

static int teardown_env(void **state)
{
	char *argv[] = {"rm", "-rf", tmpdir, NULL};

	(void)state;
	if (own_qemu > 0) {
		kill(own_qemu, SIGKILL);
		waitpid(own_qemu, NULL, 0);
		own_qemu = 0;
	}
	ms_sessions_shutdown();
	ms_backends_fini();
	ms_store_close();
	fw_run(argv);
	return 0;
}

static struct ms_session *new_session(const char *json)
{
	struct ms_err e;
	struct ms_session *s = NULL;
	json_t *bc = json_loads(json, 0, NULL);
	int rc;

	assert_non_null(bc);
	rc = ms_sessions_create("qemu", bc, &s, &e);
	if (rc)
		fail_msg("create %s: %d %s", json, e.status, e.message);
	json_decref(bc);
	return s;
}

static void del_session(struct ms_session *s)
{
	char id[40];

	snprintf(id, sizeof(id), "%s", s->id);
	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(id, NULL), 0);
}

static bool wait_state(struct ms_session *s, enum ms_state want, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (now_ms() < end) {
		if (ms_session_state(s) == want)
			return true;
		msleep(5);
	}
	return ms_session_state(s) == want;
}

/* Wait until the console log (from byte `from`) contains text. */
static bool wait_console(struct ms_session *s, const char *text, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	do {
		char *buf = NULL;
		size_t len = 0;
		bool found = false;

		if (ms_stream_snapshot(s->console, 1 << 20, &buf, &len) == 0 && buf) {
			found = memmem(buf, len, text, strlen(text)) != NULL;
			free(buf);
		}
		if (found)
			return true;
		msleep(5);
	} while (now_ms() < end);
	return false;
}

static int count_console(struct ms_session *s, const char *text)
{
	char *buf = NULL;
	size_t len = 0;
	int n = 0;

	if (ms_stream_snapshot(s->console, 1 << 20, &buf, &len) == 0 && buf) {
		const char *p = buf;
		size_t left = len;
		const char *hit;

		while ((hit = memmem(p, left, text, strlen(text))) != NULL) {
			n++;
			left -= (size_t)(hit - p) + 1;
			p = hit + 1;
		}
		free(buf);
	}
	return n;
}

static pid_t session_pid(struct ms_session *s)
{
	json_t *j = ms_session_json(s);
	json_t *q = json_object_get(j, "qemu");
	pid_t pid = (pid_t)json_integer_value(json_object_get(q, "pid"));

	if (!q) /* the extra fields may be nested under "extra" */
		pid = (pid_t)json_integer_value(
		    json_object_get(json_object_get(json_object_get(j, "extra"), "qemu"), "pid"));
	json_decref(j);
	return pid;
}

static int gdb_port_of(struct ms_session *s)
{
	int port;

	pthread_mutex_lock(&s->lock);
	port = s->gdb_port;
	pthread_mutex_unlock(&s->lock);
	return port;
}

/* ---- capabilities and validation ------------------------------------------ */

static void test_capabilities(void **state)
{
	json_t *c = ms_backend_qemu.capabilities();

	(void)state;
	assert_string_equal(json_string_value(json_object_get(c, "backend")), "qemu");
	assert_true(json_array_size(json_object_get(c, "boards")) > 50);
	{
		json_t *b = json_object_get(c, "boards");
		bool an385 = false, none = false;
		size_t i;
		json_t *v;

		json_array_foreach(b, i, v)
		{
			an385 = an385 || strcmp(json_string_value(v), "mps2-an385") == 0;
			none = none || strcmp(json_string_value(v), "none") == 0;
		}
		assert_true(an385);
		assert_false(none);
	}
	assert_true(json_array_size(json_object_get(c, "processors")) > 10);
	assert_true(json_array_size(json_object_get(c, "peripherals")) > 50);
	assert_true(json_array_size(json_object_get(c, "bus_types")) > 2);
	assert_true(json_array_size(json_object_get(c, "operations")) > 5);
	json_decref(c);
}

static void expect_invalid(const char *json, int status, const char *code, const char *needle)
{
	struct ms_err e;
	json_t *bc = json_loads(json, JSON_DECODE_ANY, NULL);
	int rc = ms_backend_qemu.validate(bc, &e);

	json_decref(bc);
	if (rc == 0)
		fail_msg("accepted %s", json);
	assert_int_equal(e.status, status);
	assert_string_equal(e.code, code);
	if (needle && !strstr(e.message, needle))
		fail_msg("message for %s lacks \"%s\": %s", json, needle, e.message);
}

static void test_validate(void **state)
{
	struct ms_err e;
	json_t *bc;

	(void)state;
	expect_invalid("{\"board\":\"mps2-an38\"}", 400, "unknown_board", "mps2-an385");
	expect_invalid("{\"board\":\"virt; rm -rf /\"}", 400, "unknown_board", NULL);
	expect_invalid("{\"board\":\"mps2-an385\\nsystem_reset\"}", 400, "unknown_board", NULL);
	expect_invalid("{}", 400, "bad_board_config", "board");
	expect_invalid("{\"board\":42}", 400, "bad_board_config", NULL);
	expect_invalid("[1]", 400, "bad_board_config", NULL);
	expect_invalid("{\"board\":\"mps2-an385\",\"cpu\":\"cortex-m33x\"}", 400, "unknown_cpu",
	               "cortex-m33");
	expect_invalid("{\"board\":\"mps2-an385\",\"cpu\":7}", 400, "bad_board_config", NULL);
	expect_invalid("{\"board\":\"virt\",\"memory\":\"12X\"}", 400, "bad_board_config", NULL);
	expect_invalid("{\"board\":\"virt\",\"memory\":\"-5\"}", 400, "bad_board_config", NULL);
	expect_invalid("{\"board\":\"virt\",\"memory\":\"256M,id=x\"}", 400, "bad_board_config",
	               NULL);
	expect_invalid("{\"board\":\"virt\",\"memory\":0}", 400, "bad_board_config", NULL);
	expect_invalid("{\"board\":\"virt\",\"memory\":\"999G\"}", 400, "bad_board_config", NULL);
	expect_invalid("{\"board\":\"virt\",\"network\":\"yes\"}", 400, "bad_board_config", NULL);

	bc = json_pack("{s:s,s:s,s:s}", "board", "virt", "cpu", "cortex-a57", "memory", "256M");
	assert_int_equal(ms_backend_qemu.validate(bc, &e), 0);
	json_decref(bc);
	bc = json_pack("{s:s,s:i}", "board", "mps2-an385", "memory", 16);
	assert_int_equal(ms_backend_qemu.validate(bc, &e), 0);
	json_decref(bc);
	/* The seed README's example body names "raspi3" (QEMU 7.2 calls it raspi3b). */
	if (access("/usr/bin/qemu-system-aarch64", X_OK) == 0) {
		bc = json_pack("{s:s}", "board", "raspi3");
		assert_int_equal(ms_backend_qemu.validate(bc, &e), 0);
		json_decref(bc);
	}
}

/* ---- real sessions ---------------------------------------------------------- */

static void test_session_lifecycle(void **state)
{
	struct ms_session *s = new_session("{\"board\":\"mps2-an385\"}");
	struct ms_err e;
	pid_t pid;
	json_t *devs = NULL;

	(void)state;
	assert_int_equal(ms_session_state(s), MS_STATE_CREATED);
	assert_true(gdb_port_of(s) >= cfg.resources.gdb_port_min);
	pid = session_pid(s);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, 0), 0);

	/* A Cortex-M board without firmware would lock up at once: refused. */
	assert_int_not_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(e.status, 409);

	assert_int_equal(ms_session_load(s, &prog_elf, false, 0, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_CREATED);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	assert_true(wait_console(s, "BOOT\n", 10000));

	/* Typed bytes reach the guest's RX; its answer comes back. */
	assert_int_equal(ms_session_console_write(s, "A?", 2), 0);
	assert_true(wait_console(s, "Alast=A\n", 10000));

	/* The memory map comes from QEMU itself. */
	assert_int_equal(ms_session_devices(s, &devs, &e), 0);
	{
		bool uart = false, ram = false;
		size_t i;
		json_t *d;

		json_array_foreach(devs, i, d)
		{
			const char *base = json_string_value(json_object_get(d, "base"));
			const char *kind = json_string_value(json_object_get(d, "kind"));

			if (strcmp(base, "0x40004000") == 0 && strcmp(kind, "io") == 0)
				uart = true;
			if (strcmp(base, "0x0") == 0 && strcmp(kind, "ram") == 0)
				ram = true;
		}
		assert_true(uart);
		assert_true(ram);
	}
	json_decref(devs);

	assert_int_equal(ms_session_pause(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_PAUSED);
	/* Reset while paused stays paused (QEMU says prelaunch); poweron resumes from reset. */
	assert_int_equal(ms_session_reset(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_PAUSED);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(wait_state(s, MS_STATE_RUNNING, 5000));
	{
		int64_t end = now_ms() + 10000;

		while (count_console(s, "BOOT\n") < 2 && now_ms() < end)
			msleep(5);
		assert_int_equal(count_console(s, "BOOT\n"), 2);
	}
	/* Reset while running keeps running: the firmware boots again. */
	assert_int_equal(ms_session_reset(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	{
		int64_t end = now_ms() + 10000;

		while (count_console(s, "BOOT\n") < 3 && now_ms() < end)
			msleep(5);
		assert_int_equal(count_console(s, "BOOT\n"), 3);
	}

	assert_int_equal(ms_session_poweroff(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_STOPPED);
	assert_int_equal(gdb_port_of(s), 0);
	{
		int64_t end = now_ms() + 5000;

		while (kill(pid, 0) == 0 && now_ms() < end)
			msleep(5);
		assert_int_not_equal(kill(pid, 0), 0);
	}
	/* Console input with no emulator is refused, not swallowed. */
	assert_int_not_equal(ms_session_console_write(s, "x", 1), 0);

	/* Power on again: a new child with the same program. */
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(gdb_port_of(s) > 0);
	{
		int64_t end = now_ms() + 10000;

		while (count_console(s, "BOOT\n") < 4 && now_ms() < end)
			msleep(5);
		assert_true(count_console(s, "BOOT\n") >= 4);
	}
	assert_int_not_equal(session_pid(s), pid);
	del_session(s);
}

static void test_program_formats(void **state)
{
	struct ms_session *s = new_session("{\"board\":\"mps2-an385\",\"cpu\":\"cortex-m3\"}");
	struct ms_err e;

	(void)state;
	/* HEX goes through the generic loader (-kernel would kill QEMU). */
	assert_int_equal(ms_session_load(s, &prog_hex, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(wait_console(s, "BOOT\n", 10000));

	/* Loading while running restarts the child and keeps it running; the raw binary at 0. */
	assert_int_equal(ms_session_load(s, &prog_bin, true, 0, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	{
		int64_t end = now_ms() + 10000;

		while (count_console(s, "BOOT\n") < 2 && now_ms() < end)
			msleep(5);
		assert_int_equal(count_console(s, "BOOT\n"), 2);
	}
	/* The loaded image survives a reset. */
	assert_int_equal(ms_session_reset(s, &e), 0);
	{
		int64_t end = now_ms() + 10000;

		while (count_console(s, "BOOT\n") < 3 && now_ms() < end)
			msleep(5);
		assert_int_equal(count_console(s, "BOOT\n"), 3);
	}
	del_session(s);
}

static void test_snapshots(void **state)
{
	struct ms_session *s = new_session("{\"board\":\"mps2-an385\"}");
	struct ms_err e;
	json_t *snap = NULL;

	(void)state;
	assert_int_equal(ms_session_load(s, &prog_elf, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(wait_console(s, "BOOT\n", 10000));
	assert_int_equal(ms_session_console_write(s, "B", 1), 0);
	assert_true(wait_console(s, "B", 5000));

	assert_int_equal(ms_session_snapshot_save(s, "snap-b", &snap, &e), 0);
	assert_true(json_integer_value(json_object_get(snap, "size")) > 0);
	json_decref(snap);
	/* Saving did not leave the machine paused. */
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);

	assert_int_equal(ms_session_console_write(s, "C?", 2), 0);
	assert_true(wait_console(s, "last=C\n", 5000));

	assert_int_equal(ms_session_snapshot_restore(s, "snap-b", &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	assert_int_equal(ms_session_console_write(s, "?", 1), 0);
	assert_true(wait_console(s, "last=B\n", 5000));

	/* A restore QEMU cannot do leaves the machine stopped, and says so. */
	pthread_mutex_lock(&s->op_lock);
	assert_int_not_equal(s->backend->snapshot_load(s, "no-such-tag", &e), 0);
	pthread_mutex_unlock(&s->op_lock);
	assert_int_equal(e.status, 502);
	assert_non_null(strstr(e.message, "no-such-tag"));
	assert_non_null(strstr(e.message, "paused"));
	assert_int_equal(ms_session_state(s), MS_STATE_PAUSED);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);

	/* Deleting works while running and while powered off. */
	assert_int_equal(ms_session_snapshot_save(s, "snap-c", &snap, &e), 0);
	json_decref(snap);
	assert_int_equal(ms_session_snapshot_delete(s, "snap-b", &e), 0);
	assert_int_equal(ms_session_poweroff(s, &e), 0);
	assert_int_equal(ms_session_snapshot_delete(s, "snap-c", &e), 0);
	del_session(s);
}

static void test_restore_unsupported_board(void **state)
{
	struct ms_session *s = new_session("{\"board\":\"lm3s6965evb\"}");
	struct ms_err e;

	(void)state;
	pthread_mutex_lock(&s->op_lock);
	assert_int_not_equal(s->backend->snapshot_load(s, "any", &e), 0);
	pthread_mutex_unlock(&s->op_lock);
	assert_int_equal(e.status, 501);
	/* QEMU is still there: the refusal did not kill it. */
	assert_int_equal(ms_session_state(s), MS_STATE_CREATED);
	assert_int_equal(kill(session_pid(s), 0), 0);
	del_session(s);
}

static void test_child_deaths(void **state)
{
	struct ms_session *s = new_session("{\"board\":\"mps2-an385\"}");
	struct ms_err e;
	char reason[512];

	(void)state;
	assert_int_equal(ms_session_load(s, &prog_elf, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(wait_console(s, "BOOT\n", 10000));

	/* Killed from outside: error with the signal, port freed. */
	assert_int_equal(kill(session_pid(s), SIGKILL), 0);
	assert_true(wait_state(s, MS_STATE_ERROR, 10000));
	pthread_mutex_lock(&s->lock);
	snprintf(reason, sizeof(reason), "%s", s->reason);
	pthread_mutex_unlock(&s->lock);
	assert_non_null(strstr(reason, "signal 9"));
	assert_int_equal(gdb_port_of(s), 0);

	/* Power on from error starts a new child. */
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	{
		int64_t end = now_ms() + 10000;

		while (count_console(s, "BOOT\n") < 2 && now_ms() < end)
			msleep(5);
		assert_int_equal(count_console(s, "BOOT\n"), 2);
	}
	/* The guest locks up: QEMU aborts; its own stderr line is the reason. */
	assert_int_equal(ms_session_console_write(s, "!", 1), 0);
	assert_true(wait_state(s, MS_STATE_ERROR, 10000));
	pthread_mutex_lock(&s->lock);
	snprintf(reason, sizeof(reason), "%s", s->reason);
	pthread_mutex_unlock(&s->lock);
	assert_non_null(strstr(reason, "signal 6"));
	assert_non_null(strstr(reason, "Lockup"));
	del_session(s);
}

static void test_gdb_attach_pauses(void **state)
{
	struct ms_session *s = new_session("{\"board\":\"mps2-an385\"}");
	struct ms_err e;
	struct sockaddr_in sa;
	int fd;

	(void)state;
	assert_int_equal(ms_session_load(s, &prog_elf, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(wait_console(s, "BOOT\n", 10000));
	/* Opening a connection to the gdbstub stops the VM; QMP says STOP. */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)gdb_port_of(s));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true(wait_state(s, MS_STATE_PAUSED, 10000));
	close(fd);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(wait_state(s, MS_STATE_RUNNING, 5000));
	del_session(s);
}

static bool add_program(const char *path, struct ms_program *p)
{
	struct ms_err e;

	if (access(path, R_OK) != 0)
		return false;
	if (ms_programs_add_file(path, NULL, p, &e) != 0)
		fail_msg("cannot add %s: %s", path, e.message);
	return true;
}

/* Debian's MicroPython for the micro:bit, as a HEX file, to its REPL. */
static void test_microbit_micropython(void **state)
{
	struct ms_program p;
	struct ms_session *s;
	struct ms_err e;

	(void)state;
	if (!add_program("/usr/share/firmware-microbit-micropython/firmware.hex", &p))
		skip();
	assert_int_equal(p.format, MS_IMAGE_IHEX);
	s = new_session("{\"board\":\"microbit\"}");
	assert_int_equal(ms_session_load(s, &p, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(wait_console(s, ">>> ", 20000));
	assert_int_equal(ms_session_console_write(s, "print(1+2)\r", 11), 0);
	assert_true(wait_console(s, "print(1+2)\r\n3\r\n", 20000));
	/* The SoC's own map (flash, sram, uart), not the empty system container. */
	{
		json_t *devs = NULL, *d;
		size_t i;
		bool uart = false, flash = false;

		assert_int_equal(ms_session_devices(s, &devs, &e), 0);
		json_array_foreach(devs, i, d)
		{
			const char *base = json_string_value(json_object_get(d, "base"));
			const char *kind = json_string_value(json_object_get(d, "kind"));

			uart = uart || (strcmp(base, "0x40002000") == 0 && strcmp(kind, "io") == 0);
			flash = flash || (strcmp(base, "0x0") == 0 && strcmp(kind, "rom") == 0);
		}
		json_decref(devs);
		assert_true(uart);
		assert_true(flash);
	}
	del_session(s);
}

/* Debian's U-Boot on virt with a cortex-a57: the aarch64 binary is chosen. */
static void test_virt_uboot(void **state)
{
	struct ms_program p;
	struct ms_session *s;
	struct ms_err e;
	json_t *j;

	(void)state;
	if (access("/usr/bin/qemu-system-aarch64", X_OK) != 0 ||
	    !add_program("/usr/lib/u-boot/qemu_arm64/uboot.elf", &p))
		skip();
	assert_string_equal(p.arch, "aarch64");
	s = new_session("{\"board\":\"virt\",\"cpu\":\"cortex-a57\",\"memory\":\"256M\"}");
	j = ms_session_json(s);
	assert_non_null(strstr(
	    json_string_value(json_object_get(json_object_get(j, "qemu"), "binary")), "aarch64"));
	json_decref(j);
	assert_int_equal(ms_session_load(s, &p, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(wait_console(s, "=> ", 30000));
	assert_int_equal(ms_session_console_write(s, "bdinfo\n", 7), 0);
	assert_true(wait_console(s, "DRAM bank", 20000));
	del_session(s);
}

/* A session record as the session module would rebuild it after a restart. */
static struct ms_session *fake_reloaded(const char *name)
{
	struct ms_session *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	snprintf(s->id, sizeof(s->id), "sess_%s", name);
	snprintf(s->dir, sizeof(s->dir), "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(s->dir, 0700), 0);
	s->backend = &ms_backend_qemu;
	s->board_config = json_pack("{s:s}", "board", "mps2-an385");
	snprintf(s->board, sizeof(s->board), "mps2-an385");
	s->console = ms_stream_new(65536, NULL);
	s->events = ms_stream_new(65536, NULL);
	s->extra = json_object();
	s->state = MS_STATE_STOPPED;
	s->refs = 1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->op_lock, NULL);
	return s;
}

static void free_fake(struct ms_session *s)
{
	ms_stream_unref(s->console);
	ms_stream_unref(s->events);
	json_decref(s->board_config);
	json_decref(s->extra);
	free(s);
}

static void test_reattach(void **state)
{
	struct ms_session *s = fake_reloaded("reattach");
	struct ms_session *gone = fake_reloaded("gone");
	struct ms_err e;
	char qmp[600], uart[600], gdb[64], elf[300], path[600];
	char *argv[] = {"/usr/bin/qemu-system-arm",
	                "-M",
	                "mps2-an385",
	                "-S",
	                "-display",
	                "none",
	                "-monitor",
	                "none",
	                "-nic",
	                "none",
	                "-kernel",
	                elf,
	                "-qmp",
	                qmp,
	                "-chardev",
	                uart,
	                "-serial",
	                "chardev:ser0",
	                "-gdb",
	                gdb,
	                NULL};
	pid_t pid;
	int port = ms_port_alloc(), fd = -1;
	FILE *f;
	char reason[512];

	(void)state;
	/* The QEMU a previous daemon left behind, with its state file. */
	assert_true(port > 0);
	ms_port_free(port);
	snprintf(elf, sizeof(elf), "%s/fw.elf", tmpdir);
	snprintf(qmp, sizeof(qmp), "unix:%s/qmp.sock,server=on,wait=off", s->dir);
	snprintf(uart, sizeof(uart), "socket,id=ser0,path=%s/uart.sock,server=on,wait=off", s->dir);
	snprintf(gdb, sizeof(gdb), "tcp:127.0.0.1:%d", port);
	assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
	own_qemu = pid;
	snprintf(path, sizeof(path), "%s/qemu.json", s->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"pid\": %d, \"gdb_port\": %d}", (int)pid, port);
	fclose(f);
	snprintf(path, sizeof(path), "%s/qmp.sock", s->dir);
	for (int i = 0; i < 5000 && fd < 0; i++) {
		fd = ms_qmp_connect_unix(path);
		if (fd < 0)
			msleep(1);
	}
	assert_true(fd >= 0);
	{
		/* The old daemon had started it; then it went away. */
		const char *cmds = "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"cont\"}\n";
		char buf[4096];
		ssize_t n = write(fd, cmds, strlen(cmds));
		int64_t end = now_ms() + 5000;
		size_t got = 0;

		assert_int_equal(n, (ssize_t)strlen(cmds));
		while (now_ms() < end && got < sizeof(buf) - 1) {
			n = read(fd, buf + got, sizeof(buf) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			buf[got] = '\0';
			if (strstr(buf, "RESUME"))
				break;
		}
		assert_non_null(strstr(buf, "RESUME"));
		close(fd);
	}

	/* No socket at all: gone. A state file naming another process: gone. */
	assert_int_equal(ms_backend_qemu.reattach(gone), -ESRCH);
	snprintf(path, sizeof(path), "%s/qemu.json", gone->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"pid\": %d, \"gdb_port\": 1}", (int)getpid());
	fclose(f);
	assert_int_equal(ms_backend_qemu.reattach(gone), -ESRCH);
	free_fake(gone);

	assert_int_equal(ms_backend_qemu.reattach(s), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	assert_int_equal(gdb_port_of(s), port);
	assert_int_equal(ms_backend_qemu.console_write(s, "Z?", 2), 0);
	assert_true(wait_console(s, "Zlast=Z\n", 10000));
	pthread_mutex_lock(&s->op_lock);
	assert_int_equal(ms_backend_qemu.pause(s, &e), 0);
	pthread_mutex_unlock(&s->op_lock);

	/* It dies: no exit status for a process that is not our child, but it is noticed. */
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_true(wait_state(s, MS_STATE_ERROR, 10000));
	pthread_mutex_lock(&s->lock);
	snprintf(reason, sizeof(reason), "%s", s->reason);
	pthread_mutex_unlock(&s->lock);
	assert_non_null(strstr(reason, "unknown"));
	assert_int_equal(gdb_port_of(s), 0);
	/* Reaped here: it was spawned by this test process. */
	waitpid(pid, NULL, 0);
	own_qemu = 0;
	ms_backend_qemu.destroy(s);
	free_fake(s);
}

/* A session reloaded as stopped (its QEMU was gone) powers on with its recorded program. */
static void test_reloaded_stopped_session(void **state)
{
	struct ms_session *s = fake_reloaded("reloaded");
	struct ms_err e;

	(void)state;
	snprintf(s->program_id, sizeof(s->program_id), "%s", prog_elf.id);
	assert_null(s->bdata);
	pthread_mutex_lock(&s->op_lock);
	assert_int_equal(ms_backend_qemu.power_on(s, &e), 0);
	pthread_mutex_unlock(&s->op_lock);
	assert_true(wait_console(s, "BOOT\n", 10000));
	assert_true(gdb_port_of(s) > 0);
	pthread_mutex_lock(&s->op_lock);
	assert_int_equal(ms_backend_qemu.power_off(s, &e), 0);
	pthread_mutex_unlock(&s->op_lock);
	assert_int_equal(gdb_port_of(s), 0);
	ms_backend_qemu.destroy(s);
	free_fake(s);
}

/* QEMU refusing to start is a 502 with QEMU's own words, and nothing is left behind. */
static void test_qemu_refuses_to_start(void **state)
{
	struct ms_err e;
	struct ms_session *s = NULL;
	json_t *bc = json_pack("{s:s,s:s}", "board", "mps2-an385", "memory", "1G");
	unsigned before = ms_sessions_total();
	size_t stored_before;
	json_t *docs = NULL;

	(void)state;
	assert_int_equal(ms_store_list(MS_TABLE_SESSIONS, NULL, &docs), 0);
	stored_before = json_array_size(docs);
	json_decref(docs);
	/* QEMU exits with status 1 on a command line it refuses: the client's 400, in QEMU's words. */
	assert_int_not_equal(ms_sessions_create("qemu", bc, &s, &e), 0);
	assert_null(s);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "bad_board_config");
	assert_non_null(strstr(e.message, "Invalid RAM size"));
	assert_int_equal(ms_sessions_total(), before);
	/* A refused configuration never counts as known to start: the same answer again. */
	assert_int_not_equal(ms_sessions_create("qemu", bc, &s, &e), 0);
	json_decref(bc);
	assert_null(s);
	assert_int_equal(e.status, 400);
	assert_non_null(strstr(e.message, "Invalid RAM size"));
	assert_int_equal(ms_sessions_total(), before);
	/* Nothing was recorded for the session that never existed. */
	{
		json_t *docs = NULL;

		assert_int_equal(ms_store_list(MS_TABLE_SESSIONS, NULL, &docs), 0);
		assert_int_equal(json_array_size(docs), stored_before);
		json_decref(docs);
	}
}

/* A gdbstub answers on port: connect, ask why it stopped, expect QEMU's ack. */
static bool gdb_answers(int port)
{
	struct sockaddr_in sa;
	struct timeval tv = {10, 0};
	char c = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, "$?#3f", 5) == 5 &&
	    read(fd, &c, 1) == 1 && c == '+';
	close(fd);
	return ok;
}

/*
 * A configuration seen starting before is not waited for at create: every
 * operation right after create must still find (or end) a QEMU that may be
 * half-way through its start.
 */
static void test_ops_right_after_create(void **state)
{
	struct ms_err e;
	const char *bc = "{\"board\":\"mps2-an385\",\"cpu\":\"cortex-m3\"}";

	(void)state;
	/* The first create of a configuration waits for QEMU; it is then known to start. */
	del_session(new_session(bc));

	for (int round = 0; round < 3; round++) {
		struct ms_session *s = new_session(bc);
		json_t *devs = NULL;
		pid_t first = session_pid(s);

		/* Needs QMP: waits for the start to finish. */
		assert_int_equal(ms_session_devices(s, &devs, &e), 0);
		assert_true(json_array_size(devs) > 0);
		json_decref(devs);
		assert_int_equal(ms_session_state(s), MS_STATE_CREATED);
		del_session(s);

		/* A load ends the instance that never ran and starts the program's. */
		s = new_session(bc);
		first = session_pid(s);
		{
			/* The GDB port listens from create on, and keeps its number across the restart. */
			int port = gdb_port_of(s);

			assert_true(gdb_answers(port));
			assert_int_equal(ms_session_load(s, &prog_elf, false, 0, &e), 0);
			assert_int_equal(gdb_port_of(s), port);
			assert_true(gdb_answers(port));
		}
		assert_int_not_equal(session_pid(s), first);
		assert_int_equal(ms_session_state(s), MS_STATE_CREATED);
		assert_int_equal(ms_session_poweron(s, &e), 0);
		assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
		assert_true(wait_console(s, "BOOT\n", 10000));
		/* The ended first instance was not reported as a failure. */
		assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
		del_session(s);

		/* Console input waits for the UART to be connected, then is queued. */
		s = new_session(bc);
		assert_int_equal(ms_session_console_write(s, "x", 1), 0);
		/* Poweroff and delete at once end a QEMU still starting, quietly. */
		assert_int_equal(ms_session_poweroff(s, &e), 0);
		assert_int_equal(ms_session_state(s), MS_STATE_STOPPED);
		assert_int_equal(gdb_port_of(s), 0);
		del_session(s);
		s = new_session(bc);
		first = session_pid(s);
		assert_true(first > 0);
		del_session(s);

		/* A QEMU that dies while nobody waits for its start: the session says so. */
		s = new_session(bc);
		assert_int_equal(kill(session_pid(s), SIGKILL), 0);
		assert_true(wait_state(s, MS_STATE_ERROR, 10000));
		{
			char reason[512];

			pthread_mutex_lock(&s->lock);
			snprintf(reason, sizeof(reason), "%s", s->reason);
			pthread_mutex_unlock(&s->lock);
			assert_non_null(strstr(reason, "signal 9"));
		}
		assert_int_equal(gdb_port_of(s), 0);
		/* A load is refused in error, with the reason. */
		assert_int_not_equal(ms_session_load(s, &prog_elf, false, 0, &e), 0);
		assert_int_equal(e.status, 409);
		assert_non_null(strstr(e.message, "signal 9"));
		del_session(s);
		{
			int64_t end = now_ms() + 5000;

			while (kill(first, 0) == 0 && now_ms() < end)
				msleep(5);
			assert_int_not_equal(kill(first, 0), 0);
		}
	}
}

/*
 * Figures for the report (printed, not asserted): QEMU's own spawn-to-greeting
 * time and the backend's create + load + poweron until running.
 */
static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_latency_figures(void **state)
{
	enum { N = 7 };
	int64_t bare[N], full[N];
	struct ms_err e;

	(void)state;
	for (int i = 0; i < N; i++) {
		char sock[300], opt[400];
		char *argv[] = {"/usr/bin/qemu-system-arm",
		                "-M",
		                "mps2-an385",
		                "-S",
		                "-display",
		                "none",
		                "-monitor",
		                "none",
		                "-nic",
		                "none",
		                "-qmp",
		                opt,
		                NULL};
		pid_t pid;
		int fd = -1;
		char buf[256];
		int64_t t0;

		snprintf(sock, sizeof(sock), "%s/bare.sock", tmpdir);
		unlink(sock);
		snprintf(opt, sizeof(opt), "unix:%s,server=on,wait=off", sock);
		t0 = now_ms();
		assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
		while (fd < 0) {
			fd = ms_qmp_connect_unix(sock);
			if (fd < 0)
				msleep(1);
		}
		assert_true(read(fd, buf, sizeof(buf)) > 0);
		bare[i] = now_ms() - t0;
		close(fd);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	for (int i = 0; i < N; i++) {
		int64_t t0 = now_ms();
		struct ms_session *s = new_session("{\"board\":\"mps2-an385\"}");

		assert_int_equal(ms_session_load(s, &prog_elf, false, 0, &e), 0);
		assert_int_equal(ms_session_poweron(s, &e), 0);
		assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
		full[i] = now_ms() - t0;
		del_session(s);
	}
	qsort(bare, N, sizeof(bare[0]), cmp_i64);
	qsort(full, N, sizeof(full[0]), cmp_i64);
	printf("figure: qemu-system-arm mps2-an385 spawn to QMP greeting, median of %d: %lld ms\n",
	       N, (long long)bare[N / 2]);
	printf("figure: backend create + load ELF + poweron until running, median of %d: %lld ms\n",
	       N, (long long)full[N / 2]);
}

int main(void)
{
	const struct CMUnitTest parsers[] = {
	    cmocka_unit_test(test_parse_machines),
	    cmocka_unit_test(test_parse_cpus_devices),
	    cmocka_unit_test(test_parse_mtree),
	    cmocka_unit_test(test_closest),
	};
	const struct CMUnitTest sessions[] = {
	    cmocka_unit_test(test_capabilities),
	    cmocka_unit_test(test_validate),
	    cmocka_unit_test(test_session_lifecycle),
	    cmocka_unit_test(test_program_formats),
	    cmocka_unit_test(test_snapshots),
	    cmocka_unit_test(test_restore_unsupported_board),
	    cmocka_unit_test(test_child_deaths),
	    cmocka_unit_test(test_gdb_attach_pauses),
	    cmocka_unit_test(test_microbit_micropython),
	    cmocka_unit_test(test_virt_uboot),
	    cmocka_unit_test(test_reattach),
	    cmocka_unit_test(test_reloaded_stopped_session),
	    cmocka_unit_test(test_qemu_refuses_to_start),
	    cmocka_unit_test(test_ops_right_after_create),
	    cmocka_unit_test(test_latency_figures),
	};
	int rc = cmocka_run_group_tests_name("qemu parsers", parsers, NULL, NULL);

	signal(SIGPIPE, SIG_IGN);
	rc |= cmocka_run_group_tests_name("qemu sessions", sessions, setup_env, teardown_env);
	return rc;
}
