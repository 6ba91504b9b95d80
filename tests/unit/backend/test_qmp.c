/*
 * Tests for the QMP client: against a scripted fake peer on a socketpair
 * (events before replies, garbage, split and oversized lines, errors,
 * silence, hang-up) and against a real qemu-system-arm.
 *
 * Threads: each test runs a pump thread that plays the supervisor's part
 * (poll + ms_qmp_on_readable); fake-peer tests also run a peer thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <spawn.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend/qmp.h"
#include "fw_fixture.h"

/* ---- a pump thread that plays the supervisor ----------------------------- */

struct pump {
	struct ms_qmp *q;
	pthread_t thr;
	int stop_fd[2];
	int result; /* what on_readable returned last */
	pthread_mutex_t lock;
	char events[64][32]; /* names in arrival order */
	int n_events;
	int event_before_reply; /* index of the first event seen before a reply woke us */
};

static void pump_event(void *ud, const char *name, json_t *data)
{
	struct pump *p = ud;

	(void)data;
	pthread_mutex_lock(&p->lock);
	if (p->n_events < 64)
		snprintf(p->events[p->n_events++], 32, "%s", name);
	pthread_mutex_unlock(&p->lock);
}

static void *pump_main(void *arg)
{
	struct pump *p = arg;

	for (;;) {
		struct pollfd pf[2] = {{.fd = ms_qmp_fd(p->q), .events = POLLIN},
		                       {.fd = p->stop_fd[0], .events = POLLIN}};

		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[1].revents)
			return NULL;
		if (pf[0].revents && (p->result = ms_qmp_on_readable(p->q)) != 0)
			return NULL;
	}
}

static void pump_start(struct pump *p, int fd)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	assert_int_equal(pipe(p->stop_fd), 0);
	p->q = ms_qmp_new(fd, pump_event, p);
	assert_non_null(p->q);
	assert_int_equal(pthread_create(&p->thr, NULL, pump_main, p), 0);
}

static void pump_stop(struct pump *p)
{
	ssize_t n = write(p->stop_fd[1], "x", 1);

	(void)n;
	pthread_join(p->thr, NULL);
	ms_qmp_free(p->q);
	close(p->stop_fd[0]);
	close(p->stop_fd[1]);
}

static int event_index(struct pump *p, const char *name)
{
	int idx = -1;

	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->n_events; i++) {
		if (strcmp(p->events[i], name) == 0) {
			idx = i;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return idx;
}

/* ---- the fake peer ----------------------------------------------------- */

struct peer {
	int fd;
	pthread_t thr;
	bool send_greeting;
	bool truncated_greeting;
};

static void peer_send(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

static void peer_sendf(int fd, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	peer_send(fd, buf);
}

static void msleep(int ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};

	nanosleep(&ts, NULL);
}

/* Read one line (the client's command); NULL at EOF. */
static json_t *peer_read_cmd(int fd)
{
	char line[65536];
	size_t n = 0;

	while (n < sizeof(line) - 1) {
		char c;
		ssize_t r = recv(fd, &c, 1, 0);

		if (r <= 0)
			return NULL;
		if (c == '\n')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	return json_loads(line, 0, NULL);
}

static void *peer_main(void *arg)
{
	struct peer *pe = arg;
	json_t *cmd;

	if (pe->truncated_greeting) {
		peer_send(pe->fd, "{\"QMP\": {\"version\": {\"qemu\": {\"mi");
		shutdown(pe->fd, SHUT_RDWR);
		return NULL;
	}
	if (pe->send_greeting) {
		/* Noise before the greeting must not matter. */
		peer_send(pe->fd, "garbage that is not json\r\n");
		peer_send(pe->fd,
		          "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, "
		          "\"major\": 7}}, \"capabilities\": [\"oob\"]}}\r\n");
	}
	while ((cmd = peer_read_cmd(pe->fd)) != NULL) {
		const char *ex = json_string_value(json_object_get(cmd, "execute"));
		const char *id = json_string_value(json_object_get(cmd, "id"));
		char *args =
		    json_dumps(json_object_get(cmd, "arguments"), JSON_COMPACT | JSON_ENCODE_ANY);

		if (!ex || !id) {
			peer_send(
			    pe->fd,
			    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no id\"}}\r\n");
		} else if (strcmp(ex, "qmp_capabilities") == 0) {
			peer_sendf(pe->fd, "{\"return\": {}, \"id\": \"%s\"}\r\n", id);
		} else if (strcmp(ex, "echo") == 0) {
			/* The event this command causes arrives before its reply, then noise. */
			peer_send(pe->fd,
			          "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
			          "\"event\": \"STOP\"}\r\n");
			peer_send(pe->fd, "}{ not json\r\n");
			peer_send(pe->fd, "[1, 2, 3]\r\n");
			peer_send(pe->fd,
			          "{\"return\": 42, \"id\": \"nobody-waits-for-this\"}\r\n");
			peer_send(pe->fd, "{\"something\": \"else\"}\r\n");
			peer_send(pe->fd, "\r\n");
			/* The reply split over three writes, cut mid-token. */
			peer_sendf(pe->fd, "{\"ret");
			msleep(20);
			peer_sendf(pe->fd, "urn\": %s, \"i", args ? args : "null");
			msleep(20);
			peer_sendf(pe->fd, "d\": \"%s\"}\r\n{\"event\": \"RESUME\"}\r\n", id);
		} else if (strcmp(ex, "fail") == 0) {
			peer_sendf(pe->fd,
			           "{\"id\": \"%s\", \"error\": {\"class\": \"GenericError\", "
			           "\"desc\": \"it broke \\\"badly\\\"\"}}\r\n",
			           id);
		} else if (strcmp(ex, "errnodesc") == 0) {
			peer_sendf(pe->fd, "{\"id\": \"%s\", \"error\": {\"class\": 7}}\r\n", id);
		} else if (strcmp(ex, "silent") == 0) {
			/* no reply at all */
		} else if (strcmp(ex, "huge") == 0) {
			/* A line larger than the limit, in chunks, then the real reply. */
			size_t chunk = 1 << 20;
			char *junk = malloc(chunk);

			memset(junk, 'x', chunk);
			junk[0] = '{';
			for (unsigned i = 0; i < (MS_QMP_MAX_LINE / chunk) + 2; i++) {
				size_t off = 0;

				while (off < chunk) {
					ssize_t n =
					    send(pe->fd, junk + off, chunk - off, MSG_NOSIGNAL);

					if (n <= 0)
						break;
					off += (size_t)n;
				}
			}
			free(junk);
			peer_sendf(pe->fd, "\r\n{\"return\": \"after\", \"id\": \"%s\"}\r\n", id);
		} else if (strcmp(ex, "bye") == 0) {
			free(args);
			json_decref(cmd);
			shutdown(pe->fd, SHUT_RDWR);
			return NULL;
		} else {
			peer_sendf(pe->fd,
			           "{\"id\": \"%s\", \"error\": {\"class\": \"CommandNotFound\", "
			           "\"desc\": \"The command %s has not been found\"}}\r\n",
			           id, ex);
		}
		free(args);
		json_decref(cmd);
	}
	return NULL;
}

static void peer_start(struct peer *pe, struct pump *p, bool greeting)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(pe, 0, sizeof(*pe));
	pe->fd = sv[1];
	pe->send_greeting = greeting;
	pump_start(p, sv[0]);
	assert_int_equal(pthread_create(&pe->thr, NULL, peer_main, pe), 0);
}

static void peer_stop(struct peer *pe)
{
	shutdown(pe->fd, SHUT_RDWR);
	pthread_join(pe->thr, NULL);
	close(pe->fd);
}

/* ---- fake-peer tests ----------------------------------------------------- */

static void test_handshake_and_demux(void **state)
{
	struct peer pe;
	struct pump p;
	struct ms_err e;
	json_t *greeting = NULL, *ret = NULL;

	(void)state;
	peer_start(&pe, &p, true);
	assert_int_equal(ms_qmp_handshake(p.q, 2000, &greeting, &e), 0);
	assert_int_equal(
	    json_integer_value(json_object_get(
	        json_object_get(json_object_get(greeting, "version"), "qemu"), "major")),
	    7);
	json_decref(greeting);

	assert_int_equal(
	    ms_qmp_execute(p.q, "echo", json_pack("{s:s,s:i}", "a", "b", "n", 5), 2000, &ret, &e),
	    0);
	assert_string_equal(json_string_value(json_object_get(ret, "a")), "b");
	assert_int_equal(json_integer_value(json_object_get(ret, "n")), 5);
	json_decref(ret);
	/* The STOP event came before the reply and reached the callback. */
	assert_int_equal(event_index(&p, "STOP"), 0);
	/* Garbage: "not json", "}{", "[1,2,3]", unknown id, unknown message. */
	assert_true(ms_qmp_dropped(p.q) >= 5);

	/* A fire-and-forget command: its reply is dropped without counting as noise. */
	{
		unsigned long d0 = ms_qmp_dropped(p.q);

		assert_int_equal(ms_qmp_send(p.q, "ping"), 0);
		assert_int_equal(ms_qmp_send(p.q, "bad\"name"), -EINVAL);
		assert_int_equal(ms_qmp_execute(p.q, "echo", NULL, 2000, NULL, &e), 0);
		/* echo's own four bad lines, and nothing for ping's reply. */
		assert_int_equal(ms_qmp_dropped(p.q), d0 + 4);
	}

	/* The client is still in step after the noise. */
	assert_int_equal(ms_qmp_execute(p.q, "echo", json_string("again"), 2000, &ret, &e), 0);
	assert_string_equal(json_string_value(ret), "again");
	json_decref(ret);

	peer_stop(&pe);
	pump_stop(&p);
}

static void test_errors_and_timeouts(void **state)
{
	struct peer pe;
	struct pump p;
	struct ms_err e;
	json_t *ret = (json_t *)1;
	char cls[64];

	(void)state;
	peer_start(&pe, &p, true);
	assert_int_equal(ms_qmp_handshake(p.q, 2000, NULL, &e), 0);

	assert_int_not_equal(ms_qmp_execute(p.q, "fail", NULL, 2000, &ret, &e), 0);
	assert_null(ret);
	assert_int_equal(e.status, 502);
	assert_string_equal(e.code, "emulator_failed");
	assert_non_null(strstr(e.message, "it broke \"badly\""));
	ms_qmp_last_error_class(p.q, cls, sizeof(cls));
	assert_string_equal(cls, "GenericError");

	/* An error object with no usable desc still fails, with a message. */
	assert_int_not_equal(ms_qmp_execute(p.q, "errnodesc", NULL, 2000, NULL, &e), 0);
	assert_int_equal(e.status, 502);
	assert_non_null(strstr(e.message, "without a description"));

	assert_int_not_equal(ms_qmp_execute(p.q, "no-such-thing", NULL, 2000, NULL, &e), 0);
	assert_non_null(strstr(e.message, "has not been found"));

	assert_int_not_equal(ms_qmp_execute(p.q, "silent", NULL, 150, NULL, &e), 0);
	assert_string_equal(e.code, "emulator_timeout");

	/* The oversized line is dropped whole; the reply after it still arrives. */
	assert_int_equal(ms_qmp_execute(p.q, "huge", NULL, 20000, &ret, &e), 0);
	assert_string_equal(json_string_value(ret), "after");
	json_decref(ret);

	/* Hang-up: the command fails with emulator_gone, and so does the next one. */
	assert_int_not_equal(ms_qmp_execute(p.q, "bye", NULL, 2000, NULL, &e), 0);
	assert_string_equal(e.code, "emulator_gone");
	assert_int_not_equal(ms_qmp_execute(p.q, "echo", NULL, 2000, NULL, &e), 0);
	assert_string_equal(e.code, "emulator_gone");
	pthread_join(p.thr, NULL);
	assert_int_equal(p.result, -EPIPE);
	/* pump_stop would join again: tear down by hand. */
	ms_qmp_free(p.q);
	close(p.stop_fd[0]);
	close(p.stop_fd[1]);
	peer_stop(&pe);
}

static void test_no_or_truncated_greeting(void **state)
{
	struct peer pe;
	struct pump p;
	struct ms_err e;

	(void)state;
	/* Silent peer: the handshake times out. */
	peer_start(&pe, &p, false);
	assert_int_not_equal(ms_qmp_handshake(p.q, 100, NULL, &e), 0);
	assert_string_equal(e.code, "emulator_timeout");
	peer_stop(&pe);
	pump_stop(&p);

	/* A greeting cut in the middle and a hang-up: emulator_gone, no crash. */
	{
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		memset(&pe, 0, sizeof(pe));
		pe.fd = sv[1];
		pe.truncated_greeting = true;
		pump_start(&p, sv[0]);
		assert_int_equal(pthread_create(&pe.thr, NULL, peer_main, &pe), 0);
		assert_int_not_equal(ms_qmp_handshake(p.q, 2000, NULL, &e), 0);
		assert_string_equal(e.code, "emulator_gone");
		pthread_join(pe.thr, NULL);
		close(pe.fd);
		pthread_join(p.thr, NULL);
		ms_qmp_free(p.q);
		close(p.stop_fd[0]);
		close(p.stop_fd[1]);
	}
}

/* The handshake done by the future reader thread itself, before its loop. */
static void test_handshake_direct(void **state)
{
	struct peer pe;
	struct ms_err e;
	struct ms_qmp *q;
	int sv[2], stop[2];

	(void)state;
	/* Noise, greeting, capabilities: negotiated without any pump thread. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(&pe, 0, sizeof(pe));
	pe.fd = sv[1];
	pe.send_greeting = true;
	assert_int_equal(pthread_create(&pe.thr, NULL, peer_main, &pe), 0);
	q = ms_qmp_new(sv[0], NULL, NULL);
	assert_non_null(q);
	assert_int_equal(ms_qmp_handshake_direct(q, -1, 2000, &e), 0);
	assert_int_equal(ms_qmp_dropped(q), 1); /* the garbage line, counted */
	peer_stop(&pe);
	ms_qmp_free(q);

	/* A silent peer: a timeout. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	q = ms_qmp_new(sv[0], NULL, NULL);
	assert_int_not_equal(ms_qmp_handshake_direct(q, -1, 100, &e), 0);
	assert_string_equal(e.code, "emulator_timeout");

	/* The same silence, but the stop fd fires (the child died): gone, long before the timeout. */
	assert_int_equal(pipe(stop), 0);
	assert_int_equal(write(stop[1], "x", 1), 1);
	assert_int_not_equal(ms_qmp_handshake_direct(q, stop[0], 60000, &e), 0);
	assert_string_equal(e.code, "emulator_gone");
	close(stop[0]);
	close(stop[1]);
	close(sv[1]);
	ms_qmp_free(q);

	/* A greeting cut in the middle and a hang-up: gone, no crash. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(&pe, 0, sizeof(pe));
	pe.fd = sv[1];
	pe.truncated_greeting = true;
	assert_int_equal(pthread_create(&pe.thr, NULL, peer_main, &pe), 0);
	q = ms_qmp_new(sv[0], NULL, NULL);
	assert_int_not_equal(ms_qmp_handshake_direct(q, -1, 2000, &e), 0);
	assert_string_equal(e.code, "emulator_gone");
	pthread_join(pe.thr, NULL);
	close(pe.fd);
	ms_qmp_free(q);

	/* A greeting, then a hang-up instead of the capabilities reply. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	peer_send(sv[1], "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
	q = ms_qmp_new(sv[0], NULL, NULL);
	shutdown(sv[1], SHUT_WR);
	assert_int_not_equal(ms_qmp_handshake_direct(q, -1, 2000, &e), 0);
	assert_string_equal(e.code, "emulator_gone");
	close(sv[1]);
	ms_qmp_free(q);
}

static void test_connect_errors(void **state)
{
	char longpath[200];

	(void)state;
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(ms_qmp_connect_unix(longpath), -ENAMETOOLONG);
	assert_int_equal(ms_qmp_connect_unix("/nonexistent-dir/qmp.sock"), -ENOENT);
}

/* ---- real QEMU ----------------------------------------------------------- */

static char tmpdir[256];
static pid_t qemu_pid; /* killed in teardown if a failed assertion left it running */

static int setup_tmp(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ms-test-qmp-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return fw_build(tmpdir);
}

static int teardown_tmp(void **state)
{
	char *argv[] = {"rm", "-rf", tmpdir, NULL};

	(void)state;
	if (qemu_pid > 0 && waitpid(qemu_pid, NULL, WNOHANG) == 0) {
		kill(qemu_pid, SIGKILL);
		waitpid(qemu_pid, NULL, 0);
	}
	qemu_pid = 0;
	fw_run(argv);
	return 0;
}

static void test_real_qemu(void **state)
{
	char sock[300], qmpopt[400], elf[300];
	char *argv[] = {"qemu-system-arm", "-M",   "mps2-an385", "-S",   "-display", "none",
	                "-monitor",        "none", "-nic",       "none", "-serial",  "null",
	                "-kernel",         elf,    "-qmp",       qmpopt, NULL};
	struct pump p;
	struct ms_err e;
	json_t *ret = NULL, *greeting = NULL;
	pid_t pid;
	int fd = -1, st;

	(void)state;
	snprintf(sock, sizeof(sock), "%s/qmp.sock", tmpdir);
	snprintf(qmpopt, sizeof(qmpopt), "unix:%s,server=on,wait=off", sock);
	snprintf(elf, sizeof(elf), "%s/fw.elf", tmpdir);
	assert_int_equal(posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ), 0);
	qemu_pid = pid;
	for (int i = 0; i < 5000 && fd < 0; i++) {
		fd = ms_qmp_connect_unix(sock);
		if (fd < 0)
			msleep(1);
	}
	assert_true(fd >= 0);
	pump_start(&p, fd);
	assert_int_equal(ms_qmp_handshake(p.q, 5000, &greeting, &e), 0);
	assert_non_null(json_object_get(greeting, "version"));
	json_decref(greeting);

	assert_int_equal(ms_qmp_execute(p.q, "query-status", NULL, 5000, &ret, &e), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "prelaunch");
	json_decref(ret);

	assert_int_equal(ms_qmp_execute(p.q, "cont", NULL, 5000, NULL, &e), 0);
	assert_int_equal(ms_qmp_execute(p.q, "stop", NULL, 5000, NULL, &e), 0);
	assert_int_equal(ms_qmp_execute(p.q, "query-status", NULL, 5000, &ret, &e), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "paused");
	json_decref(ret);
	/* RESUME and STOP reached the event callback, in that order. */
	assert_true(event_index(&p, "RESUME") >= 0);
	assert_true(event_index(&p, "STOP") > event_index(&p, "RESUME"));

	/* QEMU's own error text comes back. */
	assert_int_not_equal(ms_qmp_execute(p.q, "no-such-command", NULL, 5000, NULL, &e), 0);
	assert_int_equal(e.status, 502);
	assert_non_null(strstr(e.message, "no-such-command"));
	assert_int_not_equal(
	    ms_qmp_execute(p.q, "qom-get",
	                   json_pack("{s:s,s:s}", "path", "/no/such/object", "property", "type"),
	                   5000, NULL, &e),
	    0);
	assert_int_equal(e.status, 502);
	assert_non_null(strstr(e.message, "/no/such/object"));

	assert_int_equal(ms_qmp_execute(p.q, "quit", NULL, 5000, NULL, &e), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	qemu_pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(event_index(&p, "SHUTDOWN") >= 0);
	/* The monitor is gone: commands fail at once rather than hang. */
	pthread_join(p.thr, NULL);
	assert_int_equal(p.result, -EPIPE);
	assert_int_not_equal(ms_qmp_execute(p.q, "query-status", NULL, 5000, NULL, &e), 0);
	assert_string_equal(e.code, "emulator_gone");
	ms_qmp_free(p.q);
	close(p.stop_fd[0]);
	close(p.stop_fd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_and_demux),
	    cmocka_unit_test(test_errors_and_timeouts),
	    cmocka_unit_test(test_no_or_truncated_greeting),
	    cmocka_unit_test(test_handshake_direct),
	    cmocka_unit_test(test_connect_errors),
	    cmocka_unit_test_setup_teardown(test_real_qemu, setup_tmp, teardown_tmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
