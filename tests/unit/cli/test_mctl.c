/*
 * Unit tests for mctl's pure helpers (src/cli/util.c, included): escapes in
 * --expect / --input-text, the option parser, number and URL parsing, and
 * the matcher that finds expected text split across console chunks.
 * The commands themselves are tested end to end against the real daemon
 * by the integration tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/util.c"
#include "core/text.h"

static void test_unescape(void **state)
{
	uint8_t out[64];
	char err[160];

	assert_int_equal(ms_unescape("PASS", out, err, sizeof(err)), 4);
	assert_memory_equal(out, "PASS", 4);
	assert_int_equal(ms_unescape("help\\r\\n", out, err, sizeof(err)), 6);
	assert_memory_equal(out, "help\r\n", 6);
	assert_int_equal(ms_unescape("\\x41\\x7a\\x00!", out, err, sizeof(err)), 4);
	assert_memory_equal(out, "Az\0!", 4);
	assert_int_equal(ms_unescape("\\xfF\\t\\\\", out, err, sizeof(err)), 3);
	assert_memory_equal(out, "\xff\t\\", 3);
	assert_int_equal(ms_unescape("", out, err, sizeof(err)), 0);

	assert_int_equal(ms_unescape("abc\\", out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "lone backslash"));
	assert_int_equal(ms_unescape("\\q", out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown escape \\q at offset 0"));
	assert_int_equal(ms_unescape("ab\\x4", out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "two hex digits"));
	assert_int_equal(ms_unescape("\\x", out, err, sizeof(err)), -1);
	assert_int_equal(ms_unescape("\\xZZ", out, err, sizeof(err)), -1);
	assert_int_equal(ms_unescape("\\x4g", out, err, sizeof(err)), -1);
}

enum { O_BOARD = MCTL_OPT_FIRST, O_EXPECT, O_KEEP };

static const struct mctl_optdef defs[] = {
    MCTL_GLOBAL_OPTS,           {"board", 'b', true, O_BOARD}, {"expect", 0, true, O_EXPECT},
    {"keep", 0, false, O_KEEP}, {NULL, 0, false, 0},
};

static int parse(struct mctl_args *a, char *err, const char *first, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	const char *s;

	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *))
		argv[argc++] = (char *)s;
	va_end(ap);
	return mctl_parse_args(argc, argv, defs, a, err, 256);
}

static void test_args(void **state)
{
	struct mctl_args a;
	char err[256];

	assert_int_equal(parse(&a, err, "-b", "mps2-an385", "fw.elf", "--expect", "PASS\\n",
	                       "--keep", "--server=http://h:1", NULL),
	                 0);
	assert_string_equal(a.val[O_BOARD], "mps2-an385");
	assert_string_equal(a.val[O_EXPECT], "PASS\\n");
	assert_true(a.set[O_KEEP]);
	assert_null(a.val[O_KEEP]);
	assert_string_equal(a.val[MCTL_OPT_SERVER], "http://h:1");
	assert_false(a.set[MCTL_OPT_TOKEN]);
	assert_int_equal(a.npos, 1);
	assert_string_equal(a.pos[0], "fw.elf");

	/* attached short value, values that look like options, "--" and "-" */
	assert_int_equal(parse(&a, err, "-bvirt", "--expect", "--keep", "--", "--keep", "-", NULL),
	                 0);
	assert_string_equal(a.val[O_BOARD], "virt");
	assert_string_equal(a.val[O_EXPECT], "--keep");
	assert_false(a.set[O_KEEP]);
	assert_int_equal(a.npos, 2);
	assert_string_equal(a.pos[0], "--keep");
	assert_string_equal(a.pos[1], "-");
	/* an empty value is a value */
	assert_int_equal(parse(&a, err, "--expect=", NULL), 0);
	assert_string_equal(a.val[O_EXPECT], "");

	assert_int_equal(parse(&a, err, "--bored", "x", NULL), -1);
	assert_string_equal(err, "unknown option --bored");
	assert_int_equal(parse(&a, err, "-x", NULL), -1);
	assert_string_equal(err, "unknown option -x");
	assert_int_equal(parse(&a, err, "--board", NULL), -1);
	assert_string_equal(err, "option --board needs a value");
	assert_int_equal(parse(&a, err, "-b", NULL), -1);
	assert_int_equal(parse(&a, err, "--keep=yes", NULL), -1);
	assert_string_equal(err, "option --keep takes no value");
	assert_int_equal(parse(&a, err, "--compact", "--compact", NULL), -1);
	assert_string_equal(err, "option --compact given twice");
	assert_int_equal(parse(&a, err, "-b", "a", "--board=b", NULL), -1);
	assert_int_equal(parse(&a, err, "1", "2", "3", "4", "5", "6", "7", "8", "9", NULL), -1);
	assert_non_null(strstr(err, "too many arguments"));
	/* prefixes of long names are not guessed */
	assert_int_equal(parse(&a, err, "--boa", "x", NULL), -1);
}

static void test_numbers(void **state)
{
	uint64_t v;

	assert_int_equal(mctl_parse_seconds("10"), 10000);
	assert_int_equal(mctl_parse_seconds("2.5"), 2500);
	assert_int_equal(mctl_parse_seconds("0.001"), 1);
	assert_int_equal(mctl_parse_seconds("0"), -1);
	assert_int_equal(mctl_parse_seconds("-3"), -1);
	assert_int_equal(mctl_parse_seconds("ten"), -1);
	assert_int_equal(mctl_parse_seconds("5s"), -1);
	assert_int_equal(mctl_parse_seconds(""), -1);
	assert_int_equal(mctl_parse_seconds("nan"), -1);
	assert_int_equal(mctl_parse_seconds("1e30"), -1);

	assert_true(mctl_parse_u64("0x08000000", &v));
	assert_true(v == 0x08000000);
	assert_true(mctl_parse_u64("4096", &v));
	assert_true(v == 4096);
	assert_true(mctl_parse_u64("0xffffffffffffffff", &v));
	assert_true(v == UINT64_MAX);
	assert_false(mctl_parse_u64("0x1ffffffffffffffff", &v));
	assert_false(mctl_parse_u64("-1", &v));
	assert_false(mctl_parse_u64(" 1", &v));
	assert_false(mctl_parse_u64("12k", &v));
	assert_false(mctl_parse_u64("", &v));
	assert_false(mctl_parse_u64("0xg", &v));
}

static void test_ids(void **state)
{
	char long_id[140];

	assert_true(mctl_valid_id("sess_0123456789abcdef"));
	assert_true(mctl_valid_id("boot.complete-1"));
	assert_false(mctl_valid_id(""));
	assert_false(mctl_valid_id(".."));
	assert_false(mctl_valid_id("a/b"));
	assert_false(mctl_valid_id("a b"));
	assert_false(mctl_valid_id("x?y=1"));
	assert_false(mctl_valid_id("name\n"));
	memset(long_id, 'a', 129);
	long_id[129] = '\0';
	assert_false(mctl_valid_id(long_id));
	long_id[128] = '\0';
	assert_true(mctl_valid_id(long_id));
}

static void test_urls(void **state)
{
	struct mctl_url u;
	char err[256];

	assert_int_equal(mctl_parse_url("http://127.0.0.1:8080", &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_string_equal(u.port, "8080");
	assert_string_equal(u.prefix, "");
	assert_int_equal(mctl_parse_url("http://localhost/", &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "localhost");
	assert_string_equal(u.port, "80");
	assert_string_equal(u.prefix, "");
	assert_int_equal(mctl_parse_url("http://[::1]:9000/ms/", &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.port, "9000");
	assert_string_equal(u.prefix, "/ms");

	assert_int_equal(mctl_parse_url("https://h", &u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "https"));
	assert_int_equal(mctl_parse_url("ftp://h", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("127.0.0.1:8080", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://:80", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://h:", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://h:0", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://h:65536", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://h:8a", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://h:123456", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://user:pw@h", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://h?x=1", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://h/p?x=1", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://[::1", &u, err, sizeof(err)), -1);
	assert_int_equal(mctl_parse_url("http://[]:80", &u, err, sizeof(err)), -1);
}

/* Feed text in two chunks split at every position; return what the matcher reports. */
static void matcher_every_split(const char *text, const char *a, const char *b, int want)
{
	size_t n = strlen(text);

	for (size_t cut = 0; cut <= n; cut++) {
		struct mctl_matcher m;
		int r1, r2;

		assert_int_equal(mctl_matcher_init(&m, (const uint8_t *)a, a ? strlen(a) : 0,
		                                   (const uint8_t *)b, b ? strlen(b) : 0),
		                 0);
		r1 = mctl_matcher_feed(&m, (const uint8_t *)text, cut);
		r2 = r1 >= 0 ? r1 : mctl_matcher_feed(&m, (const uint8_t *)text + cut, n - cut);
		if (r2 != want)
			fail_msg("\"%s\" cut at %zu: got %d, want %d", text, cut, r2, want);
		mctl_matcher_free(&m);
	}
}

static void test_matcher(void **state)
{
	struct mctl_matcher m;

	matcher_every_split("booting...\r\nAll tests PASS\r\n", "PASS", "FAIL", 0);
	matcher_every_split("test 3 FAIL: x != y\r\n", "PASS", "FAIL", 1);
	/* the first to complete wins */
	matcher_every_split("FAIL then PASS", "PASS", "FAIL", 1);
	matcher_every_split("PASS then FAIL", "PASS", "FAIL", 0);
	matcher_every_split("nothing to see", "PASS", "FAIL", -1);
	matcher_every_split("PAS S", "PASS", NULL, -1);
	matcher_every_split("only a failure: panic!", NULL, "panic", 1);
	matcher_every_split("=> ", "=> ", NULL, 0);

	/* one byte at a time, with a NUL inside the pattern */
	assert_int_equal(mctl_matcher_init(&m, (const uint8_t *)"a\0b", 3, NULL, 0), 0);
	assert_int_equal(mctl_matcher_feed(&m, (const uint8_t *)"xa", 2), -1);
	assert_int_equal(mctl_matcher_feed(&m, (const uint8_t *)"\0", 1), -1);
	assert_int_equal(mctl_matcher_feed(&m, (const uint8_t *)"", 0), -1);
	assert_int_equal(mctl_matcher_feed(&m, (const uint8_t *)"b", 1), 0);
	mctl_matcher_free(&m);
	/* nothing to look for never matches */
	assert_int_equal(mctl_matcher_init(&m, NULL, 0, NULL, 0), 0);
	assert_int_equal(mctl_matcher_feed(&m, (const uint8_t *)"abc", 3), -1);
	mctl_matcher_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unescape), cmocka_unit_test(test_args),
	    cmocka_unit_test(test_numbers),  cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_urls),     cmocka_unit_test(test_matcher),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
