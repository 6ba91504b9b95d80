/*
 * qmp: QEMU machine protocol client (see qmp.h for the protocol and the
 * threading model).
 *
 * Threads: one reader thread calls ms_qmp_on_readable (or, before it
 * starts its loop, ms_qmp_handshake_direct, which reads for itself); any
 * thread calls ms_qmp_execute / ms_qmp_handshake. q->lock guards the waiter list, the
 * greeting, the dead flag and the counters; q->wlock serialises writes so
 * that two commands never interleave their bytes on the socket. The read
 * buffer belongs to the reader thread alone and needs no lock.
 */
#include "backend/qmp.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "core/log.h"
#include "core/sock.h"

/* Id prefix of commands sent with ms_qmp_send, whose replies are dropped. */
#define NOWAIT_PREFIX "ms-nowait-"

/* One command waiting for its reply; lives on the waiting thread's stack. */
struct waiter {
	char id[32];
	json_t *reply; /* the whole reply object, once it arrived */
	struct waiter *next;
};

struct ms_qmp {
	int fd;
	ms_qmp_event_cb cb;
	void *ud;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled on a reply, the greeting, or death */
	struct waiter *waiters;
	json_t *greeting; /* the "QMP" object, once seen */
	bool dead;
	unsigned long next_id;
	unsigned long dropped;
	char last_class[64];

	pthread_mutex_t wlock;

	/* Reader thread only. */
	char *buf;
	size_t len;
	size_t cap;
	bool discarding; /* inside an oversized line: skip to its newline */
};

struct ms_qmp *ms_qmp_new(int fd, ms_qmp_event_cb cb, void *ud)
{
	struct ms_qmp *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;
	int fl;

	if (!q) {
		close(fd);
		return NULL;
	}
	q->fd = fd;
	q->cb = cb;
	q->ud = ud;
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->wlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* The reader drains until EAGAIN; writers poll for room. */
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return q;
}

int ms_qmp_connect_unix(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int ms_qmp_fd(struct ms_qmp *q)
{
	return q->fd;
}

static void deadline_after(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void mark_dead(struct ms_qmp *q)
{
	pthread_mutex_lock(&q->lock);
	q->dead = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void ms_qmp_shutdown(struct ms_qmp *q)
{
	mark_dead(q);
}

/* A reply: hand it to the command waiting for its id. False when nobody waits. */
static bool deliver_reply(struct ms_qmp *q, json_t *msg)
{
	const char *id = json_string_value(json_object_get(msg, "id"));
	struct waiter *w;
	bool found = false;

	if (!id)
		return false;
	pthread_mutex_lock(&q->lock);
	for (w = q->waiters; w; w = w->next) {
		if (!w->reply && strcmp(w->id, id) == 0) {
			w->reply = json_incref(msg);
			found = true;
			pthread_cond_broadcast(&q->cond);
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return found;
}

static void count_dropped(struct ms_qmp *q, const char *why, const char *line, size_t len)
{
	pthread_mutex_lock(&q->lock);
	q->dropped++;
	pthread_mutex_unlock(&q->lock);
	ms_debug("qmp: dropped line (%s): %.*s", why, (int)(len > 120 ? 120 : len), line);
}

static void handle_line(struct ms_qmp *q, const char *line, size_t len)
{
	json_t *msg;
	json_t *ev;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return;
	msg = json_loadb(line, len, 0, NULL);
	if (!msg || !json_is_object(msg)) {
		count_dropped(q, "not a json object", line, len);
		json_decref(msg);
		return;
	}
	ev = json_object_get(msg, "event");
	if (json_is_string(ev)) {
		json_t *data = json_object_get(msg, "data");

		if (q->cb)
			q->cb(q->ud, json_string_value(ev), data);
	} else if (json_object_get(msg, "return") ||
	           json_is_object(json_object_get(msg, "error"))) {
		const char *id = json_string_value(json_object_get(msg, "id"));
		/* Replies to ms_qmp_send are expected and unwanted. */
		bool nowait = id && strncmp(id, NOWAIT_PREFIX, strlen(NOWAIT_PREFIX)) == 0;

		if (!nowait && !deliver_reply(q, msg))
			count_dropped(q, "reply nobody waits for", line, len);
	} else if (json_is_object(json_object_get(msg, "QMP"))) {
		pthread_mutex_lock(&q->lock);
		if (!q->greeting) {
			q->greeting = json_incref(json_object_get(msg, "QMP"));
			pthread_cond_broadcast(&q->cond);
		}
		pthread_mutex_unlock(&q->lock);
	} else {
		count_dropped(q, "unknown message", line, len);
	}
	json_decref(msg);
}

/* Split the buffer into lines and dispatch each complete one. */
static void drain_lines(struct ms_qmp *q)
{
	size_t start = 0;
	char *nl;

	while (start < q->len && (nl = memchr(q->buf + start, '\n', q->len - start))) {
		size_t end = (size_t)(nl - q->buf);

		if (q->discarding)
			q->discarding = false;
		else
			handle_line(q, q->buf + start, end - start);
		start = end + 1;
	}
	memmove(q->buf, q->buf + start, q->len - start);
	q->len -= start;
	if (q->len > MS_QMP_MAX_LINE) {
		/* A line this long is not QEMU talking; skip it to its end. */
		count_dropped(q, "line too long", q->buf, 0);
		q->len = 0;
		q->discarding = true;
	} else if (q->discarding) {
		q->len = 0;
	}
}

int ms_qmp_on_readable(struct ms_qmp *q)
{
	for (;;) {
		ssize_t n;

		if (q->cap - q->len < 65536) {
			size_t ncap = q->cap ? q->cap * 2 : 131072;
			char *nb;

			if (ncap > MS_QMP_MAX_LINE + 131072)
				ncap = MS_QMP_MAX_LINE + 131072;
			if (ncap <= q->cap) {
				/* Buffer at its limit: drain_lines will discard. */
				drain_lines(q);
				continue;
			}
			nb = realloc(q->buf, ncap);
			if (!nb) {
				mark_dead(q);
				return -EPIPE;
			}
			q->buf = nb;
			q->cap = ncap;
		}
		n = recv(q->fd, q->buf + q->len, q->cap - q->len, 0);
		if (n > 0) {
			q->len += (size_t)n;
			drain_lines(q);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		/* EOF or a hard error: QEMU closed the monitor or died. */
		mark_dead(q);
		return -EPIPE;
	}
}

static int send_all(struct ms_qmp *q, const char *data, size_t len, int timeout_ms)
{
	int rc;

	pthread_mutex_lock(&q->wlock);
	rc = ms_send_all(q->fd, data, len, timeout_ms);
	pthread_mutex_unlock(&q->wlock);
	/* A monitor that stays full is as good as gone. */
	return rc == 0 ? 0 : -EPIPE;
}

int ms_qmp_handshake(struct ms_qmp *q, int timeout_ms, json_t **greeting, struct ms_err *e)
{
	struct timespec dl;
	int rc = 0;

	deadline_after(&dl, timeout_ms);
	pthread_mutex_lock(&q->lock);
	while (!q->greeting && !q->dead && rc == 0)
		rc = pthread_cond_timedwait(&q->cond, &q->lock, &dl);
	if (!q->greeting) {
		bool dead = q->dead;

		pthread_mutex_unlock(&q->lock);
		if (dead)
			return ms_fail(e, 502, "emulator_gone", "qmp closed before its greeting");
		return ms_fail(e, 502, "emulator_timeout", "no qmp greeting within %d ms",
		               timeout_ms);
	}
	if (greeting)
		*greeting = json_incref(q->greeting);
	pthread_mutex_unlock(&q->lock);
	rc = ms_qmp_execute(q, "qmp_capabilities", NULL, timeout_ms, NULL, e);
	if (rc && greeting) {
		json_decref(*greeting);
		*greeting = NULL;
	}
	return rc;
}

static void unlink_waiter(struct ms_qmp *q, struct waiter *w)
{
	struct waiter **pp;

	for (pp = &q->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			return;
		}
	}
}

static int reply_result(struct ms_qmp *q, const char *cmd, json_t *reply, json_t **ret,
                        struct ms_err *e)
{
	json_t *err = json_object_get(reply, "error");

	if (json_is_object(err)) {
		const char *cls = json_string_value(json_object_get(err, "class"));
		const char *desc = json_string_value(json_object_get(err, "desc"));

		pthread_mutex_lock(&q->lock);
		snprintf(q->last_class, sizeof(q->last_class), "%s", cls ? cls : "");
		pthread_mutex_unlock(&q->lock);
		return ms_fail(e, 502, "emulator_failed", "%s: %s", cmd,
		               desc ? desc : "qemu reported an error without a description");
	}
	if (ret)
		*ret = json_incref(json_object_get(reply, "return"));
	return 0;
}

/*
 * Register w and write the command. args (may be NULL) is stolen. On
 * failure w is not registered and *e says why.
 */
static int submit(struct ms_qmp *q, const char *cmd, json_t *args, struct waiter *w, int timeout_ms,
                  struct ms_err *e)
{
	json_t *msg;
	char *text;
	int rc;

	memset(w, 0, sizeof(*w));
	msg = json_object();
	json_object_set_new(msg, "execute", json_string(cmd));
	if (args)
		json_object_set_new(msg, "arguments", args);

	pthread_mutex_lock(&q->lock);
	if (q->dead) {
		pthread_mutex_unlock(&q->lock);
		json_decref(msg);
		return ms_fail(e, 502, "emulator_gone", "%s: qemu monitor connection is closed",
		               cmd);
	}
	snprintf(w->id, sizeof(w->id), "ms-%lu", ++q->next_id);
	w->next = q->waiters;
	q->waiters = w;
	pthread_mutex_unlock(&q->lock);

	json_object_set_new(msg, "id", json_string(w->id));
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!text) {
		rc = ms_fail(e, 500, "internal", "%s: cannot encode command", cmd);
	} else {
		/* QEMU parses a stream of JSON values; the newline just keeps logs readable. */
		size_t n = strlen(text);

		text[n] = '\n';
		rc = send_all(q, text, n + 1, timeout_ms);
		free(text);
		if (rc) {
			mark_dead(q);
			rc = ms_fail(e, 502, "emulator_gone",
			             "%s: cannot write to the qemu monitor", cmd);
		}
	}
	if (rc) {
		pthread_mutex_lock(&q->lock);
		unlink_waiter(q, w);
		pthread_mutex_unlock(&q->lock);
	}
	return rc;
}

/* The outcome of a submitted command once its wait ended; unregisters w. */
static int conclude(struct ms_qmp *q, const char *cmd, struct waiter *w, int timeout_ms,
                    json_t **ret, struct ms_err *e)
{
	int rc;
	bool dead;

	pthread_mutex_lock(&q->lock);
	unlink_waiter(q, w);
	dead = q->dead;
	pthread_mutex_unlock(&q->lock);
	if (w->reply)
		rc = reply_result(q, cmd, w->reply, ret, e);
	else if (dead)
		rc = ms_fail(e, 502, "emulator_gone", "%s: qemu closed its monitor before replying",
		             cmd);
	else
		rc = ms_fail(e, 502, "emulator_timeout", "%s: no reply from qemu within %d ms", cmd,
		             timeout_ms);
	json_decref(w->reply);
	w->reply = NULL;
	return rc;
}

int ms_qmp_execute(struct ms_qmp *q, const char *cmd, json_t *args, int timeout_ms, json_t **ret,
                   struct ms_err *e)
{
	struct waiter w;
	struct timespec dl;
	int rc;

	if (ret)
		*ret = NULL;
	rc = submit(q, cmd, args, &w, timeout_ms, e);
	if (rc)
		return rc;
	deadline_after(&dl, timeout_ms);
	pthread_mutex_lock(&q->lock);
	while (!w.reply && !q->dead) {
		if (pthread_cond_timedwait(&q->cond, &q->lock, &dl) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&q->lock);
	return conclude(q, cmd, &w, timeout_ms, ret, e);
}

/*
 * Read the socket in this thread until done(q, w) holds, the peer closes,
 * stop_fd becomes readable (-ESRCH) or the deadline passes (-ETIMEDOUT).
 */
static int pump_until(struct ms_qmp *q, int stop_fd, int64_t deadline_ms,
                      bool (*done)(struct ms_qmp *, struct waiter *), struct waiter *w)
{
	for (;;) {
		struct pollfd pf[2] = {{.fd = q->fd, .events = POLLIN},
		                       {.fd = stop_fd, .events = POLLIN}};
		struct timespec now;
		int64_t left;
		bool ok, dead;
		int n;

		pthread_mutex_lock(&q->lock);
		ok = done(q, w);
		dead = q->dead;
		pthread_mutex_unlock(&q->lock);
		if (ok)
			return 0;
		if (dead)
			return -EPIPE;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = deadline_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(pf, stop_fd >= 0 ? 2 : 1, (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		if (stop_fd >= 0 && pf[1].revents)
			return -ESRCH;
		if (pf[0].revents)
			ms_qmp_on_readable(q);
	}
}

static bool have_greeting(struct ms_qmp *q, struct waiter *w)
{
	(void)w;
	return q->greeting != NULL;
}

static bool have_reply(struct ms_qmp *q, struct waiter *w)
{
	(void)q;
	return w->reply != NULL;
}

int ms_qmp_handshake_direct(struct ms_qmp *q, int stop_fd, int timeout_ms, struct ms_err *e)
{
	struct timespec now;
	struct waiter w;
	int64_t deadline;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &now);
	deadline = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + timeout_ms;
	rc = pump_until(q, stop_fd, deadline, have_greeting, NULL);
	if (rc == -ESRCH)
		return ms_fail(e, 502, "emulator_gone", "qemu ended before its qmp greeting");
	if (rc == -ETIMEDOUT)
		return ms_fail(e, 502, "emulator_timeout", "no qmp greeting within %d ms",
		               timeout_ms);
	if (rc)
		return ms_fail(e, 502, "emulator_gone", "qmp closed before its greeting");
	rc = submit(q, "qmp_capabilities", NULL, &w, timeout_ms, e);
	if (rc)
		return rc;
	rc = pump_until(q, stop_fd, deadline, have_reply, &w);
	if (rc == -ESRCH) {
		pthread_mutex_lock(&q->lock);
		unlink_waiter(q, &w);
		pthread_mutex_unlock(&q->lock);
		json_decref(w.reply);
		return ms_fail(e, 502, "emulator_gone", "qemu ended during the qmp handshake");
	}
	return conclude(q, "qmp_capabilities", &w, timeout_ms, NULL, e);
}

int ms_qmp_send(struct ms_qmp *q, const char *cmd)
{
	char text[160];
	unsigned long n;
	int len;

	pthread_mutex_lock(&q->lock);
	if (q->dead) {
		pthread_mutex_unlock(&q->lock);
		return -EPIPE;
	}
	n = ++q->next_id;
	pthread_mutex_unlock(&q->lock);
	len = snprintf(text, sizeof(text), "{\"execute\":\"%s\",\"id\":\"" NOWAIT_PREFIX "%lu\"}\n",
	               cmd, n);
	if (len <= 0 || (size_t)len >= sizeof(text) || strpbrk(cmd, "\"\\\n"))
		return -EINVAL;
	/* Never block the caller (possibly the reader thread) for long. */
	return send_all(q, text, (size_t)len, 100) == 0 ? 0 : -EPIPE;
}

void ms_qmp_last_error_class(struct ms_qmp *q, char *buf, size_t cap)
{
	pthread_mutex_lock(&q->lock);
	snprintf(buf, cap, "%s", q->last_class);
	pthread_mutex_unlock(&q->lock);
}

unsigned long ms_qmp_dropped(struct ms_qmp *q)
{
	unsigned long n;

	pthread_mutex_lock(&q->lock);
	n = q->dropped;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void ms_qmp_free(struct ms_qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	json_decref(q->greeting);
	free(q->buf);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	pthread_mutex_destroy(&q->wlock);
	free(q);
}
