/*
 * The rehost backend through the session layer, as the daemon drives it:
 * create with a board, load an uploaded program, power on, read the
 * console stream, type into the UART, snapshot and restore, device map,
 * pause/reset/poweroff, a crashing guest becoming a session error with
 * its registers, and bad board_config values refused with 400. A created
 * session puts nothing on disk and runs no thread until it needs to; a
 * guest that cannot start is refused at poweron, never reported running.
 * POST /sessions with a program and "poweron": true answers with the
 * session running, and leaves nothing behind when it fails.
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
#include <sys/stat.h>
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
#include "http/api.h"
#include "http/http.h"

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

static bool dir_exists(const char *dir)
{
	struct stat sb;

	return stat(dir, &sb) == 0;
}

/*
 * Before its first poweron a session has no engine thread and no run
 * directory: load and step run on the caller; a snapshot makes the
 * directory; deletion removes it for good.
 */
static void test_created_session_is_cheap(void **state)
{
	struct ms_program p;
	struct ms_session *s;
	struct ms_err e;
	json_t *snap = NULL;
	char id[40], dir[512], path[600];
	struct stat sb;

	add_program("mps2-hello", &p);
	s = create("{\"board\":\"mps2-an385\"}");
	snprintf(id, sizeof(id), "%s", s->id);
	snprintf(dir, sizeof(dir), "%s", s->dir);
	assert_false(dir_exists(dir));
	assert_int_equal(ms_session_load(s, &p, false, 0, &e), 0);
	assert_int_equal(s->backend->step(s, 300000, &e), 0);
	assert_true(console_has(s, "Hello from MachineServer"));
	assert_int_equal(ms_session_state(s), MS_STATE_CREATED);
	assert_false(dir_exists(dir));
	assert_int_equal(ms_session_snapshot_save(s, "early", &snap, &e), 0);
	json_decref(snap);
	snprintf(path, sizeof(path), "%s/rehost-snap-early.bin", dir);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(path, &sb), 0);
	/* Then powered on it runs on its own thread, from where the steps left it. */
	assert_int_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(ms_session_state(s), MS_STATE_RUNNING);
	assert_int_equal(ms_session_console_write(s, "abc\r", 4), 0);
	assert_true(console_has(s, "echo: abc\r\n"));
	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(id, &e), 0);
	assert_false(dir_exists(dir));
}

/* A reset vector that points outside memory: poweron says why, the session is in error. */
static void test_unstartable_guest_is_refused(void **state)
{
	char path[1200];
	uint32_t vectors[64] = {0x20001000u, 0x90000001u};
	struct ms_program p;
	struct ms_session *s;
	struct ms_err e;
	char id[40];
	FILE *f;

	snprintf(path, sizeof(path), "%s/bad-reset.bin", fwdir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(vectors, sizeof(vectors), 1, f), 1);
	fclose(f);
	assert_int_equal(ms_programs_add_file(path, "bad-reset.bin", &p, &e), 0);
	s = create("{\"board\":\"mps2-an385\"}");
	snprintf(id, sizeof(id), "%s", s->id);
	assert_int_equal(ms_session_load(s, &p, true, 0, &e), 0);
	ms_err_clear(&e);
	assert_int_not_equal(ms_session_poweron(s, &e), 0);
	assert_int_equal(e.status, 502);
	assert_string_equal(e.code, "guest_crashed");
	assert_non_null(strstr(e.message, "reset vector 0x90000001"));
	assert_int_equal(ms_session_state(s), MS_STATE_ERROR);
	pthread_mutex_lock(&s->lock);
	assert_non_null(strstr(s->reason, "reset vector"));
	pthread_mutex_unlock(&s->lock);
	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(id, &e), 0);
}

/* POST /api/v1/sessions with body; returns the status, *out the answer (new reference). */
static int post_sessions(const char *body, json_t **out)
{
	struct ms_req req = {.method = "POST", .path = "/api/v1/sessions"};
	struct ms_resp resp = {0};
	json_error_t je;

	req.content_type = "application/json";
	req.body = (const uint8_t *)body;
	req.body_len = strlen(body);
	ms_api_sessions_create(&req, &resp);
	*out = json_loadb(resp.body, resp.body_len, 0, &je);
	free(resp.body);
	assert_non_null(*out);
	return resp.status;
}

static const char *error_code(json_t *answer)
{
	return json_string_value(json_object_get(json_object_get(answer, "error"), "code"));
}

static void test_one_request_start(void **state)
{
	char body[600], path[1200];
	uint32_t vectors[64] = {0x20001000u, 0x90000001u};
	struct ms_program hello, bad;
	struct ms_session *s;
	struct ms_err e;
	json_t *a;
	unsigned before;
	FILE *f;

	add_program("mps2-hello", &hello);
	snprintf(path, sizeof(path), "%s/bad-reset2.bin", fwdir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(vectors, sizeof(vectors), 1, f), 1);
	fclose(f);
	assert_int_equal(ms_programs_add_file(path, "bad-reset2.bin", &bad, &e), 0);

	/* Running when the answer comes, with its program. */
	snprintf(body, sizeof(body),
	         "{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
	         "\"program_id\":\"%s\",\"poweron\":true}",
	         hello.id);
	assert_int_equal(post_sessions(body, &a), 201);
	assert_string_equal(json_string_value(json_object_get(a, "state")), "running");
	assert_string_equal(json_string_value(json_object_get(a, "program_id")), hello.id);
	assert_true(json_integer_value(json_object_get(a, "gdb_port")) > 0);
	s = ms_session_find(json_string_value(json_object_get(a, "id")));
	assert_non_null(s);
	assert_true(console_has(s, "Hello from MachineServer"));
	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(json_string_value(json_object_get(a, "id")), &e), 0);
	json_decref(a);

	/* A program without poweron: created, loaded, not running. */
	snprintf(body, sizeof(body),
	         "{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
	         "\"program_id\":\"%s\"}",
	         hello.id);
	assert_int_equal(post_sessions(body, &a), 201);
	assert_string_equal(json_string_value(json_object_get(a, "state")), "created");
	assert_string_equal(json_string_value(json_object_get(a, "program_id")), hello.id);
	assert_int_equal(ms_sessions_delete(json_string_value(json_object_get(a, "id")), &e), 0);
	json_decref(a);

	/* Failures answer why and leave no session behind. */
	before = ms_sessions_total();
	snprintf(body, sizeof(body),
	         "{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
	         "\"program_id\":\"%s\",\"load_address\":0,\"poweron\":true}",
	         bad.id);
	assert_int_equal(post_sessions(body, &a), 502);
	assert_string_equal(error_code(a), "guest_crashed");
	json_decref(a);
	snprintf(body, sizeof(body),
	         "{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
	         "\"program_id\":\"%s\",\"poweron\":true}",
	         bad.id);
	assert_int_equal(post_sessions(body, &a), 400); /* a raw binary needs its address */
	assert_string_equal(error_code(a), "missing_address");
	json_decref(a);
	{
		static const char *const refused[][2] = {
		    {"{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
		     "\"program_id\":\"prog_0000\",\"poweron\":true}",
		     "program_not_found"},
		    {"{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
		     "\"program_id\":5}",
		     "bad_request"},
		    {"{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
		     "\"poweron\":\"yes\"}",
		     "bad_request"},
		    {"{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
		     "\"poweron\":true}",
		     "no_program"},
		    {"{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
		     "\"program_id\":\"x\",\"program_path\":\"y\"}",
		     "bad_request"},
		    {"{\"backend\":\"rehost\",\"board_config\":{\"board\":\"mps2-an385\"},"
		     "\"load_address\":\"-1\",\"program_id\":\"x\"}",
		     "bad_address"},
		    {"{\"backend\":\"rehost\",\"program_id\":\"prog_", "bad_json"},
		    {"{\"backend\":\"rehost\",\"board_config\":{\"board\":\"../x\"},"
		     "\"poweron\":true}",
		     "bad_board"},
		};

		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			int st = post_sessions(refused[i][0], &a);

			assert_true(st >= 400 && st < 500);
			assert_string_equal(error_code(a), refused[i][1]);
			json_decref(a);
		}
	}
	assert_int_equal(ms_sessions_total(), before);
}

/*
 * Sessions made one after another, alternating boards: those whose board
 * the previous create used start from a machine built ahead of time, the
 * others are built on the spot. Each must be its own machine for its own
 * board: its memory map, and on mps2 its greeting on its own console and
 * its own input echoed back.
 */
static void test_sessions_in_a_row(void **state)
{
	static const char *const boards[] = {"mps2-an385", "mps2-an385", "stm32f103",
	                                     "stm32f103",  "mps2-an385", "mps2-an385"};
	enum { N = sizeof(boards) / sizeof(boards[0]) };
	struct ms_session *s[N];
	struct ms_program p;
	struct ms_err e;
	size_t i;

	add_program("mps2-hello", &p);
	for (i = 0; i < N; i++) {
		char bc[80];

		snprintf(bc, sizeof(bc), "{\"board\":\"%s\"}", boards[i]);
		s[i] = create(bc);
		if (strcmp(boards[i], "mps2-an385") == 0) {
			assert_int_equal(ms_session_load(s[i], &p, false, 0, &e), 0);
			assert_int_equal(ms_session_poweron(s[i], &e), 0);
		}
		usleep(20000); /* lets the next one's machine be built ahead (not required) */
	}
	for (i = 0; i < N; i++) {
		bool mps2 = strcmp(boards[i], "mps2-an385") == 0;
		json_t *devs = NULL;
		char *dump;

		assert_int_equal(ms_session_devices(s[i], &devs, &e), 0);
		dump = json_dumps(devs, JSON_COMPACT);
		assert_true((strstr(dump, "\"ssram1\"") != NULL) == mps2);
		assert_true((strstr(dump, "\"flash\"") != NULL) == !mps2);
		free(dump);
		json_decref(devs);
		if (mps2) {
			char line[32], want[40];

			assert_true(console_has(s[i], "Hello from MachineServer"));
			snprintf(line, sizeof(line), "s%zu\r", i);
			snprintf(want, sizeof(want), "echo: s%zu\r\n", i);
			assert_int_equal(ms_session_console_write(s[i], line, strlen(line)), 0);
			assert_true(console_has(s[i], want));
		}
	}
	for (i = 0; i < N; i++) {
		char other[40], *buf = NULL;
		size_t len = 0;

		/* Nothing typed into one session shows up in another. */
		snprintf(other, sizeof(other), "echo: s%zu", (i + 1) % N);
		assert_int_equal(ms_stream_snapshot(s[i]->console, 1 << 20, &buf, &len), 0);
		assert_null(memmem(buf, len, other, strlen(other)));
		free(buf);
		snprintf(other, sizeof(other), "%s", s[i]->id);
		ms_session_put(s[i]);
		assert_int_equal(ms_sessions_delete(other, &e), 0);
	}
}

static void test_bad_board_config(void **state)
{
	/* {} is good: the core comes from the program (test_realworld.py). */
	static const char *const bad[] = {
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
	    cmocka_unit_test(test_created_session_is_cheap),
	    cmocka_unit_test(test_unstartable_guest_is_refused),
	    cmocka_unit_test(test_one_request_start),
	    cmocka_unit_test(test_sessions_in_a_row),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
