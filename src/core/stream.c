/*
 * stream: byte ring + log file + positioned readers; see stream.h.
 *
 * The log file is written behind the ring, not on every write: bytes go to
 * the ring at once (readers see them at once) and reach the file when the
 * ring is about to overwrite bytes the file does not have yet, when the
 * oldest unwritten byte is FLUSH_NS old at the next write, and on
 * ms_stream_flush (the session reaper calls it every second, shutdown once
 * more). Two costs are avoided that way: a write(2) per UART byte, and
 * creating the log file (and its directory) while a session is being
 * created, which on a busy ext4 costs 0.3 ms median and up to 20 ms per
 * inode. The file is opened, and its directory made 0700, on the first
 * flush; a closed stream (a deleted session) never makes the directory
 * again. What a daemon crash can lose is the unflushed tail: at most the
 * last FLUSH_NS of a busy stream or the last second of a quiet one.
 *
 * Invariant: the file holds positions [0, flushed) and flushed >= the
 * oldest position the ring holds, so a reader behind the ring always finds
 * its bytes in the file.
 *
 * Threads: any. st->mu guards everything in struct ms_stream, including the
 * reader list; a reader's own fields (pos, efd) are touched only under the
 * same mutex, so a reader may be read by its owner while a writer appends.
 */
#include "core/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A stream that keeps writing reaches its file at least this often. */
#define FLUSH_NS 100000000ll

struct ms_stream_reader {
	struct ms_stream *st;
	uint64_t pos;
	int efd;
	struct ms_stream_reader *next;
};

struct ms_stream {
	pthread_mutex_t mu;
	atomic_int refs;
	uint8_t *ring;
	size_t cap;
	uint64_t end; /* absolute position of the next byte */
	uint64_t ring_from; /* oldest position the ring ever held (log size at open) */
	char *log_path; /* NULL without a log file */
	int log_fd; /* -1 until the first flush (or without a log file) */
	bool log_failed; /* the file cannot be written: only the ring is kept */
	uint64_t flushed; /* the file holds positions [0, flushed) */
	int64_t dirty_since; /* CLOCK_MONOTONIC ns of the oldest unflushed byte */
	bool closed;
	struct ms_stream_reader *readers;
};

static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000ll + t.tv_nsec;
}

struct ms_stream *ms_stream_new(size_t ring_cap, const char *log_path)
{
	struct ms_stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->ring = malloc(ring_cap);
	if (st->ring == NULL) {
		free(st);
		return NULL;
	}
	pthread_mutex_init(&st->mu, NULL);
	atomic_init(&st->refs, 1);
	st->cap = ring_cap;
	st->log_fd = -1;
	if (log_path != NULL) {
		struct stat sb;

		st->log_path = strdup(log_path);
		if (st->log_path == NULL) {
			ms_stream_unref(st);
			return NULL;
		}
		if (stat(log_path, &sb) == 0) {
			/*
			 * A reopened log (daemon restart) keeps its bytes: positions
			 * continue after them, and late readers can still replay them
			 * from the file. The ring starts empty at that position.
			 */
			st->end = (uint64_t)sb.st_size;
			st->ring_from = st->end;
			st->flushed = st->end;
		}
	}
	return st;
}

void ms_stream_ref(struct ms_stream *st)
{
	atomic_fetch_add(&st->refs, 1);
}

/* Make the log file's directory (0700) when it is missing. */
static int make_parent(const char *path)
{
	char dir[1024];
	char *slash;

	if (strlen(path) >= sizeof(dir))
		return -1;
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return -1;
	*slash = '\0';
	return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* Open the log file on first use. Caller holds st->mu. */
static int log_open(struct ms_stream *st)
{
	if (st->log_fd >= 0)
		return 0;
	if (st->log_path == NULL || st->log_failed)
		return -1;
	st->log_fd = open(st->log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	/* A deleted session's stream is closed: it must not bring the directory back. */
	if (st->log_fd < 0 && errno == ENOENT && !st->closed && make_parent(st->log_path) == 0)
		st->log_fd = open(st->log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (st->log_fd < 0) {
		st->log_failed = true;
		return -1;
	}
	return 0;
}

/* Append all of p to the log; false when the file cannot take it. Caller holds st->mu. */
static bool log_append(struct ms_stream *st, const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(st->log_fd, p + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

/*
 * Write positions [flushed, end) from the ring to the file. On failure (disk
 * full, directory gone) the log is given up: positions in the file must stay
 * byte offsets, so nothing is appended after a gap. Caller holds st->mu.
 */
static void flush_locked(struct ms_stream *st)
{
	if (st->flushed >= st->end || st->log_path == NULL || st->log_failed)
		return;
	if (log_open(st) != 0)
		return;
	while (st->flushed < st->end) {
		size_t at = (size_t)(st->flushed % st->cap);
		size_t chunk = st->cap - at;

		if (chunk > st->end - st->flushed)
			chunk = (size_t)(st->end - st->flushed);
		if (!log_append(st, st->ring + at, chunk)) {
			st->log_failed = true;
			return;
		}
		st->flushed += chunk;
	}
}

void ms_stream_flush(struct ms_stream *st)
{
	pthread_mutex_lock(&st->mu);
	flush_locked(st);
	pthread_mutex_unlock(&st->mu);
}

void ms_stream_unref(struct ms_stream *st)
{
	if (st == NULL || atomic_fetch_sub(&st->refs, 1) != 1)
		return;
	flush_locked(st); /* the last reference: nobody else holds st->mu */
	if (st->log_fd >= 0)
		close(st->log_fd);
	pthread_mutex_destroy(&st->mu);
	free(st->log_path);
	free(st->ring);
	free(st);
}

/* Make an eventfd readable. It cannot fail short of a counter overflow, which would also mean "readable". */
static void signal_fd(int efd)
{
	uint64_t one = 1;
	ssize_t n = write(efd, &one, sizeof(one));

	(void)n;
}

static void wake_all(struct ms_stream *st)
{
	for (struct ms_stream_reader *r = st->readers; r != NULL; r = r->next)
		signal_fd(r->efd);
}

void ms_stream_write(struct ms_stream *st, const void *data, size_t len)
{
	const uint8_t *p = data;
	bool logging;

	if (len == 0)
		return;
	pthread_mutex_lock(&st->mu);
	logging = st->log_path != NULL && !st->log_failed;
	if (logging && st->end + len - st->flushed > st->cap) {
		/*
		 * The ring is about to drop bytes the file does not have: the
		 * file takes the pending bytes and this write as they are.
		 */
		flush_locked(st);
		if (log_open(st) == 0 && !st->log_failed) {
			if (log_append(st, p, len))
				st->flushed = st->end + len;
			else
				st->log_failed = true;
		}
	} else if (logging && st->flushed == st->end) {
		st->dirty_since = mono_ns();
	}
	/* Only the last cap bytes of a huge write can stay in the ring. */
	if (len > st->cap) {
		st->end += len - st->cap;
		p += len - st->cap;
		len = st->cap;
	}
	for (size_t i = 0; i < len;) {
		size_t at = (size_t)(st->end % st->cap);
		size_t chunk = st->cap - at;

		if (chunk > len - i)
			chunk = len - i;
		memcpy(st->ring + at, p + i, chunk);
		st->end += chunk;
		i += chunk;
	}
	if (logging && st->flushed < st->end && mono_ns() - st->dirty_since >= FLUSH_NS)
		flush_locked(st);
	wake_all(st);
	pthread_mutex_unlock(&st->mu);
}

uint64_t ms_stream_end(struct ms_stream *st)
{
	uint64_t end;

	pthread_mutex_lock(&st->mu);
	end = st->end;
	pthread_mutex_unlock(&st->mu);
	return end;
}

void ms_stream_close(struct ms_stream *st)
{
	pthread_mutex_lock(&st->mu);
	st->closed = true;
	wake_all(st);
	pthread_mutex_unlock(&st->mu);
}

struct ms_stream_reader *ms_stream_reader_open(struct ms_stream *st, uint64_t from)
{
	struct ms_stream_reader *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0) {
		free(r);
		return NULL;
	}
	ms_stream_ref(st);
	r->st = st;
	pthread_mutex_lock(&st->mu);
	r->pos = from > st->end ? st->end : from;
	r->next = st->readers;
	st->readers = r;
	/* Start readable so the owner looks at once (backlog or EOF). */
	signal_fd(r->efd);
	pthread_mutex_unlock(&st->mu);
	return r;
}

void ms_stream_reader_close(struct ms_stream_reader *r)
{
	struct ms_stream *st;

	if (r == NULL)
		return;
	st = r->st;
	pthread_mutex_lock(&st->mu);
	for (struct ms_stream_reader **pp = &st->readers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&st->mu);
	close(r->efd);
	free(r);
	ms_stream_unref(st);
}

int ms_stream_reader_fd(struct ms_stream_reader *r)
{
	return r->efd;
}

ssize_t ms_stream_read(struct ms_stream_reader *r, void *buf, size_t cap)
{
	struct ms_stream *st = r->st;
	uint64_t ring_start;
	ssize_t n = 0;

	pthread_mutex_lock(&st->mu);
	ring_start = st->end > st->cap ? st->end - st->cap : 0;
	if (ring_start < st->ring_from)
		ring_start = st->ring_from;
	if (r->pos < ring_start) {
		/* Fell behind the ring: replay from the log file when there is one. */
		uint64_t in_file = ring_start < st->flushed ? ring_start : st->flushed;

		if (r->pos < in_file && log_open(st) == 0) {
			size_t want =
			    (size_t)(in_file - r->pos) < cap ? (size_t)(in_file - r->pos) : cap;

			n = pread(st->log_fd, buf, want, (off_t)r->pos);
			if (n > 0)
				r->pos += (uint64_t)n;
		}
		if (n <= 0) {
			n = 0;
			r->pos = ring_start; /* bytes are gone for good */
		}
	}
	if (n == 0 && r->pos < st->end) {
		size_t avail = (size_t)(st->end - r->pos);
		size_t at = (size_t)(r->pos % st->cap);
		size_t chunk = st->cap - at;

		if (chunk > avail)
			chunk = avail;
		if (chunk > cap)
			chunk = cap;
		memcpy(buf, st->ring + at, chunk);
		r->pos += chunk;
		n = (ssize_t)chunk;
	}
	if (n == 0) {
		uint64_t v;
		ssize_t k = read(r->efd, &v, sizeof(v)); /* drain; EAGAIN is fine */

		(void)k;
		if (st->closed)
			n = -1;
	}
	pthread_mutex_unlock(&st->mu);
	return n;
}

int ms_stream_snapshot(struct ms_stream *st, size_t max, char **out, size_t *out_len)
{
	struct ms_stream_reader *r;
	uint64_t end = ms_stream_end(st);
	uint64_t from = end > max ? end - max : 0;
	size_t len = 0;
	char *buf;

	buf = malloc((size_t)(end - from) + 1);
	if (buf == NULL)
		return -ENOMEM;
	r = ms_stream_reader_open(st, from);
	if (r == NULL) {
		free(buf);
		return -ENOMEM;
	}
	while (len < end - from) {
		ssize_t n = ms_stream_read(r, buf + len, (size_t)(end - from) - len);

		if (n <= 0)
			break;
		len += (size_t)n;
	}
	ms_stream_reader_close(r);
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}
