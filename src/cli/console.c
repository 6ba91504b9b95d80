/*
 * console: `mctl console ID` (an interactive UART console) and `mctl run`
 * (upload, create, load, power on, watch the console for expected or
 * failure text, delete).
 *
 * The console puts a terminal in raw mode so every key (Ctrl-C included)
 * goes to the guest; Ctrl-] quits. Without a terminal, standard input is
 * sent as it comes and, at its end, output is still shown until the guest
 * has been quiet for --wait seconds.
 *
 * Threads: single-threaded; SIGINT/SIGTERM only set a flag that the loops
 * check, so `run` always deletes its session.
 */
#include "cli/mctl.h"
#include "core/text.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CTRL_RIGHT_BRACKET 0x1d
#define WS_CONNECT_TIMEOUT_MS 10000
/* How often `run` asks for the session's state, to notice a machine that stopped or failed. */
#define STATE_POLL_MS 1000

static volatile sig_atomic_t interrupted;
static struct termios saved_tio;
static bool tio_saved;

static void on_signal(int sig)
{
	interrupted = sig;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void restore_tty(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
		tio_saved = false;
	}
}

static void raw_tty(void)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved_tio) != 0)
		return;
	t = saved_tio;
	cfmakeraw(&t);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0) {
		tio_saved = true;
		atexit(restore_tty);
	}
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			/* A non-blocking stdout that is full: wait for room. */
			if (errno == EAGAIN) {
				struct pollfd pf = {.fd = fd, .events = POLLOUT};

				poll(&pf, 1, 1000);
				continue;
			}
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- console ---- */

static const struct mctl_optdef console_opts[] = {
    MCTL_GLOBAL_OPTS,
    {"wait", 'w', true, MCTL_OPT_FIRST},
    {"from-end", 0, false, MCTL_OPT_FIRST + 1},
    {NULL, 0, false, 0},
};

int mctl_cmd_console(int argc, char **argv)
{
	struct mctl_args a;
	struct mctl_client c;
	struct mctl_ws ws;
	char err[256];
	char *path = NULL;
	char *full = NULL;
	bool tty;
	bool stdin_open = true;
	long long wait_ms = 1000;
	long long quiet_since = 0;
	int rc;

	if (mctl_parse_args(argc, argv, console_opts, &a, err, sizeof(err)) != 0) {
		mctl_err("console: %s", err);
		return MCTL_USAGE;
	}
	if (a.npos != 1 || !mctl_valid_id(a.pos[0])) {
		mctl_err("usage: mctl console ID [--wait S] [--from-end]");
		return MCTL_USAGE;
	}
	if (a.set[MCTL_OPT_FIRST]) {
		wait_ms = mctl_parse_seconds(a.val[MCTL_OPT_FIRST]);
		if (wait_ms < 0) {
			mctl_err("console: --wait needs a positive number of seconds");
			return MCTL_USAGE;
		}
	}
	rc = mctl_connect(&a, &c);
	if (rc != 0)
		return rc;
	path = mctl_session_path(a.pos[0], "stream/console");
	if (path == NULL ||
	    asprintf(&full, "%s%s", path, a.set[MCTL_OPT_FIRST + 1] ? "?from=end" : "") < 0) {
		full = NULL;
		rc = MCTL_INFRA;
		goto out;
	}
	rc = mctl_ws_connect(&ws, c.base, full, c.auth_header, WS_CONNECT_TIMEOUT_MS);
	if (rc != 0)
		goto out;

	catch_signals();
	tty = isatty(STDIN_FILENO);
	if (tty) {
		fprintf(stderr, "mctl: connected to the console of %s; Ctrl-] quits\r\n", a.pos[0]);
		raw_tty();
	}
	rc = MCTL_OK;
	while (!interrupted) {
		struct pollfd pf[2] = {
		    {.fd = ws.fd, .events = POLLIN},
		    {.fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN},
		};
		int timeout = -1;
		int n;

		if (!stdin_open) {
			long long left = quiet_since + wait_ms - now_ms();

			if (left <= 0)
				break;
			timeout = (int)left;
		}
		n = poll(pf, 2, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t in[4096];
			ssize_t k = read(STDIN_FILENO, in, sizeof(in));

			if (k > 0 && tty && memchr(in, CTRL_RIGHT_BRACKET, (size_t)k) != NULL) {
				k = (uint8_t *)memchr(in, CTRL_RIGHT_BRACKET, (size_t)k) - in;
				if (k > 0)
					mctl_ws_send(&ws, MS_WS_BINARY, in, (size_t)k);
				break;
			}
			if (k > 0) {
				if (mctl_ws_send(&ws, MS_WS_BINARY, in, (size_t)k) != 0) {
					mctl_err("console: cannot send to the server");
					rc = MCTL_INFRA;
					break;
				}
			} else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
				stdin_open = false;
				quiet_since = now_ms();
			}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			struct ms_ws_message m;
			int got;
			bool ended = mctl_ws_read(&ws) != 0;

			while ((got = mctl_ws_next(&ws, &m)) == 1) {
				if (write_all(STDOUT_FILENO, m.data, m.len) != 0) {
					ended = true;
					break;
				}
				quiet_since = now_ms();
			}
			if (got < 0 || ended) {
				if (tty)
					restore_tty();
				if (!ws.closed)
					mctl_err("console: the connection ended");
				else
					mctl_err("console: the server closed the console");
				break;
			}
		}
	}
	restore_tty();
	if (tty)
		fputs("\n", stderr);
	mctl_ws_close(&ws);
	if (interrupted)
		rc = MCTL_INTERRUPTED;
out:
	free(path);
	free(full);
	mctl_client_free(&c);
	return rc;
}

/* ---- run ---- */

enum {
	RUN_BOARD = MCTL_OPT_FIRST,
	RUN_BACKEND,
	RUN_EXPECT,
	RUN_FAIL,
	RUN_TIMEOUT,
	RUN_INPUT,
	RUN_INPUT_AFTER,
	RUN_CPU,
	RUN_MEMORY,
	RUN_ADDR,
	RUN_KEEP,
	RUN_QUIET,
};

static const struct mctl_optdef run_opts[] = {
    MCTL_GLOBAL_OPTS,
    {"board", 'b', true, RUN_BOARD},
    {"backend", 0, true, RUN_BACKEND},
    {"expect", 'e', true, RUN_EXPECT},
    {"fail-text", 'f', true, RUN_FAIL},
    {"timeout", 0, true, RUN_TIMEOUT},
    {"input-text", 'i', true, RUN_INPUT},
    {"input-after", 0, true, RUN_INPUT_AFTER},
    {"cpu", 0, true, RUN_CPU},
    {"memory", 0, true, RUN_MEMORY},
    {"addr", 0, true, RUN_ADDR},
    {"keep", 0, false, RUN_KEEP},
    {"quiet", 'q', false, RUN_QUIET},
    {NULL, 0, false, 0},
};

struct run {
	struct mctl_client c;
	char session[128];
	bool have_session;
	uint8_t *expect, *fail, *input, *input_after;
	long expect_len, fail_len, input_len, input_after_len;
	long long timeout_ms;
	bool quiet;
};

/* Decode one escaped option; NULL option leaves *out NULL. */
static int run_unescape(const char *opt, const char *text, uint8_t **out, long *len)
{
	char err[160];

	*out = NULL;
	*len = 0;
	if (text == NULL)
		return 0;
	*out = malloc(strlen(text) + 1);
	if (*out == NULL)
		return MCTL_INFRA;
	*len = ms_unescape(text, *out, err, sizeof(err));
	if (*len < 0) {
		mctl_err("run: --%s: %s", opt, err);
		return MCTL_USAGE;
	}
	if (*len == 0 && strcmp(opt, "input-text") != 0) {
		mctl_err("run: --%s must not be empty", opt);
		return MCTL_USAGE;
	}
	return 0;
}

/* GET the session; its state in st, its error reason (if any) in reason. */
static int session_state(struct run *r, char *st, size_t cap, char *reason, size_t rcap)
{
	struct mctl_reply rep;
	char *path = mctl_session_path(r->session, NULL);
	int rc;
	const char *s;

	if (path == NULL)
		return MCTL_INFRA;
	rc = mctl_call(&r->c, "GET", path, NULL, NULL, true, &rep);
	free(path);
	if (rc != 0)
		return rc;
	s = json_string_value(json_object_get(rep.json, "state"));
	snprintf(st, cap, "%s", s != NULL ? s : "");
	s = json_string_value(json_object_get(rep.json, "reason"));
	snprintf(reason, rcap, "%s", s != NULL ? s : "");
	mctl_reply_free(&rep);
	if (st[0] == '\0') {
		mctl_err("run: the session reply has no state");
		return MCTL_INFRA;
	}
	return 0;
}

/* Upload, create, load: fills r->session. */
static int run_prepare(struct run *r, const struct mctl_args *a, const char *file)
{
	struct mctl_reply rep;
	const char *prog_id;
	char program[128];
	json_t *body;
	json_t *bc;
	char *path;
	int rc;

	rc = mctl_call(&r->c, "POST", "/api/v1/programs", NULL, file, true, &rep);
	if (rc != 0)
		return rc;
	prog_id = json_string_value(json_object_get(rep.json, "id"));
	if (prog_id == NULL || !mctl_valid_id(prog_id)) {
		mctl_err("run: the upload reply has no usable program id");
		mctl_reply_free(&rep);
		return MCTL_INFRA;
	}
	snprintf(program, sizeof(program), "%s", prog_id);
	mctl_reply_free(&rep);

	bc = json_pack("{s:s}", "board", a->val[RUN_BOARD]);
	if (a->set[RUN_CPU])
		json_object_set_new(bc, "cpu", json_string(a->val[RUN_CPU]));
	if (a->set[RUN_MEMORY])
		json_object_set_new(bc, "memory", json_string(a->val[RUN_MEMORY]));
	body = json_pack("{s:s,s:o}", "backend", a->set[RUN_BACKEND] ? a->val[RUN_BACKEND] : "qemu",
	                 "board_config", bc);
	rc = mctl_call(&r->c, "POST", "/api/v1/sessions", body, NULL, true, &rep);
	json_decref(body);
	if (rc != 0)
		return rc;
	if (!json_is_string(json_object_get(rep.json, "id")) ||
	    !mctl_valid_id(json_string_value(json_object_get(rep.json, "id")))) {
		mctl_err("run: the create reply has no usable session id");
		mctl_reply_free(&rep);
		return MCTL_INFRA;
	}
	snprintf(r->session, sizeof(r->session), "%s",
	         json_string_value(json_object_get(rep.json, "id")));
	r->have_session = true;
	mctl_reply_free(&rep);
	if (!r->quiet)
		fprintf(stderr, "mctl: session %s created\n", r->session);

	body = json_pack("{s:s}", "program_id", program);
	if (a->set[RUN_ADDR]) {
		uint64_t addr;

		if (!mctl_parse_u64(a->val[RUN_ADDR], &addr)) {
			json_decref(body);
			mctl_err("run: --addr must be a number such as 0x08000000");
			return MCTL_USAGE;
		}
		json_object_set_new(body, "load_address", json_integer((json_int_t)addr));
	}
	path = mctl_session_path(r->session, "program");
	rc = path != NULL ? mctl_call(&r->c, "POST", path, body, NULL, false, &rep) : MCTL_INFRA;
	free(path);
	json_decref(body);
	if (rc != 0)
		return rc;
	mctl_reply_free(&rep);
	return 0;
}

/* Stream the console until a verdict. */
static int run_watch(struct run *r, struct mctl_ws *ws)
{
	struct mctl_matcher verdict, trigger;
	long long start = now_ms();
	long long deadline = start + r->timeout_ms;
	long long next_state = start + STATE_POLL_MS;
	bool input_sent = r->input == NULL;
	int rc = MCTL_TIMEOUT;

	if (mctl_matcher_init(&verdict, r->expect, (size_t)r->expect_len, r->fail,
	                      (size_t)r->fail_len) != 0 ||
	    mctl_matcher_init(&trigger, r->input_after, (size_t)r->input_after_len, NULL, 0) != 0)
		return MCTL_INFRA;
	if (!input_sent && r->input_after == NULL) {
		if (mctl_ws_send(ws, MS_WS_BINARY, r->input, (size_t)r->input_len) != 0) {
			mctl_err("run: cannot send the input text");
			rc = MCTL_INFRA;
			goto out;
		}
		input_sent = true;
	}
	for (;;) {
		struct pollfd pf = {.fd = ws->fd, .events = POLLIN};
		long long now = now_ms();
		long long wake = deadline < next_state ? deadline : next_state;
		int n;

		if (interrupted) {
			rc = MCTL_INTERRUPTED;
			break;
		}
		if (now >= deadline) {
			mctl_err("run: timed out after %.1f s without %s", r->timeout_ms / 1000.0,
			         r->expect != NULL ? "the expected text" : "the machine stopping");
			rc = MCTL_TIMEOUT;
			break;
		}
		if (now >= next_state) {
			char st[32], reason[512];
			int src = session_state(r, st, sizeof(st), reason, sizeof(reason));

			if (src != 0) {
				rc = src == MCTL_FAIL ? MCTL_INFRA : src;
				break;
			}
			if (strcmp(st, "error") == 0) {
				/*
				 * After a successful power-on this is almost always the
				 * firmware's doing (a lockup, a fatal fault), so it is the
				 * run's verdict, not an infrastructure failure.
				 */
				mctl_err("run: the machine failed: %s",
				         reason[0] ? reason : "(no reason given)");
				rc = MCTL_FAIL;
				break;
			}
			if (strcmp(st, "stopped") == 0) {
				if (r->expect != NULL) {
					mctl_err("run: the machine stopped before the expected "
					         "text appeared");
					rc = MCTL_FAIL;
				} else {
					rc = MCTL_OK;
				}
				break;
			}
			next_state = now + STATE_POLL_MS;
			continue;
		}
		n = poll(&pf, 1, (int)(wake - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = MCTL_INFRA;
			break;
		}
		if (n > 0) {
			struct ms_ws_message m;
			int got;
			bool ended = mctl_ws_read(ws) != 0;
			int found = -1;

			while ((got = mctl_ws_next(ws, &m)) == 1) {
				if (!r->quiet)
					write_all(STDOUT_FILENO, m.data, m.len);
				if (!input_sent &&
				    mctl_matcher_feed(&trigger, m.data, m.len) == 0) {
					if (mctl_ws_send(ws, MS_WS_BINARY, r->input,
					                 (size_t)r->input_len) != 0) {
						mctl_err("run: cannot send the input text");
						rc = MCTL_INFRA;
						goto out;
					}
					input_sent = true;
				}
				found = mctl_matcher_feed(&verdict, m.data, m.len);
				if (found >= 0)
					break;
			}
			if (found >= 0) {
				/* Which pattern is which depends on what was given. */
				bool is_expect = r->expect != NULL && found == 0;

				if (!r->quiet)
					fputs("\n", stdout);
				fflush(stdout);
				if (is_expect) {
					fprintf(stderr, "mctl: expected text seen after %.2f s\n",
					        (now_ms() - start) / 1000.0);
					rc = MCTL_OK;
				} else {
					fprintf(stderr, "mctl: failure text seen after %.2f s\n",
					        (now_ms() - start) / 1000.0);
					rc = MCTL_FAIL;
				}
				break;
			}
			if (got < 0 || ended) {
				mctl_err("run: the console connection ended before a verdict");
				rc = MCTL_INFRA;
				break;
			}
		}
	}
out:
	mctl_matcher_free(&verdict);
	mctl_matcher_free(&trigger);
	return rc;
}

int mctl_cmd_run(int argc, char **argv)
{
	struct mctl_args a;
	struct run r;
	struct mctl_ws ws = {.fd = -1};
	struct stat sb;
	char err[256];
	const char *file;
	char *path;
	int rc;

	memset(&r, 0, sizeof(r));
	if (mctl_parse_args(argc, argv, run_opts, &a, err, sizeof(err)) != 0) {
		mctl_err("run: %s", err);
		return MCTL_USAGE;
	}
	if (a.npos != 1 || !a.set[RUN_BOARD]) {
		mctl_err(
		    "usage: mctl run -b BOARD FIRMWARE [--backend qemu|rehost] [--expect TEXT] "
		    "[--fail-text TEXT] [--timeout S] [--input-text TEXT]");
		return MCTL_USAGE;
	}
	file = a.pos[0];
	if (stat(file, &sb) != 0 || access(file, R_OK) != 0) {
		mctl_err("run: cannot read %s: %s", file, strerror(errno));
		return MCTL_USAGE;
	}
	if (!S_ISREG(sb.st_mode)) {
		mctl_err("run: cannot read %s: not a regular file", file);
		return MCTL_USAGE;
	}
	r.timeout_ms = 60000;
	if (a.set[RUN_TIMEOUT]) {
		r.timeout_ms = mctl_parse_seconds(a.val[RUN_TIMEOUT]);
		if (r.timeout_ms < 0) {
			mctl_err("run: --timeout needs a positive number of seconds");
			return MCTL_USAGE;
		}
	}
	r.quiet = a.set[RUN_QUIET];
	rc = run_unescape("expect", a.val[RUN_EXPECT], &r.expect, &r.expect_len);
	if (rc == 0)
		rc = run_unescape("fail-text", a.val[RUN_FAIL], &r.fail, &r.fail_len);
	if (rc == 0)
		rc = run_unescape("input-text", a.val[RUN_INPUT], &r.input, &r.input_len);
	if (rc == 0)
		rc = run_unescape("input-after", a.val[RUN_INPUT_AFTER], &r.input_after,
		                  &r.input_after_len);
	if (rc == 0 && r.input_after != NULL && r.input == NULL) {
		mctl_err("run: --input-after needs --input-text");
		rc = MCTL_USAGE;
	}
	if (rc != 0)
		goto out_free;
	rc = mctl_connect(&a, &r.c);
	if (rc != 0)
		goto out_free;
	catch_signals();

	rc = run_prepare(&r, &a, file);
	if (rc != 0)
		goto out; /* a refusal (unknown board ...) is 1, as for every command */
	if (interrupted) {
		rc = MCTL_INTERRUPTED;
		goto out;
	}
	path = mctl_session_path(r.session, "stream/console");
	rc = path != NULL
	    ? mctl_ws_connect(&ws, r.c.base, path, r.c.auth_header, WS_CONNECT_TIMEOUT_MS)
	    : MCTL_INFRA;
	free(path);
	if (rc != 0) {
		rc = MCTL_INFRA;
		goto out;
	}
	{
		struct mctl_reply rep;

		path = mctl_session_path(r.session, "poweron");
		rc = path != NULL ? mctl_call(&r.c, "POST", path, NULL, NULL, false, &rep)
		                  : MCTL_INFRA;
		free(path);
		if (rc != 0) {
			/* A refused power-on is the server's or emulator's failure, not the firmware's. */
			rc = MCTL_INFRA;
			goto out;
		}
		mctl_reply_free(&rep);
	}
	rc = run_watch(&r, &ws);
out:
	mctl_ws_close(&ws);
	if (r.have_session && !a.set[RUN_KEEP]) {
		struct mctl_reply rep;
		char *p = mctl_session_path(r.session, NULL);

		if (p != NULL && mctl_call(&r.c, "DELETE", p, NULL, NULL, false, &rep) == 0)
			mctl_reply_free(&rep);
		else
			mctl_err("run: could not delete session %s", r.session);
		free(p);
	} else if (r.have_session) {
		fprintf(stderr, "mctl: session %s kept\n", r.session);
	}
	mctl_client_free(&r.c);
out_free:
	free(r.expect);
	free(r.fail);
	free(r.input);
	free(r.input_after);
	return rc;
}
