/*
 * "machineserver run" (ms_run_main) end to end, each run in a child
 * process: exit codes 0/1/3/4 for expected text, failure text, crash,
 * timeout, instruction limit, bad files and bad options; --bb-out format;
 * --lcov-out accepted by Debian's genhtml; --mmio-log JSON lines; the same
 * options on --backend qemu; C escapes with malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "rehost/run.h"

static char fw[1024];

static int run(const char *const *args)
{
	char *argv[32];
	int argc = 0, status;
	pid_t pid;

	argv[argc++] = "run";
	while (*args != NULL && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (freopen("/dev/null", "w", stdout) == NULL ||
		    freopen("/dev/null", "w", stderr) == NULL)
			_exit(99);
		_exit(ms_run_main(argc, argv));
	}
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static const char *elf(const char *name)
{
	static char path[32][1200];
	static int k;

	k = (k + 1) % 32;
	snprintf(path[k], sizeof(path[k]), "%s/%s.elf", fw, name);
	return path[k];
}

static void test_exit_codes(void **s)
{
	const char *pass[] = {"--board",  "mps2-an385",     "--input-text",    "hi\\r",
	                      "--expect", "echo: hi\\r\\n", elf("mps2-hello"), NULL};
	const char *failtext[] = {"--board",  "mps2-an385", "--fail-text",     "Hello",
	                          "--expect", "never",      elf("mps2-hello"), NULL};
	const char *crash[] = {"--board", "mps2-an385",      "--expect",
	                       "never",   elf("mps2-fault"), NULL};
	const char *timeout[] = {"--board",  "mps2-an385", "--timeout",       "0.01",
	                         "--expect", "never",      elf("mps2-hello"), NULL};
	const char *limit[] = {"--board",  "mps2-an385", "--max-insns",       "1000",
	                       "--expect", "tick 5",     elf("mps2-systick"), NULL};
	const char *nolimit_ok[] = {"--board", "mps2-an385",      "--timeout",
	                            "0.01",    elf("mps2-hello"), NULL};
	const char *missing[] = {"--board", "mps2-an385", "/nonexistent.elf", NULL};
	const char *badopt[] = {"--warp", "9", elf("mps2-hello"), NULL};
	const char *badesc[] = {"--expect", "\\x4", elf("mps2-hello"), NULL};
	const char *badboard[] = {"--board", "no-such", elf("mps2-hello"), NULL};
	const char *badcpu[] = {"--cpu", "pentium", elf("mps2-hello"), NULL};
	const char *two[] = {elf("mps2-hello"), elf("mps2-hello"), NULL};
	const char *badtimeout[] = {"--timeout", "-1", elf("mps2-hello"), NULL};
	const char *help[] = {"--help", NULL};

	assert_int_equal(run(pass), 0);
	assert_int_equal(run(failtext), 1);
	assert_int_equal(run(crash), 1);
	assert_int_equal(run(timeout), 3);
	assert_int_equal(run(limit), 3);
	assert_int_equal(run(nolimit_ok), 0);
	assert_int_equal(run(missing), 4);
	assert_int_equal(run(badopt), 4);
	assert_int_equal(run(badesc), 4);
	assert_int_equal(run(badboard), 4);
	assert_int_equal(run(badcpu), 4);
	assert_int_equal(run(two), 4);
	assert_int_equal(run(badtimeout), 4);
	assert_int_equal(run(help), 0);
}

static void test_hex_and_bin(void **s)
{
	char hex[1200], bin[1200];
	const char *h[] = {"--board", "mps2-an385", "--expect", "Hello from", hex, NULL};
	const char *b[] = {"--board",  "mps2-an385", "--load-addr", "0",
	                   "--expect", "Hello from", bin,           NULL};

	snprintf(hex, sizeof(hex), "%s/mps2-hello.hex", fw);
	snprintf(bin, sizeof(bin), "%s/mps2-hello.bin", fw);
	assert_int_equal(run(h), 0);
	assert_int_equal(run(b), 0);
}

static void test_reports(void **s)
{
	const char *a[] = {"--board",         "mps2-an385",
	                   "--input-text",    "count\\r",
	                   "--expect",        "count: ",
	                   "--bb-out",        "/tmp/ms_rh_run.bb",
	                   "--lcov-out",      "/tmp/ms_rh_run.info",
	                   "--mmio-log",      "/tmp/ms_rh_run.mmio",
	                   elf("mps2-hello"), NULL};
	char line[256];
	int n = 0, rc;
	FILE *f;

	assert_int_equal(run(a), 0);
	f = fopen("/tmp/ms_rh_run.bb", "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned v;

		assert_int_equal(strlen(line), 11);
		assert_int_equal(sscanf(line, "0x%08x", &v), 1);
		assert_int_equal(v & 1, 0);
		n++;
	}
	fclose(f);
	assert_true(n > 20);
	f = fopen("/tmp/ms_rh_run.mmio", "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "\"dev\":\"uart0\""));
	fclose(f);
	rc = system("genhtml -q -o /tmp/ms_rh_run_html /tmp/ms_rh_run.info >/dev/null 2>&1");
	assert_int_equal(rc, 0);
	assert_int_equal(access("/tmp/ms_rh_run_html/index.html", R_OK), 0);
	f = fopen("/tmp/ms_rh_run.info", "r");
	assert_non_null(f);
	n = 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "SF:", 3) == 0 && strstr(line, "main.c") != NULL)
			n++;
	fclose(f);
	assert_true(n >= 1);
}

static void test_qemu_backend(void **s)
{
	const char *pass[] = {"--backend",    "qemu",  "--board",         "mps2-an385",
	                      "--input-text", "hi\\r", "--expect",        "echo: hi",
	                      "--timeout",    "20",    elf("mps2-hello"), NULL};
	const char *timeout[] = {"--backend", "qemu",      "--board", "mps2-an385",      "--expect",
	                         "never",     "--timeout", "1",       elf("mps2-hello"), NULL};
	const char *unsupported[] = {"--backend", "qemu",   "--board",         "mps2-an385",
	                             "--bb-out",  "/tmp/x", elf("mps2-hello"), NULL};

	assert_int_equal(run(pass), 0);
	assert_int_equal(run(timeout), 3);
	assert_int_equal(run(unsupported), 4);
}

static void test_unescape(void **s)
{
	size_t n;
	char *r;

	r = ms_run_unescape("a\\r\\n\\x41\\\\\\t", &n);
	assert_non_null(r);
	assert_int_equal(n, 6);
	assert_memory_equal(r, "a\r\nA\\\t", 6);
	free(r);
	r = ms_run_unescape("\\x00z", &n);
	assert_non_null(r);
	assert_int_equal(n, 2);
	free(r);
	assert_null(ms_run_unescape("\\", &n));
	assert_null(ms_run_unescape("\\x", &n));
	assert_null(ms_run_unescape("\\xg1", &n));
	assert_null(ms_run_unescape("\\q", &n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unescape),     cmocka_unit_test(test_exit_codes),
	    cmocka_unit_test(test_hex_and_bin),  cmocka_unit_test(test_reports),
	    cmocka_unit_test(test_qemu_backend),
	};
	char cwd[900];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return 1;
	snprintf(fw, sizeof(fw), "%s/build/firmware", cwd);
	setenv("MS_BOARDS_DIR", "boards", 1);
	if (system("make -s -C firmware BUILD=$PWD/build/firmware >/dev/null") != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
