/*
 * "machineserver run" (ms_run_main) end to end, each run in a child
 * process: exit codes 0/1/3/4 for expected text, failure text, crash,
 * timeout, instruction limit, bad files and bad options; --bb-out format;
 * --lcov-out accepted by Debian's genhtml; --mmio-log JSON lines; the same
 * options on --backend qemu; C escapes with malformed input; --events
 * (external events at virtual times): its parser with malformed,
 * truncated, oversized and hostile files, each error naming FILE:LINE, and
 * the GPIO + external interrupt corpus image run with it, zero-config and
 * with its SVD, deterministically.
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

/* Parse text; on failure return the message (static), on success NULL. */
static const char *parse_err(const char *text, size_t len, struct ms_run_events *out)
{
	static char err[512];

	if (ms_run_events_parse(text, len, "ev.jsonl", out, err, sizeof(err)) == 0)
		return NULL;
	assert_int_equal(out->n, 0);
	assert_null(out->v);
	return err;
}

static void expect_err(const char *text, const char *want)
{
	struct ms_run_events evs;
	const char *err = parse_err(text, strlen(text), &evs);

	if (err == NULL || strstr(err, want) == NULL)
		fail_msg("events [%s]: wanted an error with [%s], got [%s]", text, want,
		         err ? err : "success");
}

static void test_events_parser(void **s)
{
	struct ms_run_events evs;
	const char *good = "# button presses\n"
	                   "{\"at_us\": 10, \"kind\": \"gpio\", \"addr\": \"0x40010808\", "
	                   "\"mask\": 1, \"value\": 1, \"irq\": 6}\r\n"
	                   "\n   \n"
	                   "{\"at_us\": \"10\", \"kind\": \"gpio\", \"addr\": 1073809416, "
	                   "\"mask\": \"0x1\", \"value\": 0}";
	char *big;
	size_t n;

	assert_null(parse_err(good, strlen(good), &evs));
	assert_int_equal(evs.n, 2);
	assert_int_equal(evs.v[0].at_us, 10);
	assert_int_equal(evs.v[0].line, 2);
	assert_int_equal(evs.v[1].line, 5);
	/* The object handed to the engine is the daemon's inject body: no at_us. */
	assert_null(json_object_get(evs.v[0].ev, "at_us"));
	assert_int_equal(json_integer_value(json_object_get(evs.v[0].ev, "irq")), 6);
	assert_null(json_object_get(evs.v[1].ev, "irq"));
	ms_run_events_free(&evs);
	assert_null(parse_err("", 0, &evs));
	assert_int_equal(evs.n, 0);

	/* Malformed. */
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\"", "ev.jsonl:1: bad JSON");
	expect_err("\n\n[1, 2]\n", "ev.jsonl:3: not a JSON object");
	expect_err("{}\n", "ev.jsonl:1: \"at_us\" missing");
	expect_err("{\"at_us\": -5, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1}",
	           "ev.jsonl:1: \"at_us\"");
	expect_err("{\"at_us\": 1.5, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1}",
	           "\"at_us\"");
	expect_err("{\"at_us\": 1, \"kind\": \"uart\", \"addr\": 1, \"mask\": 1, \"value\": 1}",
	           "\"kind\" must be \"gpio\"");
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\", \"mask\": 1, \"value\": 1}",
	           "\"addr\" missing");
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 0, \"value\": 1}",
	           "\"mask\" missing, 0");
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1}",
	           "\"value\" missing");
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1, "
	           "\"irq\": 240}",
	           "\"irq\" must be");
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1, "
	           "\"irq\": \"6\"}",
	           "\"irq\" must be");
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1, "
	           "\"iqr\": 6}",
	           "ev.jsonl:1: unknown key \"iqr\"");
	/* Hostile: duplicate keys, numbers out of range, trailing text, disorder. */
	expect_err("{\"at_us\": 1, \"at_us\": 2, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, "
	           "\"value\": 1}",
	           "ev.jsonl:1: bad JSON");
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\", \"addr\": 4294967296, \"mask\": 1, "
	           "\"value\": 1}",
	           "\"addr\"");
	expect_err("{\"at_us\": 99999999999999999999999, \"kind\": \"gpio\", \"addr\": 1, "
	           "\"mask\": 1, \"value\": 1}",
	           "ev.jsonl:1:");
	expect_err("{\"at_us\": 1000000000001, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, "
	           "\"value\": 1}",
	           "\"at_us\"");
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1} "
	           "{\"at_us\": 2}",
	           "ev.jsonl:1: bad JSON");
	expect_err("{\"at_us\": 9, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1}\n"
	           "{\"at_us\": 8, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1}\n",
	           "ev.jsonl:2: events must be in time order");
	expect_err("{\"at_us\": 1, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1}\n"
	           "{\"at_us\": 1, \"kind\": \"gp\xff\xfe\"}\n",
	           "ev.jsonl:2: bad JSON");
	{
		static const char nul[] = "{}\n{\"at_us\"\0: 1}\n";

		assert_non_null(parse_err(nul, sizeof(nul) - 1, &evs));
		assert_non_null(strstr(parse_err(nul, sizeof(nul) - 1, &evs), "ev.jsonl:2: NUL"));
	}
	/* Oversized: one line over the limit; more events than allowed. */
	big = malloc(MS_RUN_EVENT_LINE_MAX + 64);
	assert_non_null(big);
	memset(big, ' ', MS_RUN_EVENT_LINE_MAX + 10);
	big[0] = '{';
	strcpy(big + MS_RUN_EVENT_LINE_MAX + 10, "}\n");
	expect_err(big, "ev.jsonl:1: line longer than");
	free(big);
	{
		const char *one =
		    "{\"at_us\":1,\"kind\":\"gpio\",\"addr\":1,\"mask\":1,\"value\":1}\n";
		size_t l1 = strlen(one);
		char *many = malloc(l1 * (MS_RUN_EVENTS_MAX + 1) + 1);
		char line[32];

		assert_non_null(many);
		for (n = 0; n <= MS_RUN_EVENTS_MAX; n++)
			memcpy(many + n * l1, one, l1);
		many[l1 * n] = 0;
		snprintf(line, sizeof(line), "ev.jsonl:%d: more than", MS_RUN_EVENTS_MAX + 1);
		expect_err(many, line);
		free(many);
	}
	/* Files: missing, and a real one. */
	{
		char err[512];
		FILE *f;

		assert_int_equal(ms_run_events_load("/nonexistent/ev", &evs, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "/nonexistent/ev: cannot read"));
		f = fopen("/tmp/ms_rh_run_ev.jsonl", "w");
		assert_non_null(f);
		fputs("{\"at_us\": 5, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1}\n"
		      "{\"at_us\": 6, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, ",
		      f);
		fclose(f);
		assert_int_equal(
		    ms_run_events_load("/tmp/ms_rh_run_ev.jsonl", &evs, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "/tmp/ms_rh_run_ev.jsonl:2: bad JSON"));
		assert_non_null(strstr(err, "truncated"));
	}
}

static void expect_spec_err(const char *spec, const char *want)
{
	struct ms_run_events evs = {0};
	char err[512];

	if (ms_run_events_add_spec(&evs, spec, 3, err, sizeof(err)) == 0)
		fail_msg("--inject %s accepted", spec);
	assert_int_equal(evs.n, 0);
	if (strstr(err, want) == NULL)
		fail_msg("--inject %s: wanted [%s], got [%s]", spec, want, err);
	ms_run_events_free(&evs);
}

static void test_inject_spec(void **s)
{
	const char *ev =
	    "{\"at_us\": 20, \"kind\": \"gpio\", \"addr\": 1, \"mask\": 1, \"value\": 1}\n"
	    "{\"at_us\": 30, \"kind\": \"gpio\", \"addr\": 2, \"mask\": 1, \"value\": 1}\n";
	struct ms_run_events evs;
	char err[512];

	/* Merged in time order; at equal times file lines first, then options in order. */
	assert_null(parse_err(ev, strlen(ev), &evs));
	assert_int_equal(
	    ms_run_events_add_spec(&evs, "20:{\"kind\":\"gpio\",\"addr\":3,\"mask\":1,\"value\":0}",
	                           1, err, sizeof(err)),
	    0);
	assert_int_equal(ms_run_events_add_spec(
	                     &evs,
	                     "5:{\"kind\":\"gpio\",\"addr\":4,\"mask\":1,\"value\":0,\"irq\":6}", 2,
	                     err, sizeof(err)),
	                 0);
	assert_int_equal(
	    ms_run_events_add_spec(&evs, "20:{\"kind\":\"gpio\",\"addr\":5,\"mask\":1,\"value\":0}",
	                           3, err, sizeof(err)),
	    0);
	assert_int_equal(evs.n, 5);
	{
		static const int addr[5] = {4, 1, 3, 5, 2};
		static const int spec[5] = {2, 0, 1, 3, 0};

		for (int i = 0; i < 5; i++) {
			assert_int_equal(json_integer_value(json_object_get(evs.v[i].ev, "addr")),
			                 addr[i]);
			assert_int_equal(evs.v[i].spec, spec[i]);
			assert_null(json_object_get(evs.v[i].ev, "at_us"));
		}
	}
	ms_run_events_free(&evs);
	expect_spec_err("", "--inject #3: expected AT_US:JSON");
	expect_spec_err("{\"kind\":\"gpio\"}", "expected AT_US:JSON");
	expect_spec_err(":{}", "expected AT_US:JSON");
	expect_spec_err("-1:{}", "expected AT_US:JSON");
	expect_spec_err("0x10:{}", "expected AT_US:JSON");
	expect_spec_err("99999999999999999999:{}", "is over");
	expect_spec_err("999999999999999999999999999:{}", "expected AT_US:JSON");
	expect_spec_err("1000000000001:{}", "is over");
	expect_spec_err("10:{\"kind\":", "--inject #3: bad JSON");
	expect_spec_err("10:[1]", "not a JSON object");
	expect_spec_err("10:{\"kind\":\"gpio\",\"addr\":1,\"mask\":1,\"value\":1,\"at_us\":5}",
	                "before the colon");
	expect_spec_err(
	    "10:{\"kind\":\"gpio\",\"kind\":\"gpio\",\"addr\":1,\"mask\":1,\"value\":1}",
	    "bad JSON");
	expect_spec_err("10:{\"kind\":\"gpio\",\"addr\":1,\"mask\":1,\"value\":1,\"irq\":-1}",
	                "\"irq\" must be");
	{
		char *big = malloc(MS_RUN_EVENT_LINE_MAX + 16);

		assert_non_null(big);
		memcpy(big, "1:", 2);
		memset(big + 2, ' ', MS_RUN_EVENT_LINE_MAX + 4);
		big[MS_RUN_EVENT_LINE_MAX + 6] = 0;
		expect_spec_err(big, "longer than");
		free(big);
	}
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = calloc(1, (size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return b;
}

/* The inference decisions of an --mmio-log, without host-time figures. */
static char *decisions(const char *path)
{
	FILE *f = fopen(path, "r");
	json_t *a = json_array();
	char line[8192], *out;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_t *o = json_loads(line, 0, NULL);
		const char *t = json_string_value(json_object_get(o, "type"));

		if (t != NULL && strncmp(t, "infer.", 6) == 0) {
			json_object_del(o, "latency_ns");
			json_object_del(o, "map_ns");
			json_array_append(a, o);
		}
		json_decref(o);
	}
	fclose(f);
	out = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return out;
}

/*
 * GPIO input with an external interrupt (firmware/infer/stm32f1-exti): a
 * press and a release interrupt and print their level; a press after the
 * firmware masked the line does not interrupt. Zero-config and with the
 * SVD, twice each with the same output, blocks and decisions.
 */
static void test_events_run(void **s)
{
	const char *img = elf("infer-stm32f1-exti");
	const char *evf = "firmware/infer/stm32f1-exti/events.jsonl";
	const char *expect = "exti ready\\r\\nbutton 1\\r\\nbutton 0\\r\\nmasked\\r\\nlevel "
	                     "1\\r\\nirqs 2\\r\\nPASS\\r\\n";
	const char *svd = "/work/shared/svd/STMicro/STM32F103xx.svd";
	const char *zero[] = {"--events", evf, "--expect", expect, img, NULL};
	const char *with_svd[] = {"--events", evf, "--svd", svd, "--expect", expect, img, NULL};
	const char *none[] = {"--expect", "button 1", "--timeout", "0.05", img, NULL};
	const char *det[] = {"--events", evf,          "--expect", expect, "--bb-out",
	                     NULL,       "--mmio-log", NULL,       img,    NULL};
	const char *bad[] = {"--events", "/tmp/ms_rh_run_bad.jsonl", img, NULL};
	const char *missing[] = {"--events", "/nonexistent.jsonl", img, NULL};
	const char *noinfer[] = {"--no-infer", "--events", evf, img, NULL};
	const char *qemu[] = {"--backend", "qemu", "--board", "mps2-an385",
	                      "--events",  evf,    img,       NULL};
	const char *cmdline[] = {
	    "--inject",
	    "3000:{\"kind\":\"gpio\",\"addr\":\"0x40010808\",\"mask\":1,\"value\":1,\"irq\":6}",
	    "--inject",
	    "1000:{\"kind\":\"gpio\",\"addr\":\"0x40010808\",\"mask\":1,\"value\":1,\"irq\":6}",
	    "--inject",
	    "2000:{\"kind\":\"gpio\",\"addr\":\"0x40010808\",\"mask\":1,\"value\":0,\"irq\":6}",
	    "--expect",
	    expect,
	    img,
	    NULL};
	const char *badspec[] = {"--inject", "1000:{\"kind\":\"gpio\"}", img, NULL};
	const char *qemu_inject[] = {"--backend", "qemu", "--board", "mps2-an385",
	                             "--inject",  "1:{}", img,       NULL};
	char *bb[2], *dec[2];

	assert_int_equal(run(zero), 0);
	if (access(svd, R_OK) == 0)
		assert_int_equal(run(with_svd), 0);
	else
		fprintf(stderr, "SKIP (svd run): %s absent\n", svd);
	/* Without events the button never interrupts: the run times out. */
	assert_int_equal(run(none), 3);
	for (int i = 0; i < 2; i++) {
		char bbp[64], mp[64];

		snprintf(bbp, sizeof(bbp), "/tmp/ms_rh_run_ev%d.bb", i);
		snprintf(mp, sizeof(mp), "/tmp/ms_rh_run_ev%d.mmio", i);
		det[5] = bbp;
		det[7] = mp;
		assert_int_equal(run(det), 0);
		bb[i] = slurp(bbp);
		dec[i] = decisions(mp);
	}
	assert_string_equal(bb[0], bb[1]);
	assert_string_equal(dec[0], dec[1]);
	assert_non_null(strstr(dec[0], "\"model\":\"event-flag\""));
	assert_non_null(strstr(dec[0], "\"raised\":false"));
	for (int i = 0; i < 2; i++) {
		free(bb[i]);
		free(dec[i]);
	}
	/* Bad files and refused events: exit 4. */
	write_text("/tmp/ms_rh_run_bad.jsonl", "{\"at_us\": 1, \"kind\": \"gpio\"\n");
	assert_int_equal(run(bad), 4);
	/* An interrupt the firmware never enables. */
	write_text("/tmp/ms_rh_run_bad.jsonl",
	           "{\"at_us\": 1000, \"kind\": \"gpio\", \"addr\": "
	           "\"0x40010808\", \"mask\": 1, \"value\": 1, \"irq\": 7}\n");
	assert_int_equal(run(bad), 4);
	/* An address outside the peripheral windows (RAM). */
	write_text("/tmp/ms_rh_run_bad.jsonl",
	           "{\"at_us\": 1000, \"kind\": \"gpio\", \"addr\": "
	           "\"0x20000000\", \"mask\": 1, \"value\": 1}\n");
	assert_int_equal(run(bad), 4);
	assert_int_equal(run(missing), 4);
	assert_int_equal(run(noinfer), 4);
	assert_int_equal(run(qemu), 4);
	/* The same events on the command line, in any order. */
	assert_int_equal(run(cmdline), 0);
	assert_int_equal(run(badspec), 4);
	assert_int_equal(run(qemu_inject), 4);
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
	    cmocka_unit_test(test_qemu_backend), cmocka_unit_test(test_events_parser),
	    cmocka_unit_test(test_events_run),   cmocka_unit_test(test_inject_spec),
	};
	char cwd[900];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return 1;
	snprintf(fw, sizeof(fw), "%s/build/firmware", cwd);
	setenv("MS_BOARDS_DIR", "boards", 1);
	if (system("make -s -C firmware BUILD=$PWD/build/firmware >/dev/null") != 0 ||
	    system("make -s -C firmware/infer BUILD=$PWD/build/firmware >/dev/null") != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
