/*
 * Unit tests for core/session.c: the state machine every backend shares,
 * driven through the real rehost backend (in-process, so the test needs no
 * child processes) with our mps2-hello firmware built by arm-none-eabi-gcc.
 * Checks which requests each state allows, idempotence, snapshots by name
 * and id, the session limit, deletion, the event stream, the run directory
 * made only when something is written there, and a restart finding the
 * sessions in SQLite with their logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "core/config.h"
#include "core/ports.h"
#include "core/program.h"
#include "core/session.h"
#include "core/store.h"
#include "core/stream.h"

static struct ms_config cfg;
static char tmpdir[] = "/tmp/ms-session-XXXXXX";
static char firmware[700];

static int setup(void **state)
{
	char cwd[512], cmd[1200], db[600];
	struct ms_err e;

	(void)state;
	if (mkdtemp(tmpdir) == NULL || getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "make -s -C firmware BUILD=%s/build/firmware >/dev/null", cwd);
	if (system(cmd) != 0)
		return -1;
	snprintf(firmware, sizeof(firmware), "%s/build/firmware/mps2-hello.elf", cwd);
	ms_config_defaults(&cfg);
	free(cfg.server.data_dir);
	cfg.server.data_dir = strdup(tmpdir);
	cfg.backends.qemu.enabled = false;
	cfg.backends.rehost.enabled = true;
	cfg.resources.max_sessions = 2;
	cfg.resources.gdb_port_min = 46200;
	cfg.resources.gdb_port_max = 46299;
	snprintf(db, sizeof(db), "%s/test.db", tmpdir);
	if (ms_store_open(db, &e) != 0 || ms_programs_init(tmpdir, 1 << 20) != 0 ||
	    ms_ports_init(cfg.resources.gdb_port_min, cfg.resources.gdb_port_max) != 0)
		return -1;
	ms_backends_init(&cfg);
	return ms_sessions_init(&cfg, &e);
}

static int teardown(void **state)
{
	(void)state;
	ms_sessions_shutdown();
	ms_backends_fini();
	ms_store_close();
	ms_config_free(&cfg);
	return 0;
}

static struct ms_session *create(void)
{
	struct ms_session *s = NULL;
	struct ms_err e;
	json_t *bc = json_pack("{s:s}", "board", "mps2-an385");

	assert_int_equal(ms_sessions_create("rehost", bc, &s, &e), 0);
	json_decref(bc);
	assert_int_equal(ms_session_state(s), MS_STATE_CREATED);
	return s;
}

static bool console_has(struct ms_session *s, const char *text)
{
	for (int i = 0; i < 500; i++) {
		char *log = NULL;
		size_t len = 0;
		bool hit;

		assert_int_equal(ms_stream_snapshot(s->console, 1 << 20, &log, &len), 0);
		hit = strstr(log, text) != NULL;
		free(log);
		if (hit)
			return true;
		usleep(10000);
	}
	return false;
}

static void test_refusals_before_anything_exists(void **state)
{
	struct ms_session *s = NULL;
	struct ms_err e;
	json_t *bc = json_pack("{s:s}", "board", "no-such-board");

	(void)state;
	ms_err_clear(&e);
	assert_int_not_equal(ms_sessions_create("nope", NULL, &s, &e), 0);
	assert_int_equal(e.status, 400);
	assert_int_not_equal(ms_sessions_create("qemu", NULL, &s, &e), 0);
	assert_int_equal(e.status, 501); /* compiled in, disabled by the config */
	assert_int_not_equal(ms_sessions_create("rehost", bc, &s, &e), 0);
	assert_int_equal(e.status, 400);
	assert_int_equal(ms_sessions_total(), 0);
	json_decref(bc);
	assert_int_not_equal(ms_sessions_delete("sess_0000000000000000", &e), 0);
	assert_int_equal(e.status, 404);
}

static void test_lifecycle(void **state)
{
	struct ms_session *s = create();
	struct ms_program p;
	struct ms_err e;
	json_t *snap = NULL;
	char id[40];

	(void)state;
	ms_err_clear(&e);
	/* Nothing has run yet: pause makes no sense, reset needs a program. */
	assert_int_not_equal(ms_session_pause(s, &e), 0);
	assert_int_equal(e.status, 409);

	assert_int_equal(ms_programs_add_file(firmware, "mps2-hello.elf", &p, &e), 0);
	assert_int_equal(ms_session_load(s, &p, false, 0, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_CREATED);

	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	assert_true(console_has(s, "Hello from MachineServer"));
	assert_int_equal(ms_session_poweron(s, &e), 0); /* idempotent */

	assert_int_equal(ms_session_pause(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_PAUSED);
	assert_int_equal(ms_session_pause(s, &e), 0);
	assert_int_equal(ms_session_reset(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_PAUSED);

	/* Snapshots: names are validated, unique, and found by name or id. */
	assert_int_not_equal(ms_session_snapshot_save(s, "a b", &snap, &e), 0);
	assert_int_equal(e.status, 400);
	assert_int_not_equal(ms_session_snapshot_save(s, "x\n;rm", &snap, &e), 0);
	assert_int_equal(ms_session_snapshot_save(s, "first", &snap, &e), 0);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(snap, "id")));
	json_decref(snap);
	assert_int_not_equal(ms_session_snapshot_save(s, "first", &snap, &e), 0);
	assert_int_equal(e.status, 409);
	assert_int_not_equal(ms_session_snapshot_restore(s, "second", &e), 0);
	assert_int_equal(e.status, 404);
	assert_int_equal(ms_session_snapshot_restore(s, "first", &e), 0);
	assert_int_equal(ms_session_snapshot_restore(s, id, &e), 0);
	snap = ms_session_snapshots_json(s);
	assert_int_equal(json_array_size(snap), 1);
	json_decref(snap);

	/* Powered off: the emulator is gone, so reset and snapshots are refused. */
	assert_int_equal(ms_session_poweroff(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_STOPPED);
	assert_int_equal(ms_session_poweroff(s, &e), 0);
	assert_int_not_equal(ms_session_reset(s, &e), 0);
	assert_int_equal(e.status, 409);
	assert_int_not_equal(ms_session_snapshot_save(s, "late", &snap, &e), 0);
	assert_int_equal(e.status, 409);
	assert_int_not_equal(ms_session_pause(s, &e), 0);
	assert_int_equal(e.status, 409);

	/* And on again, with its program. */
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);

	assert_int_equal(ms_session_snapshot_delete(s, "first", &e), 0);
	assert_int_not_equal(ms_session_snapshot_delete(s, "first", &e), 0);
	assert_int_equal(e.status, 404);

	snprintf(id, sizeof(id), "%s", s->id);
	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(id, &e), 0);
	assert_null(ms_session_find(id));
}

static void test_limit_and_events(void **state)
{
	struct ms_session *a = create(), *b = create(), *c = NULL;
	struct ms_err e;
	char *log = NULL;
	size_t len = 0;
	json_t *bc = json_pack("{s:s}", "board", "mps2-an385");

	(void)state;
	ms_err_clear(&e);
	assert_int_not_equal(ms_sessions_create("rehost", bc, &c, &e), 0);
	assert_int_equal(e.status, 429);
	json_decref(bc);

	ms_session_set_state(a, MS_STATE_ERROR, "lockup at pc 0x1234");
	assert_int_not_equal(ms_session_reset(a, &e), 0);
	assert_int_equal(e.status, 409);
	assert_non_null(strstr(e.message, "lockup at pc 0x1234"));
	assert_int_equal(ms_stream_snapshot(a->events, 1 << 20, &log, &len), 0);
	assert_non_null(strstr(log, "\"type\":\"created\""));
	assert_non_null(strstr(log, "\"state\":\"error\""));
	free(log);

	assert_int_equal(ms_sessions_delete(a->id, &e), 0);
	assert_int_equal(ms_sessions_delete(b->id, &e), 0);
	ms_session_put(a);
	ms_session_put(b);
	assert_int_equal(ms_sessions_total(), 0);
}

static bool exists(const char *dir, const char *name)
{
	char path[1200];
	struct stat sb;

	snprintf(path, sizeof(path), "%s%s%s", dir, name[0] ? "/" : "", name);
	return stat(path, &sb) == 0;
}

/*
 * rehost makes no directory and no file while a session is created; the
 * logs appear at their first flush, a daemon restart finds the session in
 * SQLite with its program and its logs, and a deleted session's directory
 * does not come back.
 */
static void test_restart_and_run_dir(void **state)
{
	struct ms_session *s = create();
	struct ms_program p;
	struct ms_err e;
	char id[40], dir[512];
	char *log = NULL;
	size_t len = 0;

	(void)state;
	snprintf(id, sizeof(id), "%s", s->id);
	snprintf(dir, sizeof(dir), "%s", s->dir);
	assert_false(exists(dir, ""));
	assert_int_equal(ms_programs_add_file(firmware, "mps2-hello.elf", &p, &e), 0);
	assert_int_equal(ms_session_load(s, &p, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_true(console_has(s, "Hello from MachineServer"));
	assert_false(exists(dir, "")); /* no snapshot, no flush yet: nothing on disk */
	ms_stream_flush(s->console);
	assert_true(exists(dir, "console.log"));
	ms_session_put(s);

	/* Restart: the shutdown writes what the logs still lack. */
	ms_sessions_shutdown();
	assert_true(exists(dir, "events.log"));
	assert_int_equal(ms_sessions_init(&cfg, &e), 0);
	s = ms_session_find(id);
	assert_non_null(s);
	assert_int_equal(ms_session_state(s), MS_STATE_STOPPED);
	assert_string_equal(s->program_id, p.id);
	assert_int_equal(ms_stream_snapshot(s->console, 1 << 20, &log, &len), 0);
	assert_non_null(strstr(log, "Hello from MachineServer"));
	free(log);
	assert_int_equal(ms_stream_snapshot(s->events, 1 << 20, &log, &len), 0);
	assert_non_null(strstr(log, "\"type\":\"created\""));
	assert_non_null(strstr(log, "\"type\":\"reloaded\""));
	free(log);
	/* Powered on again it runs its program (a second greeting after the first). */
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	{
		bool twice = false;

		for (int i = 0; i < 500 && !twice; i++) {
			char *first;

			assert_int_equal(ms_stream_snapshot(s->console, 1 << 20, &log, &len), 0);
			first = strstr(log, "Hello from MachineServer");
			twice =
			    first != NULL && strstr(first + 1, "Hello from MachineServer") != NULL;
			free(log);
			if (!twice)
				usleep(10000);
		}
		assert_true(twice);
	}
	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(id, &e), 0);
	assert_false(exists(dir, ""));
	/* The reaper flushes every second: the directory must not come back. */
	sleep(2);
	assert_false(exists(dir, ""));
}

static void test_valid_names(void **state)
{
	(void)state;
	assert_true(ms_valid_name("boot_complete"));
	assert_true(ms_valid_name("v1.2-rc"));
	assert_false(ms_valid_name(""));
	assert_false(ms_valid_name(".hidden"));
	assert_false(ms_valid_name("-rf"));
	assert_false(ms_valid_name("a/b"));
	assert_false(ms_valid_name("a\nb"));
	assert_false(ms_valid_name("$(id)"));
	assert_false(
	    ms_valid_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refusals_before_anything_exists),
	    cmocka_unit_test(test_lifecycle),
	    cmocka_unit_test(test_limit_and_events),
	    cmocka_unit_test(test_restart_and_run_dir),
	    cmocka_unit_test(test_valid_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
