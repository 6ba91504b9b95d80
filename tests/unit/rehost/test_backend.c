/*
 * The rehost backend through the session layer, as the daemon drives it:
 * create with a board, load an uploaded program, power on, read the
 * console stream, type into the UART, snapshot and restore, device map,
 * pause/reset/poweroff, a crashing guest becoming a session error with
 * its registers, and bad board_config values refused with 400.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "core/config.h"
#include "core/ports.h"
#include "core/program.h"
#include "core/session.h"
#include "core/store.h"
#include "core/stream.h"

static struct ms_config cfg;
static char fwdir[1024];

static int setup(void **state)
{
	char tmpl[] = "/tmp/ms_rh_backendXXXXXX", db[1100], cwd[900], cmd[2000];
	struct ms_err e;

	if (getcwd(cwd, sizeof(cwd)) == NULL || mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(fwdir, sizeof(fwdir), "%s/build/firmware", cwd);
	snprintf(cmd, sizeof(cmd), "make -s -C firmware BUILD=%s >/dev/null", fwdir);
	if (system(cmd) != 0)
		return -1;
	setenv("MS_BOARDS_DIR", "boards", 1);
	ms_config_defaults(&cfg);
	free(cfg.server.data_dir);
	cfg.server.data_dir = strdup(tmpl);
	cfg.resources.gdb_port_min = 41000;
	cfg.resources.gdb_port_max = 41099;
	snprintf(db, sizeof(db), "%s/machineserver.db", tmpl);
	if (ms_store_open(db, &e) != 0 || ms_programs_init(tmpl, 1 << 24) != 0 ||
	    ms_ports_init(41000, 41099) != 0)
		return -1;
	ms_backends_init(&cfg);
	if (ms_backend_find("rehost") == NULL || ms_sessions_init(&cfg, &e) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	ms_sessions_shutdown();
	ms_backends_fini();
	ms_store_close();
	ms_config_free(&cfg);
	return 0;
}

static void add_program(const char *name, struct ms_program *p)
{
	char path[1200];
	struct ms_err e;

	snprintf(path, sizeof(path), "%s/%s.elf", fwdir, name);
	assert_int_equal(ms_programs_add_file(path, name, p, &e), 0);
}

/* Wait (up to 20 s of wall time, as a hang guard only) until the console holds text. */
static bool console_has(struct ms_session *s, const char *text)
{
	int i;

	for (i = 0; i < 2000; i++) {
		char *buf = NULL;
		size_t len = 0;
		bool found;

		assert_int_equal(ms_stream_snapshot(s->console, 1 << 20, &buf, &len), 0);
		found = buf != NULL && memmem(buf, len, text, strlen(text)) != NULL;
		free(buf);
		if (found)
			return true;
		usleep(10000);
	}
	return false;
}

static struct ms_session *create(const char *json)
{
	json_error_t je;
	json_t *bc = json_loads(json, 0, &je);
	struct ms_session *s = NULL;
	struct ms_err e;

	assert_non_null(bc);
	assert_int_equal(ms_sessions_create("rehost", bc, &s, &e), 0);
	json_decref(bc);
	return s;
}

static void test_session_lifecycle(void **state)
{
	struct ms_program p;
	struct ms_session *s;
	struct ms_err e;
	json_t *snap = NULL, *devs = NULL;
	char *dump;
	int i;

	add_program("mps2-hello", &p);
	s = create("{\"board\":\"mps2-an385\"}");
	assert_int_equal(ms_session_state(s), MS_STATE_CREATED);
	/* Power on before a program: refused, nothing runs. */
	assert_int_not_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(ms_session_load(s, &p, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	assert_true(console_has(s, "Hello from MachineServer\r\n> "));
	assert_int_equal(ms_session_console_write(s, "abc\r", 4), 0);
	assert_true(console_has(s, "echo: abc\r\n"));
	assert_int_equal(ms_session_snapshot_save(s, "one", &snap, &e), 0);
	json_decref(snap);
	assert_int_equal(ms_session_snapshot_restore(s, "one", &e), 0);
	assert_int_equal(ms_session_devices(s, &devs, &e), 0);
	dump = json_dumps(devs, JSON_COMPACT);
	assert_non_null(strstr(dump, "\"uart0\""));
	assert_non_null(strstr(dump, "\"cmsdk-timer\""));
	free(dump);
	json_decref(devs);
	{
		json_t *per = NULL, *mmio = NULL, *models = NULL;
		char *txt;

		assert_int_equal(s->backend->peripherals(s, &per, &e), 0);
		txt = json_dumps(per, JSON_COMPACT);
		assert_non_null(strstr(txt, "\"source\":\"board\""));
		assert_non_null(strstr(txt, "\"uart0\""));
		free(txt);
		json_decref(per);
		assert_int_equal(s->backend->mmio_recent(s, 0, 10, &mmio, &e), 0);
		assert_non_null(json_object_get(mmio, "entries"));
		json_decref(mmio);
		assert_int_equal(s->backend->models_export(s, &models, &e), 0);
		json_decref(models);
	}
	assert_int_equal(ms_session_pause(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_PAUSED);
	/* While paused, run a counted stretch and see "count" answered. */
	assert_int_equal(ms_session_console_write(s, "count\r", 6), 0);
	assert_int_equal(s->backend->step(s, 200000, &e), 0);
	assert_true(console_has(s, "count: "));
	assert_int_equal(s->backend->run_for(s, 1000000, &e), 0);
	assert_int_not_equal(s->backend->step(s, 0, &e), 0);
	assert_int_equal(e.status, 400);
	assert_int_equal(ms_session_reset(s, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	/* After the reset the greeting appears a second time. */
	for (i = 0; i < 2000; i++) {
		char *buf = NULL;
		size_t len = 0;
		char *first;

		ms_stream_snapshot(s->console, 1 << 20, &buf, &len);
		first = buf != NULL ? memmem(buf, len, "Hello", 5) : NULL;
		if (first != NULL &&
		    memmem(first + 5, len - (size_t)(first + 5 - buf), "Hello", 5)) {
			free(buf);
			break;
		}
		free(buf);
		usleep(10000);
	}
	assert_true(i < 2000);
	assert_int_equal(ms_session_poweroff(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_STOPPED);
	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(s->id, &e), 0);
}

static void test_crash_is_session_error(void **state)
{
	struct ms_program p;
	struct ms_session *s;
	struct ms_err e;
	char id[40];
	int i;

	add_program("mps2-fault", &p);
	s = create("{\"cpu\":\"cortex-m3\"}");
	snprintf(id, sizeof(id), "%s", s->id);
	assert_int_equal(ms_session_load(s, &p, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	for (i = 0; i < 2000 && ms_session_state(s) != MS_STATE_ERROR; i++)
		usleep(10000);
	assert_int_equal(ms_session_state(s), MS_STATE_ERROR);
	pthread_mutex_lock(&s->lock);
	assert_non_null(strstr(s->reason, "lockup"));
	assert_non_null(strstr(s->reason, "pc=0x"));
	pthread_mutex_unlock(&s->lock);
	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(id, &e), 0);
}

/* A debugger holding the guest halted blocks neither commands nor deletion. */
static void test_gdb_halt_does_not_block_control(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct ms_program p;
	struct ms_session *s;
	struct ms_err e;
	json_t *snap = NULL;
	char id[40], buf[256];
	int fd, port, i;

	add_program("mps2-hello", &p);
	s = create("{\"board\":\"mps2-an385\"}");
	snprintf(id, sizeof(id), "%s", s->id);
	assert_int_equal(ms_session_load(s, &p, false, 0, &e), 0);
	assert_int_equal(ms_session_poweron(s, &e), 0);
	pthread_mutex_lock(&s->lock);
	port = s->gdb_port;
	pthread_mutex_unlock(&s->lock);
	assert_true(port > 0);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, "$?#3f", 5), 5);
	for (i = 0; i < 500 && ms_session_state(s) != MS_STATE_PAUSED; i++)
		usleep(10000);
	assert_int_equal(ms_session_state(s), MS_STATE_PAUSED);
	assert_true(read(fd, buf, sizeof(buf)) > 0);
	assert_int_equal(ms_session_snapshot_save(s, "while-halted", &snap, &e), 0);
	json_decref(snap);
	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(id, &e), 0);
	close(fd);
}

static void test_bad_board_config(void **state)
{
	static const char *const bad[] = {
	    "{}",
	    "{\"board\":\"no-such-board\"}",
	    "{\"cpu\":\"cortex-a57\"}",
	    "{\"board\":\"../../etc/passwd\"}",
	    "{\"cpu\":\"cortex-m3\",\"memory_map\":7}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_error_t je;
		json_t *bc = json_loads(bad[i], 0, &je);
		struct ms_session *s = NULL;
		struct ms_err e;

		ms_err_clear(&e);
		assert_int_not_equal(ms_sessions_create("rehost", bc, &s, &e), 0);
		assert_int_equal(e.status, 400);
		json_decref(bc);
	}
}

static void test_capabilities(void **state)
{
	const struct ms_backend *b = ms_backend_find("rehost");
	json_t *caps = b->capabilities();
	char *dump = json_dumps(caps, JSON_COMPACT);

	assert_non_null(strstr(dump, "\"mps2-an385\""));
	assert_non_null(strstr(dump, "\"cortex-m4\""));
	assert_non_null(strstr(dump, "\"snapshot_save\""));
	free(dump);
	json_decref(caps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capabilities),
	    cmocka_unit_test(test_bad_board_config),
	    cmocka_unit_test(test_session_lifecycle),
	    cmocka_unit_test(test_crash_is_session_error),
	    cmocka_unit_test(test_gdb_halt_does_not_block_control),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
