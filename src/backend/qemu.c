/*
 * qemu: the QEMU backend. Each session owns at most one qemu-system-*
 * child ("instance"), started paused (-S) with QMP, the first UART and the
 * gdbstub on sockets, plus a hidden qcow2 drive that stores snapshots on
 * boards without a block device (EMULATORS.md §1, §6).
 *
 * What the installed binaries can do, and the check of a board_config
 * against it, live in qemu_caps.c.
 *
 * Threads and locks:
 *  - control functions (create, power_on, ..., destroy) run on API threads
 *    with s->op_lock held (backend.h), so one session never sees two at once;
 *  - each instance has one supervisor thread. For a child we spawned it
 *    first finishes the start (connects QMP, negotiates, connects the UART,
 *    then sets inst->ready), so a control call need not wait for QEMU unless
 *    it has to talk to it (wait_ready). Then it polls the QMP socket, the
 *    UART socket and a pidfd of the child (QEMU's stderr goes to a file in
 *    the run directory, read when it dies). It alone reads
 *    those fds, follows QEMU's events into the session state and reports a
 *    child that died. It never takes s->op_lock;
 *  - inst->lock guards the instance fields marked below, inst->cond signals
 *    exit and job progress;
 *  - qs->lock guards qs->inst for console_write, which runs without op_lock;
 *    console_write takes it only to find the instance and to copy its UART
 *    fd, and writes (and waits for a guest that is not reading) on the copy
 *    under qs->write_lock alone, so control calls, which need qs->lock, are
 *    not held up by console input; the session layer keeps console_write
 *    and destroy apart, so qs outlives every write.
 *  - the qcow2 template is written once in init, before any session
 *    exists, and only read afterwards;
 *  - good_lock guards the table of configurations known to start (a leaf
 *    lock: nothing else is taken under it).
 * Lock order: s->op_lock, then qs->lock, then inst->lock, then s->lock
 * (taken inside ms_session_* calls).
 */
#include "backend/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/qmp.h"
#include "core/log.h"
#include "core/ports.h"
#include "core/program.h"
#include "core/session.h"
#include "core/sock.h"
#include "core/stream.h"

extern char **environ;

#define CMD_TIMEOUT_MS 5000
#define START_TIMEOUT_MS 10000
#define QUIT_TIMEOUT_MS 3000
#define JOB_TIMEOUT_MS 300000
#define ERR_TAIL 4096
#define KICK_MS 20

static char qemu_img[PATH_MAX];
/* An empty qcow2 made once by qemu-img at init; copied into each session. */
static char *qcow2_template;
static size_t qcow2_template_len;

/* ---- per-session state ------------------------------------------------ */

struct qsess;

struct inst {
	struct ms_session *s;
	struct qsess *qs;
	pid_t pid;
	int pidfd;
	bool is_child; /* false after a daemon restart (reattached) */
	int wake_fd; /* eventfd: re-read the fd set */
	pthread_t thr;
	bool thr_started;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	struct ms_qmp *qmp;
	int uart_fd;
	bool exited;
	int wstatus;
	bool status_known;
	bool expect_exit; /* we asked it to go: not an error */
	bool run_start; /* the supervisor connects QMP and the UART before its loop */
	bool starting; /* a caller waits for the start and reports its failure itself */
	bool ready; /* QMP negotiated and the UART connected */
	int64_t start_deadline;
	char start_err[300]; /* why a start failed while QEMU itself had not died */
	int quiet; /* >0: our own operation; don't follow STOP/RESUME */
	bool guest_shutdown;
	bool uart_kick; /* console input not yet taken by QEMU: keep poking */
	int64_t last_kick_ms;
	int kick_every_ms; /* backs off while the guest does not read */
	char job_id[32];
	char job_status[32];
	char errtail[ERR_TAIL];
	size_t errlen;
};

/* The program a session runs: given to QEMU at every (re)start. */
struct qprog {
	bool have;
	char path[PATH_MAX];
	enum ms_image_format fmt;
	char arch[24];
	bool has_addr;
	uint64_t addr;
};

struct qsess {
	pthread_mutex_t lock; /* guards inst for console_write, and gdb_fd */
	pthread_mutex_t write_lock; /* one console write at a time, bytes never interleaved */
	struct inst *inst;
	/*
	 * Our listening socket on s->gdb_port, handed to each QEMU as its
	 * gdbstub's chardev: the port accepts connections from create on, and
	 * across a restart by load, and no other program can take it between
	 * a test bind and QEMU's. -1 when none (or QEMU was reattached).
	 */
	int gdb_fd;

	/* Below: touched only under s->op_lock (control calls). */
	const struct ms__qemu_bin *bin;
	char machine[64];
	char cpu[64];
	char memory[32];
	bool network;
	bool m_profile;
	bool no_restore;
	struct qprog prog;
	bool snap_ready;
};

static uint64_t max_snapshot_bytes;

/* ---- small helpers ---------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/*
 * QEMU option values are comma-separated; a literal comma in a path must be
 * doubled. dst receives key=value with the value escaped.
 */
static int opt_path(char *dst, size_t cap, const char *prefix, const char *path)
{
	size_t n = strlen(prefix);

	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(dst, prefix, n);
	for (const char *p = path; *p; p++) {
		if (n + 3 >= cap)
			return -ENAMETOOLONG;
		dst[n++] = *p;
		if (*p == ',')
			dst[n++] = ',';
	}
	dst[n] = '\0';
	return 0;
}

static void describe_status(int wstatus, bool known, char *buf, size_t cap)
{
	if (!known)
		snprintf(
		    buf, cap,
		    "qemu exited (status unknown: not our child, e.g. after a daemon restart)");
	else if (WIFEXITED(wstatus))
		snprintf(buf, cap, "qemu exited with status %d", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		snprintf(buf, cap, "qemu killed by signal %d (%s)", WTERMSIG(wstatus),
		         sigdescr_np(WTERMSIG(wstatus)) ? sigdescr_np(WTERMSIG(wstatus)) : "?");
	else
		snprintf(buf, cap, "qemu ended (wait status 0x%x)", wstatus);
}

/* ---- capabilities ----------------------------------------------------- */

/*
 * Make the empty qcow2 template with qemu-img (argv, no shell) in a
 * private temporary directory and keep its bytes: copying them into a new
 * session is far cheaper than running qemu-img per session.
 */
static int make_qcow2_template(struct ms_err *e)
{
	char dir[] = "/tmp/ms-qcow2-XXXXXX";
	char path[64];
	char *argv[] = {qemu_img, "create", "-q", "-f", "qcow2", path, "64M", NULL};
	char *out = NULL;
	int st = 0, rc = 0;
	FILE *f;

	if (!mkdtemp(dir))
		return ms_fail(e, 500, "host_failure", "mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/t.qcow2", dir);
	if (ms__qemu_run_capture(argv, true, 10000, &out, &st) != 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st)) {
		char line[300];

		ms__qemu_last_line(out ? out : "", out ? strlen(out) : 0, line, sizeof(line));
		rc = ms_fail(e, 500, "qemu_broken", "qemu-img cannot create a qcow2 file: %s",
		             line[0] ? line : "failed");
	}
	free(out);
	f = rc ? NULL : fopen(path, "rb");
	if (f) {
		long n;

		fseek(f, 0, SEEK_END);
		n = ftell(f);
		fseek(f, 0, SEEK_SET);
		qcow2_template = n > 0 && n < (16 << 20) ? malloc((size_t)n) : NULL;
		if (qcow2_template && fread(qcow2_template, 1, (size_t)n, f) == (size_t)n) {
			qcow2_template_len = (size_t)n;
		} else {
			free(qcow2_template);
			qcow2_template = NULL;
			rc = ms_fail(e, 500, "qemu_broken", "cannot read the qcow2 template");
		}
		fclose(f);
	} else if (!rc) {
		rc = ms_fail(e, 500, "qemu_broken", "qemu-img made no qcow2 file");
	}
	unlink(path);
	rmdir(dir);
	return rc;
}

static void qemu_fini(void)
{
	ms__qemu_caps_fini();
	free(qcow2_template);
	qcow2_template = NULL;
	qcow2_template_len = 0;
}

static int qemu_init(const struct ms_config *cfg, struct ms_err *e)
{
	const char *want =
	    cfg->backends.qemu.binary ? cfg->backends.qemu.binary : "qemu-system-arm";
	int rc;

	qemu_fini();
	max_snapshot_bytes = cfg->resources.max_snapshot_bytes;
	rc = ms__qemu_caps_init(want, e);
	if (rc != 0)
		return rc;
	if (ms__qemu_find_in_path("qemu-img", qemu_img, sizeof(qemu_img)) != 0) {
		qemu_fini();
		return ms_fail(e, 500, "qemu_missing",
		               "cannot find qemu-img (needed for snapshots)");
	}
	rc = make_qcow2_template(e);
	if (rc != 0) {
		qemu_fini();
		return rc;
	}
	return 0;
}

static json_t *qemu_capabilities(void)
{
	return ms__qemu_caps_json();
}

static int qemu_validate(json_t *bc, struct ms_err *e)
{
	struct ms__qemu_resolved r;

	return ms__qemu_resolve(bc, NULL, &r, e);
}

/* ---- the supervisor --------------------------------------------------- */

static void inst_wake(struct inst *in)
{
	uint64_t one = 1;
	ssize_t n = write(in->wake_fd, &one, sizeof(one));

	(void)n;
}

static void on_event(void *ud, const char *name, json_t *data)
{
	struct inst *in = ud;
	struct ms_session *s = in->s;
	bool quiet;

	pthread_mutex_lock(&in->lock);
	quiet = in->quiet > 0 || in->expect_exit;
	if (strcmp(name, "JOB_STATUS_CHANGE") == 0) {
		const char *id = json_string_value(json_object_get(data, "id"));
		const char *st = json_string_value(json_object_get(data, "status"));

		if (id && st && in->job_id[0] && strcmp(id, in->job_id) == 0) {
			snprintf(in->job_status, sizeof(in->job_status), "%s", st);
			pthread_cond_broadcast(&in->cond);
		}
		pthread_mutex_unlock(&in->lock);
		return;
	}
	if (strcmp(name, "SHUTDOWN") == 0 && json_is_true(json_object_get(data, "guest")))
		in->guest_shutdown = true;
	pthread_mutex_unlock(&in->lock);

	if (strcmp(name, "STOP") == 0) {
		/* A gdb attaching stops the VM; so does a breakpoint. */
		if (!quiet && ms_session_state(s) == MS_STATE_RUNNING)
			ms_session_set_state(s, MS_STATE_PAUSED, NULL);
		return;
	}
	if (strcmp(name, "RESUME") == 0) {
		enum ms_state st = ms_session_state(s);

		if (!quiet && (st == MS_STATE_PAUSED || st == MS_STATE_CREATED))
			ms_session_set_state(s, MS_STATE_RUNNING, NULL);
		return;
	}
	ms_session_event(s, "emulator",
	                 json_pack("{s:s,s:O}", "event", name, "data", data ? data : json_null()));
}

/*
 * QEMU's stderr goes to <dir>/qemu-stderr.log rather than a pipe, so that
 * it survives a daemon restart; only its end matters (why QEMU died).
 */
static void load_stderr(struct inst *in)
{
	char path[PATH_MAX];
	char buf[ERR_TAIL];
	ssize_t n = 0;
	off_t size;
	int fd;

	snprintf(path, sizeof(path), "%s/qemu-stderr.log", in->s->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > 0 && lseek(fd, size > ERR_TAIL ? size - ERR_TAIL : 0, SEEK_SET) >= 0)
		n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		n = 0;
	pthread_mutex_lock(&in->lock);
	memcpy(in->errtail, buf, (size_t)n);
	in->errlen = (size_t)n;
	pthread_mutex_unlock(&in->lock);
}

static void read_uart(struct inst *in, int fd)
{
	char buf[16384];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		ms_stream_write(in->s->console, buf, (size_t)n);
	}
}

/* The session no longer has a GDB port: close our listener and free the port. */
static void drop_gdb(struct ms_session *s, struct qsess *qs)
{
	int port;

	if (qs) {
		pthread_mutex_lock(&qs->lock);
		if (qs->gdb_fd >= 0)
			close(qs->gdb_fd);
		qs->gdb_fd = -1;
		pthread_mutex_unlock(&qs->lock);
	}
	pthread_mutex_lock(&s->lock);
	port = s->gdb_port;
	s->gdb_port = 0;
	pthread_mutex_unlock(&s->lock);
	if (port > 0)
		ms_port_free(port);
}

/* The child is gone: reap it and tell the session unless we asked for it. */
static void child_exited(struct inst *in)
{
	struct ms_session *s = in->s;
	char status[128], line[400], reason[512];
	bool expected, guest_off;

	if (in->is_child) {
		int st = 0;
		pid_t r;

		do {
			r = waitpid(in->pid, &st, 0);
		} while (r < 0 && errno == EINTR);
		/* ECHILD: someone else reaped it (SIGCHLD ignored); the status is lost. */
		in->wstatus = st;
		in->status_known = r == in->pid;
	}
	load_stderr(in);
	pthread_mutex_lock(&in->lock);
	if (in->uart_fd >= 0)
		read_uart(in, in->uart_fd);
	in->exited = true;
	expected = in->expect_exit || in->starting;
	guest_off = in->guest_shutdown;
	if (in->start_err[0])
		snprintf(status, sizeof(status), "cannot start qemu: %s", in->start_err);
	else
		describe_status(in->wstatus, in->status_known, status, sizeof(status));
	ms__qemu_last_line(in->errtail, in->errlen, line, sizeof(line));
	pthread_cond_broadcast(&in->cond);
	if (in->qmp)
		ms_qmp_shutdown(in->qmp);
	pthread_mutex_unlock(&in->lock);

	if (expected)
		return;
	snprintf(reason, sizeof(reason), "%s%s%s", status, line[0] ? ": " : "", line);
	{
		char tail[ERR_TAIL + 1];

		pthread_mutex_lock(&in->lock);
		memcpy(tail, in->errtail, in->errlen);
		tail[in->errlen] = '\0';
		pthread_mutex_unlock(&in->lock);
		for (char *c = tail; *c; c++) {
			if (((unsigned char)*c < 0x20 && *c != '\n') || (unsigned char)*c >= 0x7f)
				*c = '?';
		}
		ms_session_set_extra(s, "emulator_stderr", json_string(tail));
	}
	drop_gdb(s, in->qs);
	ms_session_event(s, "emulator_exit",
	                 json_pack("{s:s,s:b}", "reason", reason, "guest_shutdown", guest_off));
	if (guest_off && in->status_known && WIFEXITED(in->wstatus) &&
	    WEXITSTATUS(in->wstatus) == 0)
		ms_session_set_state(s, MS_STATE_STOPPED, NULL);
	else
		ms_session_set_state(s, MS_STATE_ERROR, reason);
}

/*
 * Console input still queued in the UART socket (QEMU has not read it):
 * poke QEMU's main loop until the queue is empty, every KICK_MS at first,
 * backing off to once a second for a guest that does not read its UART.
 */
static void kick_uart(struct inst *in, struct ms_qmp *q, int ufd)
{
	int outq = 0;
	bool send = false;

	if (ioctl(ufd, SIOCOUTQ, &outq) < 0)
		outq = 0;
	pthread_mutex_lock(&in->lock);
	if (outq <= 0) {
		in->uart_kick = false;
	} else if (mono_ms() - in->last_kick_ms >= in->kick_every_ms) {
		in->last_kick_ms = mono_ms();
		if (in->kick_every_ms < 1000)
			in->kick_every_ms *= 2;
		send = true;
	}
	pthread_mutex_unlock(&in->lock);
	if (send && q)
		ms_qmp_send(q, "query-status");
}

/* True when the child ended within timeout_us (its pidfd became readable). */
static bool pidfd_ended(int pidfd, long timeout_us)
{
	struct pollfd pf = {.fd = pidfd, .events = POLLIN};
	struct timespec ts = {timeout_us / 1000000, (timeout_us % 1000000) * 1000L};

	return ppoll(&pf, 1, &ts, NULL) > 0;
}

/*
 * Connect to a socket QEMU creates while it starts. QEMU binds it early in
 * its start-up, so the retries are few; they are short (250 us) because
 * this wait is on the path of every session start.
 */
static int connect_starting(struct inst *in, const char *path)
{
	for (;;) {
		int fd = ms_qmp_connect_unix(path);

		if (fd >= 0)
			return fd;
		if (fd != -ENOENT && fd != -ECONNREFUSED)
			return fd;
		if (mono_ms() > in->start_deadline)
			return -ETIMEDOUT;
		if (pidfd_ended(in->pidfd, 250))
			return -ESRCH;
	}
}

/*
 * The supervisor's first job for a child it saw spawned: connect QMP,
 * negotiate, connect the UART. Nobody else reads the sockets yet, so it
 * reads them itself. 0 when ready; otherwise the child is dead or being
 * killed (start_err says why when it did not die on its own).
 */
static int start_phase(struct inst *in)
{
	char path[PATH_MAX], why[300] = "";
	struct ms_err e;
	int fd;

	ms_err_clear(&e);
	snprintf(path, sizeof(path), "%s/qmp.sock", in->s->dir);
	fd = connect_starting(in, path);
	if (fd >= 0) {
		struct ms_qmp *q = ms_qmp_new(fd, on_event, in);
		int64_t left = in->start_deadline - mono_ms();

		if (!q) {
			fd = -ENOMEM;
		} else {
			pthread_mutex_lock(&in->lock);
			in->qmp = q;
			pthread_mutex_unlock(&in->lock);
			if (ms_qmp_handshake_direct(q, in->pidfd, left > 0 ? (int)left : 1, &e) !=
			    0) {
				snprintf(why, sizeof(why), "%s", e.message);
				fd = -EPROTO;
			}
		}
	}
	if (fd >= 0) {
		snprintf(path, sizeof(path), "%s/uart.sock", in->s->dir);
		fd = connect_starting(in, path);
	}
	if (fd >= 0) {
		pthread_mutex_lock(&in->lock);
		in->uart_fd = fd;
		in->ready = true;
		pthread_cond_broadcast(&in->cond);
		pthread_mutex_unlock(&in->lock);
		return 0;
	}
	/*
	 * A QEMU that refuses its command line closes its sockets as it exits:
	 * give it a moment so that its own exit status and words are the story.
	 */
	if (!pidfd_ended(in->pidfd, 200000)) {
		pthread_mutex_lock(&in->lock);
		if (!why[0])
			snprintf(why, sizeof(why), "%s",
			         fd == -ETIMEDOUT ? "no monitor socket in time" : strerror(-fd));
		snprintf(in->start_err, sizeof(in->start_err), "%s", why);
		pthread_mutex_unlock(&in->lock);
		pidfd_kill(in->pidfd, SIGKILL);
	}
	return -1;
}

static void *supervisor_main(void *arg)
{
	struct inst *in = arg;
	bool qmp_live = true, uart_live = true;

	if (in->run_start && start_phase(in) != 0) {
		child_exited(in);
		return NULL;
	}
	for (;;) {
		struct pollfd pf[5];
		int n = 0, iq = -1, iu = -1, ip, iw;
		struct ms_qmp *q;
		int ufd;
		bool kick;
		int kick_ms;

		pthread_mutex_lock(&in->lock);
		q = in->qmp;
		ufd = in->uart_fd;
		kick = in->uart_kick;
		kick_ms = in->kick_every_ms;
		pthread_mutex_unlock(&in->lock);
		ip = n;
		pf[n++] = (struct pollfd){.fd = in->pidfd, .events = POLLIN};
		iw = n;
		pf[n++] = (struct pollfd){.fd = in->wake_fd, .events = POLLIN};
		if (q && qmp_live) {
			iq = n;
			pf[n++] = (struct pollfd){.fd = ms_qmp_fd(q), .events = POLLIN};
		}
		if (ufd >= 0 && uart_live) {
			iu = n;
			pf[n++] = (struct pollfd){.fd = ufd, .events = POLLIN};
		}
		if (poll(pf, (nfds_t)n, kick ? kick_ms : -1) < 0) {
			if (errno == EINTR)
				continue;
			ms_error("session %s: supervisor poll: %s", in->s->id, strerror(errno));
			sleep_ms(10);
			continue;
		}
		if (pf[iw].revents) {
			uint64_t v;
			ssize_t r = read(in->wake_fd, &v, sizeof(v));

			(void)r;
		}
		if (iq >= 0 && pf[iq].revents && ms_qmp_on_readable(q) != 0)
			qmp_live = false;
		if (iu >= 0 && pf[iu].revents) {
			char probe;
			ssize_t r;

			read_uart(in, ufd);
			r = recv(ufd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
			if (r == 0 || (pf[iu].revents & (POLLHUP | POLLERR)))
				uart_live = false;
		}
		if (pf[ip].revents) {
			child_exited(in);
			return NULL;
		}
		if (kick && ufd >= 0)
			kick_uart(in, q, ufd);
	}
}

/* ---- instance lifecycle ----------------------------------------------- */

static struct inst *inst_new(struct ms_session *s)
{
	struct inst *in = calloc(1, sizeof(*in));
	pthread_condattr_t ca;

	if (!in)
		return NULL;
	in->s = s;
	in->pidfd = -1;
	in->uart_fd = -1;
	in->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (in->wake_fd < 0) {
		free(in);
		return NULL;
	}
	pthread_mutex_init(&in->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&in->cond, &ca);
	pthread_condattr_destroy(&ca);
	return in;
}

static bool inst_alive(struct inst *in)
{
	bool alive;

	if (!in)
		return false;
	pthread_mutex_lock(&in->lock);
	alive = !in->exited;
	pthread_mutex_unlock(&in->lock);
	return alive;
}

/* Wait until the child exited, at most timeout_ms; true when it did. */
static bool wait_exit(struct inst *in, int timeout_ms)
{
	struct timespec dl;
	bool done;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&in->lock);
	while (!in->exited) {
		if (pthread_cond_timedwait(&in->cond, &in->lock, &dl) == ETIMEDOUT)
			break;
	}
	done = in->exited;
	pthread_mutex_unlock(&in->lock);
	return done;
}

/*
 * End an instance and free it. graceful: ask QEMU to quit over QMP first.
 * The caller has already detached it from qs->inst.
 */
static void inst_end(struct inst *in, bool graceful)
{
	struct ms_qmp *q;

	if (!in)
		return;
	pthread_mutex_lock(&in->lock);
	in->expect_exit = true;
	/* One still starting has never run anything: nothing to end gracefully. */
	q = in->ready ? in->qmp : NULL;
	pthread_mutex_unlock(&in->lock);
	graceful = graceful && q;
	if (in->thr_started) {
		if (graceful && q && inst_alive(in))
			ms_qmp_execute(q, "quit", NULL, QUIT_TIMEOUT_MS, NULL, NULL);
		if ((!graceful || !wait_exit(in, QUIT_TIMEOUT_MS)) && inst_alive(in)) {
			/*
			 * Only through the pidfd: once the supervisor reaped the
			 * child its pid may belong to someone else.
			 */
			pidfd_kill(in->pidfd, SIGKILL);
			wait_exit(in, 10000);
		}
		pthread_join(in->thr, NULL);
	} else if (in->pid > 0 && in->is_child) {
		kill(in->pid, SIGKILL);
		waitpid(in->pid, NULL, 0);
	}
	if (in->qmp)
		ms_qmp_free(in->qmp);
	if (in->uart_fd >= 0)
		close(in->uart_fd);
	if (in->pidfd >= 0)
		close(in->pidfd);
	close(in->wake_fd);
	pthread_cond_destroy(&in->cond);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

/* Detach the current instance from the session (console_write stops using it). */
static struct inst *take_inst(struct qsess *qs)
{
	struct inst *in = NULL;

	pthread_mutex_lock(&qs->lock);
	in = qs->inst;
	qs->inst = NULL;
	pthread_mutex_unlock(&qs->lock);
	return in;
}

static int ensure_snapshot_drive(struct ms_session *s, struct qsess *qs, struct ms_err *e)
{
	char path[PATH_MAX];
	struct stat sb;
	size_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/snap.qcow2", s->dir);
	if (qs->snap_ready || stat(path, &sb) == 0) {
		qs->snap_ready = true;
		return 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return ms_fail(e, 503, "host_failure", "cannot create the snapshot drive: %s",
		               strerror(errno));
	while (off < qcow2_template_len) {
		ssize_t n = write(fd, qcow2_template + off, qcow2_template_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = errno;

			close(fd);
			unlink(path);
			return ms_fail(e, 503, "host_failure",
			               "cannot write the snapshot drive: %s", strerror(err));
		}
		off += (size_t)n;
	}
	close(fd);
	qs->snap_ready = true;
	return 0;
}

#define ARGV_SLOTS 8

/* Everything the argv needs lives here so the pointers stay valid. */
struct argv_buf {
	char *v[64];
	size_t n;
	char store[ARGV_SLOTS][PATH_MAX + 96];
	size_t ns;
};

static void av_add(struct argv_buf *a, const char *s)
{
	if (a->n < sizeof(a->v) / sizeof(a->v[0]) - 1)
		a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

static char *av_slot(struct argv_buf *a)
{
	/* build_argv uses five slots; running out is a bug, not input. */
	if (a->ns >= ARGV_SLOTS)
		abort();
	return a->store[a->ns++];
}

static int build_argv(struct ms_session *s, struct qsess *qs, int gdb_port, struct argv_buf *a)
{
	char *o;
	char tmp[PATH_MAX];

	memset(a, 0, sizeof(*a));
	av_add(a, qs->bin->path);
	av_add(a, "-M");
	av_add(a, qs->machine);
	if (qs->cpu[0]) {
		av_add(a, "-cpu");
		av_add(a, qs->cpu);
	} else if (qs->prog.have && strcmp(qs->prog.arch, "aarch64") == 0 &&
	           strncmp(qs->machine, "virt", 4) == 0) {
		/* virt defaults to a 32-bit cortex-a15, which cannot run a 64-bit program. */
		av_add(a, "-cpu");
		av_add(a, "max");
	}
	if (qs->memory[0]) {
		av_add(a, "-m");
		av_add(a, qs->memory);
	}
	av_add(a, "-S");
	av_add(a, "-display");
	av_add(a, "none");
	av_add(a, "-monitor");
	av_add(a, "none");
	if (!qs->network) {
		av_add(a, "-nic");
		av_add(a, "none");
	}
	snprintf(tmp, sizeof(tmp), "%s/qmp.sock", s->dir);
	o = av_slot(a);
	if (opt_path(o, PATH_MAX + 96, "unix:", tmp))
		return -ENAMETOOLONG;
	strcat(o, ",server=on,wait=off");
	av_add(a, "-qmp");
	av_add(a, o);

	o = av_slot(a);
	snprintf(tmp, sizeof(tmp), "%s/uart.sock", s->dir);
	if (opt_path(o, PATH_MAX + 96, "socket,id=ser0,server=on,wait=off,path=", tmp))
		return -ENAMETOOLONG;
	{
		char lf[PATH_MAX + 32];

		snprintf(tmp, sizeof(tmp), "%s/uart-qemu.log", s->dir);
		if (opt_path(lf, sizeof(lf), ",logappend=on,logfile=", tmp) ||
		    strlen(o) + strlen(lf) >= PATH_MAX + 96)
			return -ENAMETOOLONG;
		strcat(o, lf);
	}
	av_add(a, "-chardev");
	av_add(a, o);
	av_add(a, "-serial");
	av_add(a, "chardev:ser0");

	/* Our listener is the child's fd 3 (see spawn_once). */
	(void)gdb_port;
	av_add(a, "-chardev");
	av_add(a, "socket,id=gdb0,fd=3,server=on,wait=off,nodelay=on");
	av_add(a, "-gdb");
	av_add(a, "chardev:gdb0");

	o = av_slot(a);
	snprintf(tmp, sizeof(tmp), "%s/snap.qcow2", s->dir);
	if (opt_path(o, PATH_MAX + 96,
	             "if=none,id=snapdrv,node-name=snapnode,format=qcow2,file=", tmp))
		return -ENAMETOOLONG;
	av_add(a, "-drive");
	av_add(a, o);

	if (qs->prog.have) {
		o = av_slot(a);
		if (qs->prog.fmt == MS_IMAGE_ELF) {
			/* -kernel sets PC from the ELF entry on A-profile and the vector table on M. */
			snprintf(o, PATH_MAX + 96, "%s", qs->prog.path);
			av_add(a, "-kernel");
			av_add(a, o);
		} else {
			/* -kernel would load a HEX file's text raw (EMULATORS.md §1.5). */
			if (opt_path(o, PATH_MAX + 96, "loader,file=", qs->prog.path))
				return -ENAMETOOLONG;
			if (qs->prog.fmt == MS_IMAGE_BIN) {
				char ad[64];

				snprintf(ad, sizeof(ad), ",addr=0x%" PRIx64 ",force-raw=on",
				         qs->prog.has_addr ? qs->prog.addr : 0);
				strcat(o, ad);
			}
			/* On A-profile the loader sets PC only with cpu-num; on M it breaks boot. */
			if (!qs->m_profile)
				strcat(o, ",cpu-num=0");
			av_add(a, "-device");
			av_add(a, o);
		}
	}
	return 0;
}

static void write_state_file(struct ms_session *s, struct qsess *qs, struct inst *in, int port)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	json_t *j = json_pack("{s:I,s:i,s:s}", "pid", (json_int_t)in->pid, "gdb_port", port,
	                      "binary", qs->bin->path);

	if (qs->prog.have)
		json_object_set_new(j, "program_path", json_string(qs->prog.path));
	snprintf(path, sizeof(path), "%s/qemu.json", s->dir);
	snprintf(tmp, sizeof(tmp), "%s/qemu.json.tmp", s->dir);
	if (json_dump_file(j, tmp, JSON_COMPACT) == 0)
		rename(tmp, path);
	json_decref(j);
}

static void inst_error_line(struct inst *in, char *buf, size_t cap)
{
	load_stderr(in);
	pthread_mutex_lock(&in->lock);
	ms__qemu_last_line(in->errtail, in->errlen, buf, cap);
	pthread_mutex_unlock(&in->lock);
}

/*
 * Command lines known to start. QEMU refuses a bad one (a CPU the board
 * cannot take, a RAM size it does not allow) only after most of its
 * start-up, so create waits for the QMP handshake of a configuration it
 * has never seen start, which turns a refusal into the create's own 400.
 * A configuration seen starting before is not waited for at create: the
 * supervisor finishes the start, operations that need QEMU wait for it, and
 * a failure after all (a busy port, the host out of resources) moves the
 * session to error with QEMU's words. The key is everything in the argv a
 * board_config decides; guarded by good_lock, shared by all sessions.
 */
#define GOOD_SLOTS 64
static pthread_mutex_t good_lock = PTHREAD_MUTEX_INITIALIZER;
static char good_cfg[GOOD_SLOTS][PATH_MAX + 200];
static unsigned good_next;

static void config_key(const struct qsess *qs, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s|%s|%s|%s|%d", qs->bin->path, qs->machine, qs->cpu, qs->memory,
	         qs->network);
}

static bool config_known_good(const char *key)
{
	bool found = false;

	pthread_mutex_lock(&good_lock);
	for (unsigned i = 0; i < GOOD_SLOTS && !found; i++)
		found = strcmp(good_cfg[i], key) == 0;
	pthread_mutex_unlock(&good_lock);
	return found;
}

static void config_started(const char *key)
{
	if (config_known_good(key))
		return;
	pthread_mutex_lock(&good_lock);
	snprintf(good_cfg[good_next % GOOD_SLOTS], sizeof(good_cfg[0]), "%s", key);
	good_next++;
	pthread_mutex_unlock(&good_lock);
}

/* Wait until the instance finished starting or ended; true when it is ready. */
static bool wait_ready(struct inst *in)
{
	struct timespec dl;
	bool ok;

	/* The supervisor gives up at start_deadline and kills the child; allow for its end. */
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (START_TIMEOUT_MS + QUIT_TIMEOUT_MS) / 1000;
	pthread_mutex_lock(&in->lock);
	while (!in->ready && !in->exited) {
		if (pthread_cond_timedwait(&in->cond, &in->lock, &dl) == ETIMEDOUT)
			break;
	}
	ok = in->ready && !in->exited;
	pthread_mutex_unlock(&in->lock);
	return ok;
}

/*
 * Start QEMU for this session (paused, -S); its supervisor connects QMP and
 * the UART. wait: return only once it is ready, with its failure as the
 * error (QEMU's own words); otherwise return at once and let a failure
 * reach the session through the supervisor. On success qs->inst is the
 * new instance.
 */
static int spawn_once(struct ms_session *s, struct qsess *qs, int port, int gdb_fd, bool wait,
                      struct ms_err *e)
{
	struct argv_buf a;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int errfd;
	struct inst *in = NULL;
	char path[PATH_MAX];
	int rc;
	bool ok;

	/* sun_path holds 108 bytes; QEMU would refuse a longer socket path. */
	if (strlen(s->dir) + sizeof("/uart.sock") > 108)
		return ms_fail(
		    e, 500, "path_too_long",
		    "run directory %s is too long for unix sockets; use a shorter data_dir",
		    s->dir);
	if (build_argv(s, qs, port, &a) != 0)
		return ms_fail(e, 500, "path_too_long", "run directory path is too long for qemu");
	in = inst_new(s);
	if (!in)
		return ms_fail(e, 503, "out_of_memory", "cannot allocate a qemu instance");
	snprintf(path, sizeof(path), "%s/qmp.sock", s->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/uart.sock", s->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/qemu-stderr.log", s->dir);
	errfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (errfd < 0) {
		inst_end(in, false);
		return ms_fail(e, 503, "host_failure", "cannot create %s: %s", path,
		               strerror(errno));
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, errfd, 1);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	posix_spawn_file_actions_adddup2(&fa, gdb_fd, 3);
	/* The daemon's sockets and database must not leak into a long-lived child. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	/* Own session: a Ctrl-C on the daemon's terminal must not kill QEMU behind our back. */
	posix_spawnattr_setflags(
	    &at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
	rc = posix_spawn(&in->pid, a.v[0], &fa, &at, a.v, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(errfd);
	if (rc != 0) {
		in->pid = 0;
		inst_end(in, false);
		return ms_fail(e, 502, "emulator_failed", "cannot start %s: %s", a.v[0],
		               strerror(rc));
	}
	in->is_child = true;
	in->qs = qs;
	in->run_start = true;
	in->starting = wait;
	in->start_deadline = mono_ms() + START_TIMEOUT_MS;
	in->pidfd = pidfd_open_(in->pid);
	if (in->pidfd < 0) {
		inst_end(in, false);
		return ms_fail(e, 503, "host_failure", "pidfd_open: %s", strerror(errno));
	}
	if (pthread_create(&in->thr, NULL, supervisor_main, in) != 0) {
		inst_end(in, false);
		return ms_fail(e, 503, "host_failure", "cannot start the supervisor thread");
	}
	in->thr_started = true;

	ok = !wait || wait_ready(in);
	if (wait) {
		/* From here on a death is the supervisor's to report. */
		pthread_mutex_lock(&in->lock);
		ok = ok && !in->exited;
		in->starting = false;
		pthread_mutex_unlock(&in->lock);
	}
	if (!ok) {
		char line[400], status[128], why[300];
		bool dead, refused;

		/* The supervisor killed it if it did not die by itself; let it finish. */
		dead = wait_exit(in, QUIT_TIMEOUT_MS);
		inst_error_line(in, line, sizeof(line));
		pthread_mutex_lock(&in->lock);
		describe_status(in->wstatus, in->status_known, status, sizeof(status));
		snprintf(why, sizeof(why), "%s", in->start_err);
		refused = !why[0] && in->status_known && WIFEXITED(in->wstatus) &&
		    WEXITSTATUS(in->wstatus) == 1;
		pthread_mutex_unlock(&in->lock);
		inst_end(in, false);
		/*
		 * QEMU exits with status 1 when it refuses its command line: a CPU
		 * the board cannot take, a RAM size it does not allow. That line
		 * came from the client's board_config, so it is the client's 400.
		 */
		if (dead && refused)
			return ms_fail(e, 400, "bad_board_config",
			               "qemu refused the configuration: %s",
			               line[0] ? line : status);
		if (why[0] || !dead)
			return ms_fail(e, 502, "emulator_failed", "cannot start qemu: %s%s%s",
			               why[0] ? why : "it did not start in time",
			               line[0] ? ": " : "", line);
		return ms_fail(e, 502, "emulator_failed", "cannot start qemu: %s",
		               line[0] ? line : status);
	}
	if (wait && !qs->prog.have) {
		char key[sizeof(good_cfg[0])];

		config_key(qs, key, sizeof(key));
		config_started(key);
	}
	write_state_file(s, qs, in, port);
	ms_session_set_extra(s, "emulator_stderr", NULL);
	ms_session_set_extra(s, "qemu",
	                     json_pack("{s:s,s:s,s:s,s:I}", "binary", qs->bin->path, "machine",
	                               qs->machine, "cpu", qs->cpu, "pid", (json_int_t)in->pid));
	pthread_mutex_lock(&qs->lock);
	qs->inst = in;
	pthread_mutex_unlock(&qs->lock);
	return 0;
}

static void release_port(struct ms_session *s)
{
	drop_gdb(s, s->bdata);
}

/* A listening TCP socket on 127.0.0.1:port, numbered above the low fds; or -errno. */
static int listen_on(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1, fd, hi, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Reused at once after a previous owner's connections (TIME_WAIT). */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0) {
		err = -errno;
		close(fd);
		return err;
	}
	/* Kept away from 3, which it becomes in the child (dup2 onto itself would keep CLOEXEC). */
	hi = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	close(fd);
	return hi >= 0 ? hi : -errno;
}

/* Make sure the session has a GDB port with our listener on it. */
static int gdb_listener(struct ms_session *s, struct qsess *qs, struct ms_err *e)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		int port, fd;
		bool have;

		pthread_mutex_lock(&s->lock);
		port = s->gdb_port;
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_lock(&qs->lock);
		have = qs->gdb_fd >= 0;
		pthread_mutex_unlock(&qs->lock);
		if (port > 0 && have)
			return 0;
		if (port <= 0) {
			port = ms_port_alloc();
			if (port < 0)
				return ms_fail(e, 429, "no_gdb_port",
				               "no free gdb port in the configured range");
			pthread_mutex_lock(&s->lock);
			s->gdb_port = port;
			pthread_mutex_unlock(&s->lock);
		}
		fd = listen_on(port);
		if (fd >= 0) {
			pthread_mutex_lock(&qs->lock);
			qs->gdb_fd = fd;
			pthread_mutex_unlock(&qs->lock);
			return 0;
		}
		if (fd != -EADDRINUSE) {
			release_port(s);
			return ms_fail(e, 503, "host_failure", "cannot listen on gdb port %d: %s",
			               port, strerror(-fd));
		}
		/* Another program took the port after the allocator's test bind. */
		ms_warn("session %s: gdb port %d is busy, taking another", s->id, port);
		release_port(s);
	}
	return ms_fail(e, 429, "no_gdb_port", "no free gdb port: every one tried was busy");
}

/* Spawn with the session's GDB port and our listener on it. */
static int spawn(struct ms_session *s, struct qsess *qs, bool wait, struct ms_err *e)
{
	int rc, port, fd;

	rc = ensure_snapshot_drive(s, qs, e);
	if (rc != 0)
		return rc;
	rc = gdb_listener(s, qs, e);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&s->lock);
	port = s->gdb_port;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&qs->lock);
	fd = qs->gdb_fd;
	pthread_mutex_unlock(&qs->lock);
	rc = spawn_once(s, qs, port, fd, wait, e);
	if (rc != 0)
		release_port(s); /* no process: no port to advertise */
	return rc;
}

/* The instance, possibly still starting, or NULL after cleaning up a dead one. */
static struct inst *current(struct qsess *qs)
{
	struct inst *in = NULL;

	if (!qs)
		return NULL;
	pthread_mutex_lock(&qs->lock);
	in = qs->inst;
	pthread_mutex_unlock(&qs->lock);
	if (in && !inst_alive(in)) {
		inst_end(take_inst(qs), false);
		return NULL;
	}
	return in;
}

/*
 * The instance ready for QMP commands (waiting for one still starting), or
 * NULL. A start that fails here was reported to the session by the
 * supervisor already.
 */
static struct inst *live(struct qsess *qs)
{
	struct inst *in = current(qs);

	if (in && !wait_ready(in)) {
		inst_end(take_inst(qs), false);
		return NULL;
	}
	return in;
}

static int qmp_run(struct inst *in, const char *cmd, json_t *args, json_t **ret, struct ms_err *e)
{
	return ms_qmp_execute(in->qmp, cmd, args, CMD_TIMEOUT_MS, ret, e);
}

/* QEMU's run status ("running", "paused", "prelaunch", ...) into buf. */
static int query_status(struct inst *in, char *buf, size_t cap, struct ms_err *e)
{
	json_t *r = NULL;
	int rc = qmp_run(in, "query-status", NULL, &r, e);

	if (rc == 0) {
		const char *st = json_string_value(json_object_get(r, "status"));

		snprintf(buf, cap, "%s", st ? st : "");
	}
	json_decref(r);
	return rc;
}

/* ---- vtable: lifecycle -------------------------------------------------- */

static struct qsess *qsess_of(struct ms_session *s)
{
	return s->bdata;
}

static int setup_qsess(struct ms_session *s, struct qsess **out, struct ms_err *e)
{
	struct ms__qemu_resolved r;
	struct qsess *qs;
	int rc = ms__qemu_resolve(s->board_config, NULL, &r, e);

	if (rc)
		return rc;
	qs = calloc(1, sizeof(*qs));
	if (!qs)
		return ms_fail(e, 503, "out_of_memory", "cannot allocate qemu session state");
	pthread_mutex_init(&qs->lock, NULL);
	pthread_mutex_init(&qs->write_lock, NULL);
	qs->gdb_fd = -1;
	qs->bin = r.bin;
	snprintf(qs->machine, sizeof(qs->machine), "%s", r.machine);
	snprintf(qs->cpu, sizeof(qs->cpu), "%s", r.cpu);
	snprintf(qs->memory, sizeof(qs->memory), "%s", r.memory);
	qs->network = r.network;
	qs->m_profile = r.m_profile;
	qs->no_restore = r.no_restore;
	*out = qs;
	return 0;
}

/*
 * The backend state of a session. A session reloaded after a daemon
 * restart whose QEMU was gone never went through create: set it up now.
 */
static int qs_ensure(struct ms_session *s, struct qsess **out, struct ms_err *e)
{
	int rc;

	if (!s->bdata) {
		struct qsess *qs = NULL;

		rc = setup_qsess(s, &qs, e);
		if (rc)
			return rc;
		s->bdata = qs;
	}
	*out = s->bdata;
	return 0;
}

static void free_qsess(struct qsess *qs)
{
	if (qs->gdb_fd >= 0)
		close(qs->gdb_fd);
	pthread_mutex_destroy(&qs->lock);
	pthread_mutex_destroy(&qs->write_lock);
	free(qs);
}

static int qemu_create(struct ms_session *s, struct ms_err *e)
{
	struct qsess *qs;
	char key[sizeof(good_cfg[0])];
	int rc = setup_qsess(s, &qs, e);

	if (rc)
		return rc;
	s->bdata = qs;
	config_key(qs, key, sizeof(key));
	rc = spawn(s, qs, !config_known_good(key), e);
	if (rc) {
		release_port(s);
		s->bdata = NULL;
		free_qsess(qs);
	}
	return rc;
}

static void qemu_destroy(struct ms_session *s)
{
	struct qsess *qs = qsess_of(s);

	if (!qs)
		return;
	inst_end(take_inst(qs), true);
	release_port(s);
	s->bdata = NULL;
	free_qsess(qs);
}

/* Apply the stored program (after a daemon restart only the id is known). */
static void recall_program(struct ms_session *s, struct qsess *qs)
{
	struct ms_program p;
	char id[40];

	if (qs->prog.have)
		return;
	pthread_mutex_lock(&s->lock);
	snprintf(id, sizeof(id), "%s", s->program_id);
	qs->prog.has_addr = s->has_load_addr;
	qs->prog.addr = s->load_addr;
	pthread_mutex_unlock(&s->lock);
	if (!id[0] || ms_programs_get(id, &p, NULL) != 0)
		return;
	snprintf(qs->prog.path, sizeof(qs->prog.path), "%s", p.path);
	snprintf(qs->prog.arch, sizeof(qs->prog.arch), "%s", p.arch);
	qs->prog.fmt = p.format;
	qs->prog.have = true;
}

static int qemu_power_on(struct ms_session *s, struct ms_err *e)
{
	struct qsess *qs = NULL;
	struct inst *in;
	int rc = qs_ensure(s, &qs, e);

	if (rc)
		return rc;
	in = live(qs);
	recall_program(s, qs);
	if (!qs->prog.have && qs->m_profile)
		return ms_fail(e, 409, "no_program",
		               "load a program first: a %s without firmware locks up at once",
		               qs->machine);
	if (!in) {
		rc = spawn(s, qs, true, e);
		if (rc != 0)
			return rc;
		in = live(qs);
		if (!in)
			return ms_fail(e, 502, "emulator_failed",
			               "qemu exited right after starting");
	}
	return qmp_run(in, "cont", NULL, NULL, e);
}

static int qemu_power_off(struct ms_session *s, struct ms_err *e)
{
	struct qsess *qs = qsess_of(s);

	if (qs)
		inst_end(take_inst(qs), true);
	release_port(s);
	return 0;
}

static int need_live(struct ms_session *s, struct inst **out, const char *op, struct ms_err *e)
{
	struct inst *in = live(qsess_of(s));

	if (!in)
		return ms_fail(e, 409, "invalid_state", "cannot %s session %s: qemu is not running",
		               op, s->id);
	*out = in;
	return 0;
}

static int qemu_pause(struct ms_session *s, struct ms_err *e)
{
	struct inst *in = NULL;
	int rc = need_live(s, &in, "pause", e);

	return rc ? rc : qmp_run(in, "stop", NULL, NULL, e);
}

static int qemu_reset(struct ms_session *s, struct ms_err *e)
{
	struct inst *in = NULL;
	int rc = need_live(s, &in, "reset", e);

	return rc ? rc : qmp_run(in, "system_reset", NULL, NULL, e);
}

static int qemu_load_program(struct ms_session *s, const struct ms_program *p, bool has_addr,
                             uint64_t addr, struct ms_err *e)
{
	struct qsess *qs = NULL;
	struct qprog old_prog;
	const struct ms__qemu_bin *old_bin;
	struct inst *in = NULL;
	enum ms_state st;
	struct ms__qemu_resolved r;
	int rc = qs_ensure(s, &qs, e);

	if (rc)
		return rc;
	old_prog = qs->prog;
	old_bin = qs->bin;

	if (p->format != MS_IMAGE_ELF && p->format != MS_IMAGE_IHEX && p->format != MS_IMAGE_BIN)
		return ms_fail(e, 400, "bad_image", "program %s has no loadable format", p->id);
	if (p->arch[0] && strcmp(p->arch, "arm") != 0 && strcmp(p->arch, "aarch64") != 0 &&
	    !ms__qemu_bin_fits_arch(qs->bin, p->arch))
		return ms_fail(e, 400, "incompatible_program",
		               "a %s program cannot run on board %s", p->arch, qs->machine);
	if (qs->m_profile && p->elf_class == 64)
		return ms_fail(e, 400, "incompatible_program",
		               "a 64-bit %s program cannot run on the cortex-m board %s", p->arch,
		               qs->machine);
	rc = ms__qemu_resolve(s->board_config, p->arch, &r, e);
	if (rc)
		return rc;
	qs->bin = r.bin;
	snprintf(qs->prog.path, sizeof(qs->prog.path), "%s", p->path);
	snprintf(qs->prog.arch, sizeof(qs->prog.arch), "%s", p->arch);
	qs->prog.fmt = p->format;
	qs->prog.has_addr = has_addr;
	qs->prog.addr = addr;
	qs->prog.have = true;

	st = ms_session_state(s);
	/* Not waiting: an instance still starting (never run) is ended at once. */
	in = current(qs);
	if (!in)
		return 0; /* stopped: the program is used at the next poweron */
	/* ROM blobs are re-applied on every reset, so a restart is what makes the load stick. */
	pthread_mutex_lock(&in->lock);
	in->quiet++;
	pthread_mutex_unlock(&in->lock);
	inst_end(take_inst(qs), false);
	rc = spawn(s, qs, true, e);
	if (rc) {
		char msg[512];

		/* Keep the old program recorded: the new one would not start. */
		snprintf(msg, sizeof(msg), "%s", e ? e->message : "");
		qs->prog = old_prog;
		qs->bin = old_bin;
		release_port(s);
		ms_session_set_state(s, MS_STATE_STOPPED, NULL);
		return ms_fail(e, 502, "emulator_failed", "%s; the session is stopped", msg);
	}
	if (st == MS_STATE_RUNNING) {
		in = live(qs);
		if (!in)
			return ms_fail(e, 502, "emulator_failed",
			               "qemu exited after loading the program");
		return qmp_run(in, "cont", NULL, NULL, e);
	}
	return 0;
}

/* ---- snapshots ---------------------------------------------------------- */

/*
 * Run a job-based snapshot command to its end: JOB_STATUS_CHANGE events
 * tell when it concluded, query-jobs whether it failed, job-dismiss
 * removes it. Our own STOP/RESUME around it are not user-visible changes.
 */
static int run_job(struct inst *in, const char *cmd, json_t *args, struct ms_err *e)
{
	static unsigned long seq;
	char id[32];
	json_t *jobs = NULL, *j;
	char err[400] = "";
	bool concluded = false;
	struct timespec dl;
	size_t i;
	int rc;

	snprintf(id, sizeof(id), "ms-job-%lu", __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
	json_object_set_new(args, "job-id", json_string(id));
	pthread_mutex_lock(&in->lock);
	snprintf(in->job_id, sizeof(in->job_id), "%s", id);
	in->job_status[0] = '\0';
	pthread_mutex_unlock(&in->lock);

	rc = qmp_run(in, cmd, args, NULL, e);
	if (rc)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += JOB_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&in->lock);
	while (!in->exited && strcmp(in->job_status, "concluded") != 0 &&
	       strcmp(in->job_status, "null") != 0) {
		if (pthread_cond_timedwait(&in->cond, &in->lock, &dl) == ETIMEDOUT)
			break;
	}
	concluded = strcmp(in->job_status, "concluded") == 0;
	pthread_mutex_unlock(&in->lock);
	if (!concluded) {
		rc = ms_fail(e, 502, "emulator_failed", "%s: %s", cmd,
		             inst_alive(in) ? "the job did not conclude in time"
		                            : "qemu exited during the job");
		goto out;
	}
	rc = qmp_run(in, "query-jobs", NULL, &jobs, e);
	if (rc)
		goto out;
	json_array_foreach(jobs, i, j)
	{
		const char *jid = json_string_value(json_object_get(j, "id"));
		const char *je = json_string_value(json_object_get(j, "error"));

		if (jid && strcmp(jid, id) == 0 && je)
			snprintf(err, sizeof(err), "%s", je);
	}
	json_decref(jobs);
	qmp_run(in, "job-dismiss", json_pack("{s:s}", "id", id), NULL, NULL);
	if (err[0])
		rc = ms_fail(e, 502, "emulator_failed", "%s: %s", cmd, err);
out:
	pthread_mutex_lock(&in->lock);
	in->job_id[0] = '\0';
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static void quiet(struct inst *in, int delta)
{
	pthread_mutex_lock(&in->lock);
	in->quiet += delta;
	pthread_mutex_unlock(&in->lock);
}

/* vm-state-size of snapshot `name` on snapnode, 0 when unknown. */
static uint64_t snapshot_size(struct inst *in, const char *name)
{
	json_t *nodes = NULL, *n, *sn;
	size_t i, k;
	uint64_t size = 0;

	if (qmp_run(in, "query-named-block-nodes", json_pack("{s:b}", "flat", 1), &nodes, NULL))
		return 0;
	json_array_foreach(nodes, i, n)
	{
		const char *nn = json_string_value(json_object_get(n, "node-name"));

		if (!nn || strcmp(nn, "snapnode") != 0)
			continue;
		json_array_foreach(json_object_get(json_object_get(n, "image"), "snapshots"), k, sn)
		{
			const char *sname = json_string_value(json_object_get(sn, "name"));

			if (sname && strcmp(sname, name) == 0)
				size = (uint64_t)json_integer_value(
				    json_object_get(sn, "vm-state-size"));
		}
	}
	json_decref(nodes);
	return size;
}

/*
 * Set the session state from QEMU's own run status: running, or paused
 * (prelaunch too) — except that a session that never ran stays created.
 */
static void follow_status(struct ms_session *s, struct inst *in)
{
	char status[32];
	enum ms_state st = ms_session_state(s);

	if (query_status(in, status, sizeof(status), NULL) != 0)
		return;
	if (strcmp(status, "running") == 0)
		ms_session_set_state(s, MS_STATE_RUNNING, NULL);
	else if (st == MS_STATE_RUNNING)
		ms_session_set_state(s, MS_STATE_PAUSED, NULL);
}

static int qemu_snapshot_save(struct ms_session *s, const char *name, uint64_t *size,
                              struct ms_err *e)
{
	struct inst *in = NULL;
	int rc;

	if (!ms_valid_name(name))
		return ms_fail(e, 400, "bad_name", "invalid snapshot name");
	rc = need_live(s, &in, "snapshot", e);
	if (rc != 0)
		return rc;
	if (max_snapshot_bytes) {
		char path[PATH_MAX];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/snap.qcow2", s->dir);
		if (stat(path, &sb) == 0 && (uint64_t)sb.st_blocks * 512 >= max_snapshot_bytes)
			return ms_fail(e, 429, "quota_exceeded",
			               "session %s uses %llu snapshot bytes, the limit is %llu",
			               s->id, (unsigned long long)sb.st_blocks * 512,
			               (unsigned long long)max_snapshot_bytes);
	}
	quiet(in, 1);
	rc = run_job(
	    in, "snapshot-save",
	    json_pack("{s:s,s:s,s:[s]}", "tag", name, "vmstate", "snapnode", "devices", "snapnode"),
	    e);
	quiet(in, -1);
	if (rc == 0 && size)
		*size = snapshot_size(in, name);
	/* Events were ignored during the job: take the state from QEMU again. */
	follow_status(s, in);
	return rc;
}

static int qemu_snapshot_load(struct ms_session *s, const char *name, struct ms_err *e)
{
	struct qsess *qs = NULL;
	struct inst *in = NULL;
	char status[32] = "";
	int rc = qs_ensure(s, &qs, e);

	if (rc)
		return rc;

	if (qs->no_restore)
		return ms_fail(e, 501, "not_supported",
		               "qemu 7.2 aborts when restoring a snapshot on %s; restore is "
		               "disabled for this board",
		               qs->machine);
	if (!ms_valid_name(name))
		return ms_fail(e, 400, "bad_name", "invalid snapshot name");
	rc = need_live(s, &in, "restore", e);
	if (rc != 0)
		return rc;
	quiet(in, 1);
	rc = run_job(
	    in, "snapshot-load",
	    json_pack("{s:s,s:s,s:[s]}", "tag", name, "vmstate", "snapnode", "devices", "snapnode"),
	    e);
	quiet(in, -1);
	if (!inst_alive(in))
		return rc ? rc : ms_fail(e, 502, "emulator_failed", "qemu exited while restoring");
	if (query_status(in, status, sizeof(status), NULL) != 0)
		status[0] = '\0';
	if (rc) {
		char msg[512];

		/* A failed snapshot-load leaves QEMU stopped; say so rather than pretend. */
		snprintf(msg, sizeof(msg), "%s", e ? e->message : "snapshot-load failed");
		if (strcmp(status, "running") == 0)
			return rc;
		ms_session_set_state(s, MS_STATE_PAUSED, NULL);
		return ms_fail(e, 502, "emulator_failed",
		               "%s; the machine is left paused (poweron resumes it)", msg);
	}
	follow_status(s, in);
	return 0;
}

static int qemu_snapshot_delete(struct ms_session *s, const char *name, struct ms_err *e)
{
	struct inst *in = live(qsess_of(s));
	int rc;

	if (!ms_valid_name(name))
		return ms_fail(e, 400, "bad_name", "invalid snapshot name");
	if (in) {
		quiet(in, 1);
		rc = run_job(in, "snapshot-delete",
		             json_pack("{s:s,s:[s]}", "tag", name, "devices", "snapnode"), e);
		quiet(in, -1);
		return rc;
	}
	/* Powered off: the snapshots live in the qcow2 file; edit it offline. */
	{
		char path[PATH_MAX];
		char nm[80];
		char *argv[] = {qemu_img, "snapshot", "-d", nm, path, NULL};
		char *out = NULL;
		int st = 0;
		struct stat sb;

		snprintf(path, sizeof(path), "%s/snap.qcow2", s->dir);
		snprintf(nm, sizeof(nm), "%s", name);
		if (stat(path, &sb) != 0)
			return ms_fail(e, 404, "snapshot_not_found", "no snapshot drive for %s",
			               s->id);
		if (ms__qemu_run_capture(argv, true, 30000, &out, &st) != 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			char line[300];

			ms__qemu_last_line(out ? out : "", out ? strlen(out) : 0, line,
			                   sizeof(line));
			free(out);
			return ms_fail(e, 502, "emulator_failed", "qemu-img snapshot -d: %s",
			               line[0] ? line : "failed");
		}
		free(out);
		return 0;
	}
}

/* ---- console, devices, reattach --------------------------------------- */

static int qemu_console_write(struct ms_session *s, const void *data, size_t len)
{
	struct qsess *qs = qsess_of(s);
	struct inst *in;
	int rc = 0, fd;

	if (!qs)
		return MS_ESTATE;
	pthread_mutex_lock(&qs->lock);
	/* An instance still starting gets its UART connected in a moment. */
	if (!qs->inst || !wait_ready(qs->inst) || qs->inst->uart_fd < 0) {
		pthread_mutex_unlock(&qs->lock);
		return MS_ESTATE;
	}
	in = qs->inst;
	/* A copy: the instance may end (load, poweroff) while we write; its socket then fails. */
	fd = fcntl(in->uart_fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_unlock(&qs->lock);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&qs->write_lock);
	/* A guest that does not drain its RX for a second loses the rest (-EAGAIN). */
	rc = ms_send_all(fd, data, len, 1000);
	pthread_mutex_unlock(&qs->write_lock);
	close(fd);
	/*
	 * QEMU's main loop stops watching a chardev socket while the guest
	 * UART cannot receive (e.g. before the firmware enables RX) and is not
	 * woken when it becomes able to: the bytes would sit unread. Any
	 * monitor command makes the loop re-check; the supervisor keeps
	 * poking until QEMU has read everything.
	 */
	pthread_mutex_lock(&qs->lock);
	if (rc == 0 && qs->inst == in) {
		pthread_mutex_lock(&in->lock);
		in->uart_kick = true;
		in->last_kick_ms = mono_ms();
		in->kick_every_ms = KICK_MS;
		pthread_mutex_unlock(&in->lock);
		if (in->qmp)
			ms_qmp_send(in->qmp, "query-status");
		inst_wake(in);
	}
	pthread_mutex_unlock(&qs->lock);
	return rc;
}

static int qemu_device_map(struct ms_session *s, json_t **out, struct ms_err *e)
{
	struct inst *in = NULL;
	json_t *r = NULL;
	int rc = need_live(s, &in, "list the devices of", e);

	if (rc)
		return rc;
	/* A fixed command string: no user text reaches the monitor. */
	rc = qmp_run(in, "human-monitor-command",
	             json_pack("{s:s}", "command-line", "info mtree -f"), &r, e);
	if (rc)
		return rc;
	if (!json_is_string(r)) {
		json_decref(r);
		return ms_fail(e, 502, "emulator_failed", "info mtree returned no text");
	}
	*out = ms__qemu_parse_mtree(json_string_value(r));
	json_decref(r);
	if (json_array_size(*out) == 0) {
		json_decref(*out);
		*out = NULL;
		return ms_fail(e, 502, "emulator_failed", "qemu reported no memory map");
	}
	return 0;
}

/* Whether process pid's command line mentions dir (it is this session's QEMU). */
static bool pid_runs_in(pid_t pid, const char *dir)
{
	char path[64], buf[8192];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\0')
			buf[i] = ' ';
	}
	buf[n] = '\0';
	return strstr(buf, dir) != NULL;
}

/*
 * After a daemon restart: if the QMP socket still answers, adopt the QEMU
 * behind it. It is no longer our child, so its exit status is unknown and
 * its stderr went with the old daemon.
 */
static int qemu_reattach(struct ms_session *s)
{
	char path[PATH_MAX], status[32];
	json_t *st;
	struct qsess *qs;
	struct inst *in = NULL;
	struct ms_err e;
	int fd, port;
	pid_t pid;

	ms_err_clear(&e);
	snprintf(path, sizeof(path), "%s/qemu.json", s->dir);
	st = json_load_file(path, 0, NULL);
	if (!st)
		return -ESRCH;
	pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
	port = (int)json_integer_value(json_object_get(st, "gdb_port"));
	json_decref(st);
	if (pid <= 0 || !pid_runs_in(pid, s->dir))
		return -ESRCH;
	snprintf(path, sizeof(path), "%s/qmp.sock", s->dir);
	fd = ms_qmp_connect_unix(path);
	if (fd < 0)
		return -ESRCH;
	if (setup_qsess(s, &qs, &e) != 0) {
		close(fd);
		return -ESRCH;
	}
	in = inst_new(s);
	if (!in) {
		close(fd);
		free_qsess(qs);
		return -ESRCH;
	}
	in->pid = pid;
	in->qs = qs;
	in->ready = true; /* the supervisor reads from the start; the handshake is ours */
	in->pidfd = pidfd_open_(pid);
	in->qmp = ms_qmp_new(fd, on_event, in);
	if (in->pidfd < 0 || !in->qmp || pthread_create(&in->thr, NULL, supervisor_main, in) != 0)
		goto fail;
	in->thr_started = true;
	if (ms_qmp_handshake(in->qmp, CMD_TIMEOUT_MS, NULL, &e) != 0 ||
	    query_status(in, status, sizeof(status), &e) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/uart.sock", s->dir);
	fd = ms_qmp_connect_unix(path);
	if (fd >= 0) {
		pthread_mutex_lock(&in->lock);
		in->uart_fd = fd;
		pthread_mutex_unlock(&in->lock);
		inst_wake(in);
	}
	qs->inst = in;
	qs->snap_ready = true;
	s->bdata = qs;
	recall_program(s, qs);
	if (port > 0 && ms_port_claim(port) == 0) {
		pthread_mutex_lock(&s->lock);
		s->gdb_port = port;
		pthread_mutex_unlock(&s->lock);
	}
	ms_session_set_extra(s, "qemu",
	                     json_pack("{s:s,s:s,s:s,s:I,s:b}", "binary", qs->bin->path, "machine",
	                               qs->machine, "cpu", qs->cpu, "pid", (json_int_t)pid,
	                               "reattached", 1));
	ms_session_set_state(s, strcmp(status, "running") == 0 ? MS_STATE_RUNNING : MS_STATE_PAUSED,
	                     NULL);
	return 0;
fail:
	/*
	 * It answers but cannot be driven: the session is going to say
	 * "stopped", which means no process, so end it (through its pidfd).
	 */
	ms_warn("session %s: cannot reattach qemu pid %d: %s", s->id, (int)pid, e.message);
	inst_end(in, false);
	free_qsess(qs);
	return -ESRCH;
}

const struct ms_backend ms_backend_qemu = {
    .name = "qemu",
    .init = qemu_init,
    .fini = qemu_fini,
    .capabilities = qemu_capabilities,
    .validate = qemu_validate,
    .create = qemu_create,
    .reattach = qemu_reattach,
    .destroy = qemu_destroy,
    .power_on = qemu_power_on,
    .power_off = qemu_power_off,
    .pause = qemu_pause,
    .reset = qemu_reset,
    .load_program = qemu_load_program,
    .snapshot_save = qemu_snapshot_save,
    .snapshot_load = qemu_snapshot_load,
    .snapshot_delete = qemu_snapshot_delete,
    .console_write = qemu_console_write,
    .device_map = qemu_device_map,
};
