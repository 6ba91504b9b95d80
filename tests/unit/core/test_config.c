/*
 * Unit tests for src/core/config.c: the seed's keys and ours, defaults, the
 * minimal three-key config, FILE:LINE:COL on every unknown key and bad value,
 * hostile YAML, and the cross-field checks of ms_config_validate.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/config.h"

static int load(const char *yaml, struct ms_config *c, struct ms_err *e)
{
	ms_err_clear(e);
	return ms_config_load_string(yaml, strlen(yaml), "t.yaml", c, e);
}

/* The load must fail and the message must start with "t.yaml:LINE:COL: " and contain needle. */
static void expect_error(const char *yaml, int line, int col, const char *needle)
{
	struct ms_config c;
	struct ms_err e;
	char prefix[64];
	int rc = load(yaml, &c, &e);

	if (rc == 0)
		fail_msg("accepted:\n%s", yaml);
	assert_int_equal(rc, MS_EBADINPUT);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "bad_config");
	snprintf(prefix, sizeof(prefix), "t.yaml:%d:%d: ", line, col);
	if (strncmp(e.message, prefix, strlen(prefix)) != 0)
		fail_msg("message '%s' does not start with '%s'", e.message, prefix);
	if (needle != NULL && strstr(e.message, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", e.message, needle);
	/* A failed load leaves nothing to free, and freeing again is harmless. */
	assert_null(c.server.mode);
	ms_config_free(&c);
}

static void test_minimal_config(void **state)
{
	struct ms_config c;
	struct ms_err e;
	char cwd[PATH_MAX], want[PATH_MAX + 8];

	assert_int_equal(load("server:\n  port: 9090\nauth:\n  enabled: false\n"
	                      "backends:\n  qemu:\n    enabled: true\n",
	                      &c, &e),
	                 0);
	assert_int_equal(c.server.port, 9090);
	assert_string_equal(c.server.mode, "release");
	assert_string_equal(c.server.bind, "127.0.0.1");
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/data", strcmp(cwd, "/") == 0 ? "" : cwd);
	assert_string_equal(c.server.data_dir, want);
	assert_int_equal(c.server.threads, 4);
	assert_false(c.auth.enabled);
	assert_int_equal(c.auth.n_api_keys, 0);
	assert_null(c.auth.jwt_secret);
	assert_true(c.backends.qemu.enabled);
	assert_string_equal(c.backends.qemu.binary, "qemu-system-arm");
	assert_true(c.backends.rehost.enabled);
	assert_false(c.backends.renode.enabled);
	assert_int_equal(c.resources.max_sessions, 10);
	assert_int_equal(c.resources.session_timeout, 3600);
	assert_int_equal(c.resources.gdb_port_min, 3400);
	assert_int_equal(c.resources.gdb_port_max, 3999);
	assert_int_equal(c.resources.max_upload_bytes, 64 << 20);
	assert_int_equal(c.resources.max_snapshot_bytes, 1 << 30);
	assert_true(c.monitoring.enabled);
	assert_int_equal(ms_config_validate(&c, &e), 0);
	ms_config_free(&c);
	ms_config_free(&c);
}

static void test_full_config(void **state)
{
	static const char yaml[] = "# every key\n"
	                           "server:\n"
	                           "  port: 8081\n"
	                           "  mode: debug # debug, release\n"
	                           "  bind: \"::1\"\n"
	                           "  data_dir: /var/lib/ms/./x/../data/\n"
	                           "  threads: 4\n"
	                           "auth:\n"
	                           "  enabled: true\n"
	                           "  api_keys: [\"your-secret-key\", other-key]\n"
	                           "  jwt_secret: \"0123456789abcdef-long-enough\"\n"
	                           "backends:\n"
	                           "  qemu:\n"
	                           "    enabled: true\n"
	                           "    binary: \"/usr/bin/qemu-system-arm\"\n"
	                           "  renode:\n"
	                           "    enabled: true\n"
	                           "    binary: \"/usr/bin/renode\"\n"
	                           "  rehost: {enabled: false}\n"
	                           "  openocd:\n"
	                           "    enabled: false\n"
	                           "    binary: ~\n"
	                           "resources:\n"
	                           "  max_sessions: 20\n"
	                           "  session_timeout: 0\n"
	                           "  gdb_port_min: 5000\n"
	                           "  gdb_port_max: 5099\n"
	                           "  max_upload_bytes: 16MiB\n"
	                           "  max_snapshot_bytes: 2147483648\n"
	                           "monitoring:\n"
	                           "  enabled: false\n";
	struct ms_config c;
	struct ms_err e;

	assert_int_equal(load(yaml, &c, &e), 0);
	assert_int_equal(c.server.port, 8081);
	assert_string_equal(c.server.mode, "debug");
	assert_string_equal(c.server.bind, "::1");
	assert_string_equal(c.server.data_dir, "/var/lib/ms/data");
	assert_int_equal(c.server.threads, 4);
	assert_true(c.auth.enabled);
	assert_int_equal(c.auth.n_api_keys, 2);
	assert_string_equal(c.auth.api_keys[0], "your-secret-key");
	assert_string_equal(c.auth.api_keys[1], "other-key");
	assert_string_equal(c.auth.jwt_secret, "0123456789abcdef-long-enough");
	assert_string_equal(c.backends.qemu.binary, "/usr/bin/qemu-system-arm");
	assert_true(c.backends.renode.enabled);
	assert_string_equal(c.backends.renode.binary, "/usr/bin/renode");
	assert_false(c.backends.rehost.enabled);
	assert_null(c.backends.openocd.binary);
	assert_int_equal(c.resources.max_sessions, 20);
	assert_int_equal(c.resources.session_timeout, 0);
	assert_int_equal(c.resources.gdb_port_min, 5000);
	assert_int_equal(c.resources.gdb_port_max, 5099);
	assert_int_equal(c.resources.max_upload_bytes, 16 << 20);
	assert_int_equal(c.resources.max_snapshot_bytes, UINT64_C(2147483648));
	assert_false(c.monitoring.enabled);
	assert_int_equal(ms_config_validate(&c, &e), 0);
	ms_config_free(&c);
}

static void test_block_list_and_empty_sections(void **state)
{
	struct ms_config c;
	struct ms_err e;

	assert_int_equal(load("auth:\n  enabled: true\n  api_keys:\n    - k1-abcdef\n"
	                      "    - 12345678\nmonitoring:\nresources: ~\n",
	                      &c, &e),
	                 0);
	assert_int_equal(c.auth.n_api_keys, 2);
	assert_string_equal(c.auth.api_keys[1], "12345678");
	assert_true(c.monitoring.enabled);
	assert_int_equal(ms_config_validate(&c, &e), 0);
	ms_config_free(&c);

	/* Empty and comment-only files are all defaults. */
	assert_int_equal(load("", &c, &e), 0);
	ms_config_free(&c);
	assert_int_equal(load("# nothing\n", &c, &e), 0);
	assert_int_equal(c.server.port, 8080);
	ms_config_free(&c);
}

static void test_sizes(void **state)
{
	static const struct {
		const char *v;
		uint64_t want;
	} ok[] = {
	    {"1", 1},
	    {"1024", 1024},
	    {"\"64MiB\"", UINT64_C(64) << 20},
	    {"64M", UINT64_C(64) << 20},
	    {"1G", UINT64_C(1) << 30},
	    {"2 GiB", UINT64_C(2) << 30},
	    {"3kB", 3000},
	    {"5MB", 5000000},
	    {"1T", UINT64_C(1) << 40},
	    {"100B", 100},
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char yaml[128];
		struct ms_config c;
		struct ms_err e;

		snprintf(yaml, sizeof(yaml), "resources:\n  max_upload_bytes: %s\n", ok[i].v);
		if (load(yaml, &c, &e) != 0)
			fail_msg("%s: %s", ok[i].v, e.message);
		assert_int_equal(c.resources.max_upload_bytes, ok[i].want);
		ms_config_free(&c);
	}
	expect_error("resources:\n  max_upload_bytes: -1\n", 2, 21, "negative");
	expect_error("resources:\n  max_upload_bytes: 0\n", 2, 21, "at least");
	expect_error("resources:\n  max_upload_bytes: 64XB\n", 2, 21, "unit");
	expect_error("resources:\n  max_upload_bytes: lots\n", 2, 21, "expected a size");
	expect_error("resources:\n  max_upload_bytes: 99999999999999999999\n", 2, 21, "range");
	expect_error("resources:\n  max_upload_bytes: 20000000T\n", 2, 21, "range");
	expect_error("resources:\n  max_snapshot_bytes: [1]\n", 2, 23, "a list");
}

static void test_unknown_keys(void **state)
{
	expect_error("server:\n  port: 8080\n  prot: 1\n", 3, 3, "unknown key 'prot' in server");
	expect_error("servr:\n  port: 8080\n", 1, 1, "unknown key 'servr'");
	expect_error("backends:\n  qemu:\n    enabled: true\n  foo:\n    enabled: true\n", 4, 3,
	             "unknown key 'foo' in backends");
	expect_error("backends:\n  qemu:\n    enable: true\n", 3, 5,
	             "unknown key 'enable' in backends.qemu");
	expect_error("redis:\n  url: x\n", 1, 1, "unknown key 'redis'");
	expect_error("server:\n  port: 1\n  port: 2\n", 3, 3, "duplicate key 'port'");
	expect_error("? [a, b]\n: 1\n", 1, 3, "keys must be plain names");
}

static void test_bad_values(void **state)
{
	expect_error("server:\n  port: abc\n", 2, 9, "server.port: expected an integer");
	expect_error("server:\n  port: 70000\n", 2, 9, "out of range 1..65535");
	expect_error("server:\n  port: 0\n", 2, 9, "out of range");
	expect_error("server:\n  port: -1\n", 2, 9, "negative");
	expect_error("server:\n  port: \"8080\"\n", 2, 9, "quoted");
	expect_error("server:\n  port: 80.5\n", 2, 9, "expected an integer");
	expect_error("server:\n  port:\n", 2, 8, "got nothing");
	expect_error("server:\n  port: 99999999999999999999999\n", 2, 9, "range");
	expect_error("server:\n  mode: fast\n", 2, 9, "expected debug or release");
	expect_error("server:\n  threads: 0\n", 2, 12, "out of range 1..1024");
	expect_error("server:\n  bind:\n", 2, 8, "expected a string");
	expect_error("server:\n  bind: \"a\\0b\"\n", 2, 9, "NUL");
	expect_error("server:\n  data_dir: [a]\n", 2, 13, "expected a string, got a list");
	expect_error("server: 8080\n", 1, 9, "server: expected a mapping");
	expect_error("- a\n- b\n", 1, 1, "top level: expected a mapping");
	expect_error("auth:\n  enabled: yes\n", 2, 12, "expected true or false");
	expect_error("auth:\n  enabled: \"true\"\n", 2, 12, "the string");
	expect_error("auth:\n  enabled: 1\n", 2, 12, "expected true or false");
	expect_error("auth:\n  enabled: {a: 1}\n", 2, 12, "a mapping");
	expect_error("auth:\n  api_keys: your-secret-key\n", 2, 13, "expected a list");
	expect_error("auth:\n  api_keys: [a-good-key, {b: c}]\n", 2, 26, "api_keys[1]");
	expect_error("auth:\n  api_keys: [\"\"]\n", 2, 14, "must not be empty");
	expect_error("auth:\n  api_keys: [\"with space\"]\n", 2, 14, "space");
	/* The seed's own example secret is 15 bytes: too short for HS256. */
	expect_error("auth:\n  enabled: true\n  jwt_secret: \"your-jwt-secret\"\n", 3, 15,
	             "at least 16 bytes");
	expect_error("resources:\n  max_sessions: -5\n", 2, 17, "negative");
	expect_error("resources:\n  max_sessions: 0\n", 2, 17, "out of range");
	expect_error("resources:\n  gdb_port_max: 65536\n", 2, 17, "out of range");
	expect_error("monitoring:\n  enabled: maybe\n", 2, 12, "expected true or false");
	expect_error("backends:\n  qemu:\n    binary: \"\"\n", 3, 13, "must not be empty");
}

static void test_hostile_yaml(void **state)
{
	size_t n = 4000, i;
	char *deep = malloc(2 * n + 2);
	struct ms_config c;
	struct ms_err e;

	expect_error("server:\n  port: [1,\n", 3, 1, "yaml syntax error");
	expect_error("server:\n\tport: 1\n", 2, 1, "yaml syntax error");
	expect_error("server:\n  port: 1\n---\nserver:\n  port: 2\n", 4, 1, "one yaml document");
	expect_error("a: &x [*x]\n", 1, 1, "unknown key 'a'");
	expect_error("server: *nope\n", 1, 9, "yaml syntax error");

	/* Deeply nested flow lists: an error, not a stack overflow. */
	for (i = 0; i < n; i++)
		deep[i] = '[';
	for (i = 0; i < n; i++)
		deep[n + i] = ']';
	deep[2 * n] = '\0';
	assert_int_equal(load(deep, &c, &e), MS_EBADINPUT);
	assert_non_null(strstr(e.message, "top level: expected a mapping"));
	free(deep);

	/* A megabyte of them is refused before libyaml spends minutes on it. */
	deep = calloc(1, 1000001);
	memset(deep, '[', 1000000);
	assert_int_equal(load(deep, &c, &e), MS_EBADINPUT);
	assert_non_null(strstr(e.message, "not a config"));
	free(deep);

	/* Over the 1 MiB limit. */
	deep = calloc(1, (2u << 20) + 1);
	memset(deep, '#', 2u << 20);
	assert_int_equal(load(deep, &c, &e), MS_ETOOBIG);
	free(deep);

	/* An alias used as a section value is followed, still against the schema. */
	assert_int_equal(load("backends:\n  qemu: &b {enabled: true}\n  renode: *b\n", &c, &e), 0);
	assert_true(c.backends.renode.enabled);
	ms_config_free(&c);
}

static void test_relative_data_dir(void **state)
{
	struct ms_config c;
	struct ms_err e;
	char cwd[PATH_MAX], want[PATH_MAX + 16];
	char *slash;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(load("server:\n  data_dir: ../x/./y//\n", &c, &e), 0);
	slash = strrchr(cwd, '/');
	*slash = '\0';
	snprintf(want, sizeof(want), "%s/x/y", cwd);
	assert_string_equal(c.server.data_dir, want);
	ms_config_free(&c);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/ms-test-config-XXXXXX";
	struct ms_config c;
	struct ms_err e;
	int fd = mkstemp(path);
	static const char body[] = "server:\n  port: 8080\n  colour: blue\n";

	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, sizeof(body) - 1), (ssize_t)sizeof(body) - 1);
	close(fd);
	assert_int_equal(ms_config_load(path, &c, &e), MS_EBADINPUT);
	assert_non_null(strstr(e.message, path));
	assert_non_null(strstr(e.message, ":3:3: unknown key 'colour'"));
	ms_config_free(&c);
	unlink(path);
	assert_int_equal(ms_config_load(path, &c, &e), -ENOENT);
	assert_non_null(strstr(e.message, "cannot open"));
}

static void validate_expect(struct ms_config *c, const char *needle)
{
	struct ms_err e;
	int rc;

	ms_err_clear(&e);
	rc = ms_config_validate(c, &e);
	if (needle == NULL) {
		if (rc != 0)
			fail_msg("rejected: %s", e.message);
		return;
	}
	if (rc == 0)
		fail_msg("accepted, wanted '%s'", needle);
	assert_int_equal(rc, MS_EBADINPUT);
	assert_int_equal(e.status, 400);
	if (strstr(e.message, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", e.message, needle);
}

static void set_bind(struct ms_config *c, const char *bind)
{
	free(c->server.bind);
	c->server.bind = strdup(bind);
}

static void test_validate(void **state)
{
	static const char *loopback[] = {"127.0.0.1", "127.1.2.3", "::1",
	                                 "localhost", "LOCALHOST", "::ffff:127.0.0.1"};
	static const char *outside[] = {"0.0.0.0",         "::",       "192.168.1.10", "10.0.0.1",
	                                "::ffff:10.0.0.1", "128.0.0.1"};
	struct ms_config c;
	struct ms_err e;
	size_t i;

	/* The bare defaults (a daemon without --config) are valid, data_dir absolute. */
	ms_config_defaults(&c);
	assert_int_equal(c.server.data_dir[0], '/');
	validate_expect(&c, NULL);
	free(c.server.data_dir);
	c.server.data_dir = strdup("relative/dir");
	validate_expect(&c, "absolute");
	ms_config_free(&c);

	assert_int_equal(load("", &c, &e), 0);
	validate_expect(&c, NULL);
	for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		set_bind(&c, loopback[i]);
		validate_expect(&c, NULL);
	}
	for (i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		set_bind(&c, outside[i]);
		validate_expect(&c, "refusing to listen");
	}
	set_bind(&c, "example.com");
	validate_expect(&c, "ip address or localhost");

	/* Beyond loopback is fine once auth is on with a key or a secret. */
	set_bind(&c, "0.0.0.0");
	c.auth.enabled = true;
	validate_expect(&c, "no api key and no jwt_secret");
	c.auth.jwt_secret = strdup("short");
	validate_expect(&c, "at least 16 bytes");
	free(c.auth.jwt_secret);
	c.auth.jwt_secret = strdup("sixteen-bytes-ok");
	validate_expect(&c, NULL);
	free(c.auth.jwt_secret);
	c.auth.jwt_secret = NULL;
	c.auth.api_keys = calloc(1, sizeof(char *));
	c.auth.api_keys[0] = strdup("ci-key-1");
	c.auth.n_api_keys = 1;
	validate_expect(&c, NULL);

	c.resources.gdb_port_min = 4000;
	c.resources.gdb_port_max = 3999;
	validate_expect(&c, "above gdb_port_max");
	c.resources.gdb_port_min = 0;
	c.resources.gdb_port_max = 10;
	validate_expect(&c, "1..65535");
	c.resources.gdb_port_min = 8000;
	c.resources.gdb_port_max = 8100;
	validate_expect(&c, "inside the gdb port range");
	c.resources.gdb_port_min = 3400;
	c.resources.gdb_port_max = 3999;
	c.server.port = 70000;
	validate_expect(&c, "server.port");
	c.server.port = 8080;
	free(c.server.mode);
	c.server.mode = strdup("turbo");
	validate_expect(&c, "debug or release");
	free(c.server.mode);
	c.server.mode = strdup("debug");
	validate_expect(&c, NULL);
	ms_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_minimal_config),
	    cmocka_unit_test(test_full_config),
	    cmocka_unit_test(test_block_list_and_empty_sections),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_unknown_keys),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_hostile_yaml),
	    cmocka_unit_test(test_relative_data_dir),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_validate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
