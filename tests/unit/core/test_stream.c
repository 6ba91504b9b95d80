/*
 * Unit tests for core/stream.c: ring wrap-around, late readers served from
 * the log file, readers woken through their fd, EOF after close, snapshot.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/stream.h"

static char tmpdir[] = "/tmp/ms-stream-XXXXXX";

static void read_all(struct ms_stream_reader *r, char *out, size_t cap, size_t *len)
{
	ssize_t n;

	*len = 0;
	while ((n = ms_stream_read(r, out + *len, cap - *len)) > 0)
		*len += (size_t)n;
}

static void test_ring_only(void **state)
{
	struct ms_stream *st = ms_stream_new(8, NULL);
	struct ms_stream_reader *r;
	char buf[64];
	size_t len;

	(void)state;
	ms_stream_write(st, "abcdefghijkl", 12); /* wraps: only "efghijkl" stays */
	r = ms_stream_reader_open(st, 0);
	read_all(r, buf, sizeof(buf), &len);
	assert_int_equal(len, 8);
	assert_memory_equal(buf, "efghijkl", 8);
	assert_int_equal(ms_stream_end(st), 12);
	ms_stream_reader_close(r);
	ms_stream_unref(st);
}

static void test_late_reader_gets_log(void **state)
{
	char path[128];
	struct ms_stream *st;
	struct ms_stream_reader *r;
	char big[1000], buf[2000];
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s/log1", tmpdir);
	st = ms_stream_new(16, path);
	for (int i = 0; i < 1000; i++)
		big[i] = (char)('a' + i % 26);
	for (int i = 0; i < 10; i++)
		ms_stream_write(st, big + i * 100, 100);
	r = ms_stream_reader_open(st, 0);
	read_all(r, buf, sizeof(buf), &len);
	assert_int_equal(len, 1000);
	assert_memory_equal(buf, big, 1000);
	ms_stream_reader_close(r);
	ms_stream_unref(st);

	/* Reopened (daemon restart): positions continue after the file's bytes. */
	st = ms_stream_new(16, path);
	assert_int_equal(ms_stream_end(st), 1000);
	r = ms_stream_reader_open(st, 990);
	read_all(r, buf, sizeof(buf), &len);
	assert_int_equal(len, 10);
	assert_memory_equal(buf, big + 990, 10);
	ms_stream_reader_close(r);
	ms_stream_unref(st);
}

static void test_wakeup_and_eof(void **state)
{
	struct ms_stream *st = ms_stream_new(64, NULL);
	struct ms_stream_reader *r = ms_stream_reader_open(st, UINT64_MAX);
	struct pollfd pf = {.fd = ms_stream_reader_fd(r), .events = POLLIN};
	char buf[16];

	(void)state;
	assert_int_equal(ms_stream_read(r, buf, sizeof(buf)), 0);
	assert_int_equal(poll(&pf, 1, 0), 0); /* drained: not readable */
	ms_stream_write(st, "xy", 2);
	assert_int_equal(poll(&pf, 1, 1000), 1);
	assert_int_equal(ms_stream_read(r, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "xy", 2);
	ms_stream_close(st);
	assert_int_equal(poll(&pf, 1, 1000), 1);
	assert_int_equal(ms_stream_read(r, buf, sizeof(buf)), -1);
	ms_stream_reader_close(r);
	ms_stream_unref(st);
}

static void test_snapshot_tail(void **state)
{
	char path[128];
	struct ms_stream *st;
	char *text = NULL;
	size_t len = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/log2", tmpdir);
	st = ms_stream_new(4, path);
	ms_stream_write(st, "hello world", 11);
	assert_int_equal(ms_stream_snapshot(st, 5, &text, &len), 0);
	assert_int_equal(len, 5);
	assert_string_equal(text, "world");
	free(text);
	assert_int_equal(ms_stream_snapshot(st, 100, &text, &len), 0);
	assert_string_equal(text, "hello world");
	free(text);
	ms_stream_unref(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_only),
	    cmocka_unit_test(test_late_reader_gets_log),
	    cmocka_unit_test(test_wakeup_and_eof),
	    cmocka_unit_test(test_snapshot_tail),
	};

	if (mkdtemp(tmpdir) == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
