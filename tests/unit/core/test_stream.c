/*
 * Unit tests for core/stream.c: ring wrap-around, late readers served from
 * the log file, readers woken through their fd, EOF after close, snapshot,
 * the log file written behind the ring (created on the first flush, with its
 * directory; never again for a closed stream).
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

static size_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (size_t)sb.st_size : (size_t)-1;
}

/* Small writes that wrap a small ring many times: a reader from 0 still gets every byte. */
static void test_small_writes_wrap_into_log(void **state)
{
	char path[128];
	struct ms_stream *st;
	struct ms_stream_reader *r;
	char want[3000], buf[4000];
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s/log3", tmpdir);
	st = ms_stream_new(64, path);
	for (int i = 0; i < 3000; i++) {
		want[i] = (char)('0' + i % 10);
		ms_stream_write(st, &want[i], 1);
	}
	r = ms_stream_reader_open(st, 0);
	read_all(r, buf, sizeof(buf), &len);
	assert_int_equal(len, 3000);
	assert_memory_equal(buf, want, 3000);
	ms_stream_reader_close(r);
	ms_stream_unref(st);
	/* The last reference wrote the tail: the file has every byte. */
	assert_int_equal(file_size(path), 3000);
}

/*
 * The file and its directory appear at the first flush, not when the stream
 * is made or written to (session creation must not pay for inodes).
 */
static void test_log_created_on_flush(void **state)
{
	char dir[128], path[160];
	struct ms_stream *st;
	struct stat sb;
	char *text = NULL;
	size_t len = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/sess_lazy", tmpdir);
	snprintf(path, sizeof(path), "%s/events.log", dir);
	st = ms_stream_new(1024, path);
	ms_stream_write(st, "created\n", 8);
	assert_int_equal(stat(dir, &sb), -1);
	ms_stream_flush(st);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(file_size(path), 8);
	ms_stream_write(st, "state\n", 6);
	ms_stream_unref(st);
	assert_int_equal(file_size(path), 14);

	/* Reopened: positions continue after the file, and the old bytes read from it. */
	st = ms_stream_new(1024, path);
	assert_int_equal(ms_stream_end(st), 14);
	assert_int_equal(ms_stream_snapshot(st, 100, &text, &len), 0);
	assert_int_equal(len, 14);
	assert_string_equal(text, "created\nstate\n");
	free(text);
	ms_stream_unref(st);
}

/* A deleted session's directory does not come back through its closed stream. */
static void test_closed_stream_does_not_recreate_dir(void **state)
{
	char dir[128], path[160];
	struct ms_stream *st;
	struct ms_stream_reader *r;
	struct stat sb;
	char buf[64];
	size_t len;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/sess_gone", tmpdir);
	snprintf(path, sizeof(path), "%s/console.log", dir);
	st = ms_stream_new(16, path);
	ms_stream_write(st, "deleted", 7);
	ms_stream_close(st);
	ms_stream_write(st, "0123456789abcdefXYZ", 19); /* wraps: wants the file */
	ms_stream_flush(st);
	assert_int_equal(stat(dir, &sb), -1);
	/* Readers still get what the ring holds, then EOF. */
	r = ms_stream_reader_open(st, 0);
	read_all(r, buf, sizeof(buf), &len);
	assert_int_equal(len, 16);
	assert_memory_equal(buf, "3456789abcdefXYZ", 16);
	assert_int_equal(ms_stream_read(r, buf, sizeof(buf)), -1);
	ms_stream_reader_close(r);
	ms_stream_unref(st);
	assert_int_equal(stat(dir, &sb), -1);
}

/* A log that cannot be written (its directory is a file) leaves the ring working. */
static void test_unwritable_log_keeps_ring(void **state)
{
	char notdir[128], path[160];
	struct ms_stream *st;
	struct ms_stream_reader *r;
	char buf[64];
	size_t len;
	FILE *f;

	(void)state;
	snprintf(notdir, sizeof(notdir), "%s/plainfile", tmpdir);
	f = fopen(notdir, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/console.log", notdir);
	st = ms_stream_new(8, path);
	ms_stream_write(st, "abcdefghijkl", 12);
	ms_stream_flush(st);
	r = ms_stream_reader_open(st, 0);
	read_all(r, buf, sizeof(buf), &len);
	assert_int_equal(len, 8);
	assert_memory_equal(buf, "efghijkl", 8);
	ms_stream_reader_close(r);
	ms_stream_unref(st);
}

/* A stream that keeps being written reaches its file without an explicit flush. */
static void test_busy_stream_flushes_itself(void **state)
{
	char path[128];
	struct ms_stream *st;
	struct timespec pause = {.tv_sec = 0, .tv_nsec = 150000000};

	(void)state;
	snprintf(path, sizeof(path), "%s/log4", tmpdir);
	st = ms_stream_new(1024, path);
	ms_stream_write(st, "a", 1);
	nanosleep(&pause, NULL); /* longer than the stream's 100 ms flush interval */
	ms_stream_write(st, "b", 1);
	assert_int_equal(file_size(path), 2);
	ms_stream_unref(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_only),
	    cmocka_unit_test(test_late_reader_gets_log),
	    cmocka_unit_test(test_wakeup_and_eof),
	    cmocka_unit_test(test_snapshot_tail),
	    cmocka_unit_test(test_small_writes_wrap_into_log),
	    cmocka_unit_test(test_log_created_on_flush),
	    cmocka_unit_test(test_closed_stream_does_not_recreate_dir),
	    cmocka_unit_test(test_unwritable_log_keeps_ring),
	    cmocka_unit_test(test_busy_stream_flushes_itself),
	};

	if (mkdtemp(tmpdir) == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
