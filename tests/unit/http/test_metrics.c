/*
 * Unit tests for http/metrics.c: the exposition text is checked line by line
 * against the 0.0.4 grammar, against the values recorded, and with
 * Prometheus's own promtool (`promtool check metrics`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/config.h"
#include "core/ports.h"
#include "core/program.h"
#include "core/session.h"
#include "core/store.h"
#include "http/metrics.h"

static char *render(void)
{
	size_t len = 0;
	char *t = ms_metrics_render(&len);

	assert_non_null(t);
	assert_int_equal(strlen(t), len);
	assert_true(len > 0 && t[len - 1] == '\n');
	return t;
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	    (!first && c >= '0' && c <= '9');
}

/*
 * Check one sample line: name, optional {label="value",...} with only the
 * three escapes the format allows, a space and a float. Fails the test
 * with the line otherwise.
 */
static void check_sample(const char *line)
{
	const char *p = line;
	char *end;

	if (!name_char(*p, true))
		fail_msg("bad metric name: %s", line);
	while (name_char(*p, false))
		p++;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			if (!name_char(*p, true))
				fail_msg("bad label name: %s", line);
			while (name_char(*p, false))
				p++;
			if (p[0] != '=' || p[1] != '"')
				fail_msg("bad label: %s", line);
			p += 2;
			while (*p != '"') {
				if (*p == '\0' || *p == '\n')
					fail_msg("unterminated label value: %s", line);
				if (*p == '\\') {
					if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
						fail_msg("bad escape: %s", line);
					p++;
				}
				p++;
			}
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				fail_msg("bad label list: %s", line);
		}
		p++;
	}
	if (*p != ' ')
		fail_msg("no space before value: %s", line);
	p++;
	if (strcmp(p, "+Inf") != 0 && strcmp(p, "NaN") != 0) {
		strtod(p, &end);
		if (end == p || *end != '\0')
			fail_msg("bad value: %s", line);
	}
}

/* Every line: a comment (HELP/TYPE) or a sample; TYPE before its samples. */
static void check_format(const char *text)
{
	char *copy = strdup(text);
	char *save = NULL;
	char *line;
	int samples = 0;

	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			if (strncmp(line, "# HELP ", 7) != 0 && strncmp(line, "# TYPE ", 7) != 0)
				fail_msg("bad comment: %s", line);
			continue;
		}
		check_sample(line);
		samples++;
	}
	assert_true(samples > 0);
	free(copy);
}

/* The value of the sample whose text before the value is exactly key; NAN if absent. */
static double value_of(const char *text, const char *key)
{
	size_t kl = strlen(key);
	const char *p = text;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[kl] == ' ')
			return strtod(p + kl + 1, NULL);
		p += kl;
	}
	return NAN;
}

static void promtool_check(const char *text)
{
	char path[] = "/tmp/ms-metrics-XXXXXX";
	int fd = mkstemp(path);
	char cmd[256];
	int st;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	if (access("/usr/bin/promtool", X_OK) != 0)
		fail_msg(
		    "promtool is not installed: run scripts/install-deps.sh (package prometheus)");
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	st = system(cmd);
	unlink(path);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("promtool check metrics failed (status %d) on:\n%s", st, text);
}

static void test_empty(void **state)
{
	char *t;

	ms_metrics_init();
	t = render();
	check_format(t);
	assert_non_null(strstr(t, "# TYPE machineserver_http_requests_total counter\n"));
	assert_non_null(
	    strstr(t, "# TYPE machineserver_http_request_duration_seconds histogram\n"));
	assert_non_null(strstr(t, "# TYPE machineserver_sessions gauge\n"));
	assert_true(value_of(t, "simulation_jobs_queued") == 0);
	assert_true(value_of(t, "process_resident_memory_bytes") > 0);
	assert_true(value_of(t, "process_open_fds") >= 3);
	assert_true(value_of(t, "process_threads") >= 1);
	assert_true(value_of(t, "process_virtual_memory_bytes") > 0);
	/* started within the last day and not in the future */
	assert_true(value_of(t, "process_start_time_seconds") > (double)time(NULL) - 86400);
	assert_true(value_of(t, "process_start_time_seconds") <= (double)time(NULL) + 1);
	promtool_check(t);
	free(t);
}

static void test_requests_and_histogram(void **state)
{
	char *t;

	ms_metrics_init();
	ms_metrics_request("GET", "/health", 200, 0.0003);
	ms_metrics_request("GET", "/health", 200, 0.0005); /* on the bound: le is inclusive */
	ms_metrics_request("GET", "/health", 200, 0.003);
	ms_metrics_request("POST", "/api/v1/sessions", 201, 0.2);
	ms_metrics_request("POST", "/api/v1/sessions", 429, 0.001);
	ms_metrics_request("BREW", "/api/v1/sessions", 405, 0.0001);
	ms_metrics_request("GET", NULL, 404, 20.0); /* beyond the last bucket */
	ms_metrics_request("GET", "unmatched", 404, NAN);
	ms_metrics_request("GET", "/odd\"route\\with\nnewline", 200, 0.01);
	ms_metrics_set_jobs_queued(7);
	t = render();
	check_format(t);

	assert_true(value_of(t,
	                     "machineserver_http_requests_total{method=\"GET\",route=\"/health\","
	                     "status=\"200\"}") == 3);
	assert_true(value_of(t,
	                     "machineserver_http_requests_total{method=\"POST\",route=\"/api/v1/"
	                     "sessions\",status=\"429\"}") == 1);
	/* unknown methods do not become label values */
	assert_true(value_of(t,
	                     "machineserver_http_requests_total{method=\"other\",route=\"/api/v1/"
	                     "sessions\",status=\"405\"}") == 1);
	assert_null(strstr(t, "BREW"));
	assert_true(value_of(t,
	                     "machineserver_http_requests_total{method=\"GET\",route=\"unmatched\","
	                     "status=\"404\"}") == 2);
	assert_true(
	    value_of(t,
	             "machineserver_http_requests_total{method=\"GET\",route=\"/odd\\\"route"
	             "\\\\with\\nnewline\",status=\"200\"}") == 1);

	/* cumulative buckets */
	assert_true(value_of(t,
	                     "machineserver_http_request_duration_seconds_bucket{route=\"/health\","
	                     "le=\"0.0005\"}") == 2);
	assert_true(value_of(t,
	                     "machineserver_http_request_duration_seconds_bucket{route=\"/health\","
	                     "le=\"0.0025\"}") == 2);
	assert_true(value_of(t,
	                     "machineserver_http_request_duration_seconds_bucket{route=\"/health\","
	                     "le=\"0.005\"}") == 3);
	assert_true(value_of(t,
	                     "machineserver_http_request_duration_seconds_bucket{route=\"/health\","
	                     "le=\"10\"}") == 3);
	assert_true(value_of(t,
	                     "machineserver_http_request_duration_seconds_bucket{route=\"/health\","
	                     "le=\"+Inf\"}") == 3);
	assert_true(
	    value_of(t, "machineserver_http_request_duration_seconds_count{route=\"/health\"}") ==
	    3);
	assert_true(
	    fabs(value_of(t, "machineserver_http_request_duration_seconds_sum{route=\"/health\"}") -
	         0.0038) < 1e-9);
	/* 20 s lands only in +Inf; the NaN duration counts as 0 */
	assert_true(
	    value_of(t,
	             "machineserver_http_request_duration_seconds_bucket{route=\"unmatched\","
	             "le=\"10\"}") == 1);
	assert_true(
	    value_of(t,
	             "machineserver_http_request_duration_seconds_bucket{route=\"unmatched\","
	             "le=\"+Inf\"}") == 2);
	assert_true(value_of(t, "simulation_jobs_queued") == 7);
	promtool_check(t);
	free(t);

	/* init starts over */
	ms_metrics_init();
	t = render();
	assert_null(strstr(t, "/health"));
	free(t);
}

static void test_bounded_labels(void **state)
{
	char route[64];
	char *t;

	ms_metrics_init();
	for (int i = 0; i < 2000; i++) {
		snprintf(route, sizeof(route), "/r%d", i);
		ms_metrics_request("GET", route, 200, 0.001);
	}
	t = render();
	check_format(t);
	/* 256 histogram routes fit; the rest are counted without labels */
	assert_true(value_of(t, "machineserver_http_requests_unlabelled_total") == 2000 - 256);
	assert_false(
	    isnan(value_of(t,
	                   "machineserver_http_requests_total{method=\"GET\",route=\"/r255\","
	                   "status=\"200\"}")));
	assert_true(
	    isnan(value_of(t,
	                   "machineserver_http_requests_total{method=\"GET\",route=\"/r256\","
	                   "status=\"200\"}")));
	promtool_check(t);
	free(t);
	ms_metrics_fini();
}

static void *hammer(void *arg)
{
	for (int i = 0; i < 20000; i++)
		ms_metrics_request("GET", (const char *)arg, 200, 0.002);
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[4];
	char *t;

	ms_metrics_init();
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer, i % 2 ? "/a" : "/b");
	for (int i = 0; i < 4; i++) {
		free(ms_metrics_render(NULL));
		pthread_join(th[i], NULL);
	}
	t = render();
	assert_true(value_of(t,
	                     "machineserver_http_requests_total{method=\"GET\",route=\"/a\","
	                     "status=\"200\"}") == 40000);
	assert_true(
	    value_of(t, "machineserver_http_request_duration_seconds_count{route=\"/b\"}") ==
	    40000);
	free(t);
	ms_metrics_fini();
}

/*
 * Sessions by backend and state come from the real registry: a real QEMU
 * session (created, so QEMU waits at -S) shows up and goes away on delete.
 */
static void test_sessions(void **state)
{
	char dir[] = "/tmp/ms-test-metrics-XXXXXX";
	char path[256];
	char cmd[300];
	struct ms_config cfg;
	struct ms_session *s = NULL;
	struct ms_err e;
	json_t *bc;
	char *t;
	char id[40];
	const char *created = "machineserver_sessions{backend=\"qemu\",state=\"created\"}";
	const char *running = "machineserver_sessions{backend=\"qemu\",state=\"running\"}";

	assert_non_null(mkdtemp(dir));
	ms_config_defaults(&cfg);
	free(cfg.server.data_dir);
	cfg.server.data_dir = strdup(dir);
	cfg.backends.qemu.enabled = true;
	cfg.backends.rehost.enabled = false;
	cfg.resources.session_timeout = 0;
	cfg.resources.gdb_port_min = 23600;
	cfg.resources.gdb_port_max = 23609;
	snprintf(path, sizeof(path), "%s/ms.db", dir);
	assert_int_equal(ms_store_open(path, &e), 0);
	assert_int_equal(ms_ports_init(cfg.resources.gdb_port_min, cfg.resources.gdb_port_max), 0);
	assert_int_equal(ms_programs_init(dir, 1u << 20), 0);
	ms_backends_init(&cfg);
	assert_int_equal(ms_sessions_init(&cfg, &e), 0);
	ms_metrics_init();

	t = render();
	assert_true(value_of(t, created) == 0);
	free(t);

	bc = json_pack("{s:s}", "board", "mps2-an385");
	if (ms_sessions_create("qemu", bc, &s, &e) != 0)
		fail_msg("cannot create a qemu session: %d %s", e.status, e.message);
	json_decref(bc);
	snprintf(id, sizeof(id), "%s", s->id);
	t = render();
	check_format(t);
	assert_true(value_of(t, created) == 1);
	assert_true(value_of(t, running) == 0);
	promtool_check(t);
	free(t);

	ms_session_put(s);
	assert_int_equal(ms_sessions_delete(id, &e), 0);
	t = render();
	assert_true(value_of(t, created) == 0);
	free(t);

	ms_sessions_shutdown();
	ms_backends_fini();
	ms_store_close();
	ms_config_free(&cfg);
	ms_metrics_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),          cmocka_unit_test(test_requests_and_histogram),
	    cmocka_unit_test(test_bounded_labels), cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_sessions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
