/*
 * rehost backend: sessions on our in-process Cortex-M engine (src/rehost/).
 *
 * Each session owns one engine thread, which owns the machine: it runs the
 * guest in slices of instructions and, between slices, executes control
 * commands posted by the API threads (load, reset, snapshot...), serves
 * gdb, and paces virtual time to wall time so an idle firmware does not
 * spin a host core. UART output goes to s->console as it is produced.
 *
 * Threads and locks: control functions run on API threads under
 * s->op_lock (backend.h); they post a command to the engine thread and
 * wait for it. struct rsess's lock guards cmd*, want_run, quit; the
 * engine thread is the only one that touches the machine (except
 * ms_rh_machine_input_push / request_stop, which are thread-safe).
 *
 * The engine thread is started by the first poweron, not at create: until
 * then the API thread holding op_lock is the machine's only user, so
 * commands (load, reset, step) run directly on it, with no thread to
 * create at create and no wake-up round trip per command. A create + load
 * + poweron then costs one pthread_create, and the thread starts running
 * the guest at once.
 * A crashed guest (lockup) puts the session in error with the registers;
 * it never takes the daemon down.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/image.h"
#include "core/log.h"
#include "core/ports.h"
#include "core/program.h"
#include "core/session.h"
#include "core/stream.h"
#include "rehost/board.h"
#include "rehost/coverage.h"
#include "rehost/gdb.h"
#include "rehost/machine.h"
#include "infer/infer.h"

/* Instructions per slice between looks at commands, gdb and the clock. */
#define SLICE 200000

struct rsess;
typedef int (*cmd_fn)(struct rsess *rs, void *arg, struct ms_err *e);

struct rsess {
	struct ms_session *s;
	struct ms_rh_machine *m;
	pthread_t thr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	cmd_fn cmd;
	void *cmd_arg;
	struct ms_err *cmd_err;
	int cmd_rc;
	bool cmd_done;
	bool want_run;
	bool gdb_halted; /* gdb holds the guest halted */
	bool quit;
	bool has_program;
	bool started; /* the engine thread runs; set once, under op_lock */
	bool auto_cpu; /* no board or cpu given: the first program's ELF chooses the core */
	/* Pacing: wall-clock origin for the current run stretch. */
	struct timespec t0;
	uint64_t ns0;
};

/*
 * The inference views are called from API threads without op_lock; this
 * lock keeps a session's backend state from being freed under them
 * (destroy takes it to clear s->bdata). The infer functions used here are
 * safe against the engine thread by their own mutex.
 */
static pthread_mutex_t view_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000ll + t.tv_nsec;
}

/* A spare machine (below) has no session yet: ud is NULL until one takes it. */
static void console_cb(void *ud, const uint8_t *b, size_t n)
{
	struct rsess *rs = ud;

	if (rs != NULL)
		ms_stream_write(rs->s->console, b, n);
}

static void event_cb(void *ud, const char *type, json_t *data)
{
	struct rsess *rs = ud;

	if (rs != NULL)
		ms_session_event(rs->s, type, data != NULL ? json_deep_copy(data) : NULL);
}

/*
 * One spare machine, built ahead on a thread of its own for the board
 * configuration the last session was created with (board and cpu only: no
 * memory_map, svd or models). The next create with that configuration
 * takes it and skips Unicorn's set-up on the request: 0.3 ms on an idle
 * daemon, 0.5-0.8 ms with hundreds of engines alive (the TCG context and
 * about 1 MiB of fresh memory faulted in). A spare is a machine nothing has
 * run on, built by the same ms_rh_machine_new from the same options; a
 * board file edited on disk reaches the session after next.
 * pool.mu guards the fields; the thread builds with it released.
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr;
	bool running, stop;
	char board[64], cpu[64]; /* the configuration to keep a spare of; both "" for none */
	unsigned gen; /* changes with board/cpu: a machine built for an older one is dropped */
	struct ms_rh_machine *spare;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* A machine for a board configuration, with no session behind its callbacks yet. */
static int spare_new(const char *board, const char *cpu, struct ms_rh_machine **out,
                     struct ms_err *e)
{
	struct ms_rh_opts o = {
	    .board = board[0] ? board : NULL,
	    .cpu = cpu[0] ? cpu : NULL,
	    .console = console_cb,
	    .event = event_cb,
	};

	return ms_rh_machine_new(&o, out, e);
}

static void *pool_main(void *arg)
{
	pthread_mutex_lock(&pool.mu);
	while (!pool.stop) {
		char board[64], cpu[64];
		unsigned gen = pool.gen;
		struct ms_rh_machine *m = NULL;
		struct ms_err e;

		if (pool.spare != NULL || (pool.board[0] == 0 && pool.cpu[0] == 0)) {
			pthread_cond_wait(&pool.cv, &pool.mu);
			continue;
		}
		memcpy(board, pool.board, sizeof(board));
		memcpy(cpu, pool.cpu, sizeof(cpu));
		pthread_mutex_unlock(&pool.mu);
		ms_err_clear(&e);
		if (spare_new(board, cpu, &m, &e) != 0) {
			/* validate accepted this configuration; a failure here is the host's. */
			ms_warn("rehost: cannot build a spare machine: %s", e.message);
			m = NULL;
		}
		pthread_mutex_lock(&pool.mu);
		if (m == NULL || pool.stop || gen != pool.gen) {
			pthread_mutex_unlock(&pool.mu);
			ms_rh_machine_free(m);
			pthread_mutex_lock(&pool.mu);
			if (m == NULL && gen == pool.gen)
				pthread_cond_wait(&pool.cv,
				                  &pool.mu); /* no retry loop on a host failure */
			continue;
		}
		pool.spare = m;
	}
	pthread_mutex_unlock(&pool.mu);
	return NULL;
}

/*
 * The spare when it was built for board/cpu, else NULL; either way the
 * pool is told to keep a spare of this configuration from now on.
 */
static struct ms_rh_machine *pool_take(const char *board, const char *cpu)
{
	struct ms_rh_machine *m = NULL, *stale = NULL;

	pthread_mutex_lock(&pool.mu);
	if (!pool.running) {
		pthread_mutex_unlock(&pool.mu);
		return NULL;
	}
	if (strcmp(pool.board, board) == 0 && strcmp(pool.cpu, cpu) == 0) {
		m = pool.spare;
	} else {
		snprintf(pool.board, sizeof(pool.board), "%s", board);
		snprintf(pool.cpu, sizeof(pool.cpu), "%s", cpu);
		pool.gen++;
		stale = pool.spare;
	}
	pool.spare = NULL;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	ms_rh_machine_free(stale);
	return m;
}

/* ---- engine thread ---- */

static void pace_reset(struct rsess *rs)
{
	rs->ns0 = ms_rh_machine_now_ns(rs->m);
	clock_gettime(CLOCK_MONOTONIC, &rs->t0);
}

/* Wait until cond is signalled or ns pass. Called with rs->lock held. */
static void wait_ns(struct rsess *rs, int64_t ns)
{
	struct timespec t;
	int64_t at;

	clock_gettime(CLOCK_REALTIME, &t);
	at = (int64_t)t.tv_sec * 1000000000ll + t.tv_nsec + ns;
	t.tv_sec = at / 1000000000ll;
	t.tv_nsec = at % 1000000000ll;
	pthread_cond_timedwait(&rs->cond, &rs->lock, &t);
}

static void *engine_main(void *arg)
{
	struct rsess *rs = arg;
	struct ms_rh_machine *m = rs->m;

	pthread_mutex_lock(&rs->lock);
	pace_reset(rs);
	while (!rs->quit) {
		enum ms_rh_stop st;
		int64_t ahead;

		if (rs->cmd != NULL && !rs->cmd_done) {
			/* The stop request that brought us here was for this command. */
			__atomic_store_n(&m->stop_request, 0, __ATOMIC_SEQ_CST);
			rs->cmd_rc = rs->cmd(rs, rs->cmd_arg, rs->cmd_err);
			rs->cmd_done = true;
			pace_reset(rs);
			pthread_cond_broadcast(&rs->cond);
			continue;
		}
		if (rs->gdb_halted) {
			int r;

			pthread_mutex_unlock(&rs->lock);
			r = ms_rh_gdb_serve(m->gdb, -1);
			pthread_mutex_lock(&rs->lock);
			if (r < 0)
				continue; /* a command or quit first; gdb keeps the guest halted */
			rs->gdb_halted = false;
			if (r == 1) {
				rs->want_run = false;
				continue;
			}
			pthread_mutex_unlock(&rs->lock);
			ms_session_set_state(rs->s, MS_STATE_RUNNING, NULL);
			pthread_mutex_lock(&rs->lock);
			pace_reset(rs);
			continue;
		}
		if (!rs->want_run || !rs->has_program) {
			pthread_cond_wait(&rs->cond, &rs->lock);
			pace_reset(rs); /* virtual time stood still while we were off */
			continue;
		}
		pthread_mutex_unlock(&rs->lock);
		st = ms_rh_machine_run(m, SLICE);
		if (m->gdb != NULL && (st == MS_RH_STOP_BREAK || ms_rh_gdb_poll(m->gdb))) {
			if (st != MS_RH_STOP_BREAK)
				ms_rh_gdb_note_stop(m->gdb, 2, NULL);
			ms_session_set_state(rs->s, MS_STATE_PAUSED, "halted by gdb");
			pthread_mutex_lock(&rs->lock);
			rs->gdb_halted = true;
			continue;
		}
		pthread_mutex_lock(&rs->lock);
		if (st == MS_RH_STOP_LOCKUP || st == MS_RH_STOP_HOST_ERROR) {
			rs->want_run = false;
			pthread_mutex_unlock(&rs->lock);
			ms_session_event(rs->s, "guest_crashed",
			                 json_pack("{s:s}", "report", m->crash));
			ms_session_set_state(rs->s, MS_STATE_ERROR, m->crash);
			pthread_mutex_lock(&rs->lock);
			continue;
		}
		if (st == MS_RH_STOP_IDLE) {
			/* Asleep until input arrives (console_write signals the condition). */
			if (rs->cmd == NULL || rs->cmd_done)
				wait_ns(rs, m->gdb != NULL ? 20000000 : 200000000);
			pace_reset(rs);
			continue;
		}
		/* Keep virtual time from running ahead of wall time by more than 20 ms. */
		ahead = (int64_t)(ms_rh_machine_now_ns(m) - rs->ns0) -
		    (mono_ns() - ((int64_t)rs->t0.tv_sec * 1000000000ll + rs->t0.tv_nsec));
		if (ahead > 20000000 && (rs->cmd == NULL || rs->cmd_done))
			wait_ns(rs, ahead);
	}
	pthread_mutex_unlock(&rs->lock);
	return NULL;
}

/*
 * Run fn on the engine thread and wait for it; before the thread is started
 * the caller is the machine's only user and runs fn itself. Called with
 * s->op_lock held.
 */
static int post(struct rsess *rs, cmd_fn fn, void *arg, struct ms_err *e)
{
	int rc;

	if (!rs->started) {
		/* As the engine thread does: a stop request from before is not for this command. */
		__atomic_store_n(&rs->m->stop_request, 0, __ATOMIC_SEQ_CST);
		return fn(rs, arg, e);
	}
	pthread_mutex_lock(&rs->lock);
	rs->cmd = fn;
	rs->cmd_arg = arg;
	rs->cmd_err = e;
	rs->cmd_done = false;
	ms_rh_machine_request_stop(rs->m);
	pthread_cond_broadcast(&rs->cond);
	while (!rs->cmd_done)
		pthread_cond_wait(&rs->cond, &rs->lock);
	rc = rs->cmd_rc;
	rs->cmd = NULL;
	pthread_mutex_unlock(&rs->lock);
	/* The stop request may not have been consumed if the guest was not running. */
	__atomic_store_n(&rs->m->stop_request, 0, __ATOMIC_SEQ_CST);
	return rc;
}

static void set_run(struct rsess *rs, bool run)
{
	pthread_mutex_lock(&rs->lock);
	rs->want_run = run;
	pthread_cond_broadcast(&rs->cond);
	pthread_mutex_unlock(&rs->lock);
}

/* Start the engine thread (once). Called with s->op_lock held. */
static int engine_start(struct rsess *rs, struct ms_err *e)
{
	if (rs->started)
		return 0;
	if (pthread_create(&rs->thr, NULL, engine_main, rs) != 0)
		return ms_fail(e, 503, "host_failure", "cannot start the engine thread");
	rs->started = true;
	return 0;
}

/* ---- backend functions ---- */

static int rh_init(const struct ms_config *cfg, struct ms_err *e)
{
	uc_engine *uc;

	/*
	 * Unicorn maps a 1 GiB translation buffer per engine and asks for
	 * transparent huge pages on it, so the first translated block of every
	 * session faults in a 2 MiB page: 2 MiB zeroed, 2 MiB more resident
	 * per session, and when the kernel has no free huge page at hand,
	 * direct compaction stalls of 5-7 ms on the create path (measured at
	 * 300 live engines). Guest speed does not change without them
	 * (docs/PERFORMANCE.md). The flag covers the daemon process, and the
	 * QEMU children it spawns inherit it.
	 */
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
		ms_warn("rehost: cannot turn transparent huge pages off: %s", strerror(errno));
	pthread_mutex_lock(&pool.mu);
	pool.stop = false;
	pool.board[0] = pool.cpu[0] = 0;
	pool.running = pthread_create(&pool.thr, NULL, pool_main, NULL) == 0;
	pthread_mutex_unlock(&pool.mu);

	if (uc_open(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, &uc) != UC_ERR_OK)
		return ms_fail(e, 500, "unicorn_failed",
		               "unicorn cannot open an ARM M-profile engine");
	uc_close(uc);
	return 0;
}

static void rh_fini(void)
{
	pthread_mutex_lock(&pool.mu);
	if (!pool.running) {
		pthread_mutex_unlock(&pool.mu);
		return;
	}
	pool.stop = true;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	pthread_join(pool.thr, NULL);
	pthread_mutex_lock(&pool.mu);
	pool.running = false;
	ms_rh_machine_free(pool.spare);
	pool.spare = NULL;
	pthread_mutex_unlock(&pool.mu);
}

static json_t *rh_capabilities(void)
{
	extern const struct ms_backend ms_backend_rehost;
	json_t *cpus = json_array();
	size_t i;

	for (i = 0; ms_rh_cpus[i] != NULL; i++)
		json_array_append_new(cpus, json_string(ms_rh_cpus[i]));
	return json_pack(
	    "{s:s, s:o, s:o, s:[s,s,s], s:[s], s:o, s:s}", "backend", "rehost", "boards",
	    ms_rh_board_list(), "processors", cpus, "peripherals", "cmsdk-uart", "cmsdk-timer",
	    "inferred", "bus_types", "mmio", "operations",
	    ms_backend_operations(&ms_backend_rehost), "notes",
	    "Cortex-M33 without TrustZone (a Secure-only core: no SAU, no Non-secure state, no MPU "
	    "on any core); every model executes the ARMv8-M Mainline instruction set "
	    "underneath (Thumb-2 instructions do not fault on M0/M0+); FP lazy stacking as "
	    "ARMv7-M specifies; a CPACR-denied FP instruction faults (NOCP) at the end of its "
	    "translation block; see docs/ARCHITECTURE.md");
}

#define MAX_SVD 8

static int svd_paths_list(json_t *list, char paths[][512], size_t max, size_t *n, struct ms_err *e);

/*
 * board_config.svd names uploaded files (program ids from POST
 * /api/v1/programs), one or a list: a client must never make the daemon
 * open a host path of its choosing. Fills paths (at most max) from the
 * program store.
 */
static int svd_paths(json_t *bc, char paths[][512], size_t max, size_t *n, struct ms_err *e)
{
	json_t *v = json_object_get(bc, "svd");

	*n = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		json_t *one = json_pack("[O]", v);
		int rc = svd_paths_list(one, paths, max, n, e);

		json_decref(one);
		return rc;
	}
	if (!json_is_array(v))
		return ms_fail(e, 400, "bad_board_config",
		               "board_config.svd is an uploaded program id or a list of them");
	return svd_paths_list(v, paths, max, n, e);
}

static int svd_paths_list(json_t *list, char paths[][512], size_t max, size_t *n, struct ms_err *e)
{
	json_t *item;
	size_t i;

	if (json_array_size(list) > max)
		return ms_fail(e, 400, "bad_board_config", "at most %zu SVD files", max);
	json_array_foreach(list, i, item)
	{
		struct ms_program p;

		if (!json_is_string(item))
			return ms_fail(
			    e, 400, "bad_board_config",
			    "board_config.svd entries are uploaded program ids (strings)");
		if (ms_programs_get(json_string_value(item), &p, e) != 0)
			return ms_fail(e, 400, "bad_board_config",
			               "board_config.svd: no uploaded file %.64s (upload the SVD "
			               "with POST /api/v1/programs)",
			               json_string_value(item));
		snprintf(paths[i], 512, "%s", p.path);
		(*n)++;
	}
	return 0;
}

static int rh_validate(json_t *bc, struct ms_err *e)
{
	const char *board = json_string_value(json_object_get(bc, "board"));
	const char *cpu = json_string_value(json_object_get(bc, "cpu"));
	json_t *mm = json_object_get(bc, "memory_map");
	json_t *models = json_object_get(bc, "models");
	struct ms_rh_board b;
	char paths[MAX_SVD][512];
	size_t n;
	const char *key;
	json_t *val;

	if (!json_is_object(bc))
		return ms_fail(e, 400, "bad_board_config", "board_config must be an object");
	json_object_foreach(bc, key, val)
	{
		if (strcmp(key, "board") != 0 && strcmp(key, "cpu") != 0 &&
		    strcmp(key, "memory_map") != 0 && strcmp(key, "svd") != 0 &&
		    strcmp(key, "models") != 0)
			return ms_fail(
			    e, 400, "bad_board_config",
			    "unknown board_config key \"%.64s\" for rehost (known: board, cpu, "
			    "memory_map, svd, models)",
			    key);
	}
	/* Neither: the core comes from the first program's ELF (choose_cpu), else Cortex-M3. */
	if (board != NULL && ms_rh_board_load(board, &b, e) != 0)
		return e->status == 404
		    ? ms_fail(e, 400, "unknown_board", "unknown board %s", board)
		    : MS_EBADINPUT;
	if (cpu != NULL && ms_rh_cpu_model(cpu, NULL, NULL) < 0)
		return ms_fail(e, 400, "unknown_cpu", "unknown cpu %s for rehost", cpu);
	if (mm != NULL && !json_is_array(mm))
		return ms_fail(e, 400, "bad_board_config", "memory_map must be an array");
	if (models != NULL && !json_is_object(models))
		return ms_fail(e, 400, "bad_board_config",
		               "board_config.models is a device map object (GET .../device_map)");
	return svd_paths(bc, paths, MAX_SVD, &n, e);
}

/*
 * A machine for session s: its board or cpu (cpu overrides s->cpu when not
 * NULL), its SVDs and models. A spare built ahead is taken when the
 * configuration is plain. The machine's callbacks reach rs.
 */
static int make_machine(struct rsess *rs, struct ms_session *s, const char *cpu,
                        struct ms_rh_machine **out, struct ms_err *e)
{
	struct ms_rh_opts o = {0};
	json_t *models = json_object_get(s->board_config, "models");
	char paths[MAX_SVD][512], models_path[600];
	const char *svd[MAX_SVD];
	size_t n_svd = 0;
	int rc;

	*out = NULL;
	if ((rc = svd_paths(s->board_config, paths, MAX_SVD, &n_svd, e)) != 0)
		return rc;
	for (size_t i = 0; i < n_svd; i++)
		svd[i] = paths[i];
	if (models != NULL) {
		/* The engine imports device maps from a file: keep the session's copy in its directory. */
		snprintf(models_path, sizeof(models_path), "%s/models.json", s->dir);
		if (ms_session_run_dir(s) != 0 ||
		    json_dump_file(models, models_path, JSON_COMPACT) != 0)
			return ms_fail(e, 500, "io_error", "cannot write %s", models_path);
		o.models_path = models_path;
	}
	o.board = s->board[0] ? s->board : NULL;
	o.cpu = cpu != NULL ? cpu : s->cpu[0] ? s->cpu : NULL;
	o.memory_map = json_object_get(s->board_config, "memory_map");
	o.svd_paths = n_svd > 0 ? svd : NULL;
	o.n_svd = n_svd;
	o.console = console_cb;
	o.event = event_cb;
	o.ud = rs;
	if (o.memory_map == NULL && n_svd == 0 && models == NULL)
		*out = pool_take(s->board, o.cpu != NULL ? o.cpu : "");
	if (*out != NULL) {
		(*out)->ud = rs; /* the spare's callbacks now reach this session */
		return 0;
	}
	return ms_rh_machine_new(&o, out, e);
}

static int rh_create(struct ms_session *s, struct ms_err *e)
{
	struct rsess *rs = calloc(1, sizeof(*rs));
	int rc;

	if (rs == NULL)
		return ms_fail(e, 500, "internal", "out of memory");
	rs->s = s;
	/* Neither board nor cpu: the program's ELF names its core at load (auto_cpu). */
	rs->auto_cpu = s->board[0] == 0 && s->cpu[0] == 0;
	if ((rc = make_machine(rs, s, NULL, &rs->m, e)) != 0) {
		free(rs);
		return rc;
	}
	pthread_mutex_init(&rs->lock, NULL);
	pthread_cond_init(&rs->cond, NULL);
	s->bdata = rs;
	ms_session_set_state(s, MS_STATE_CREATED, NULL);
	return 0;
}

static void rh_destroy(struct ms_session *s)
{
	struct rsess *rs = s->bdata;

	if (rs == NULL)
		return;
	if (rs->started) {
		pthread_mutex_lock(&rs->lock);
		rs->quit = true;
		ms_rh_machine_request_stop(rs->m);
		pthread_cond_broadcast(&rs->cond);
		pthread_mutex_unlock(&rs->lock);
		pthread_join(rs->thr, NULL);
	}
	if (s->gdb_port != 0) {
		ms_port_free(s->gdb_port);
		s->gdb_port = 0;
	}
	/* No inference view may be reading the machine while it goes. */
	pthread_mutex_lock(&view_lock);
	s->bdata = NULL;
	pthread_mutex_unlock(&view_lock);
	ms_rh_machine_free(rs->m);
	pthread_mutex_destroy(&rs->lock);
	pthread_cond_destroy(&rs->cond);
	free(rs);
}

static int do_reset(struct rsess *rs, void *arg, struct ms_err *e)
{
	return ms_rh_machine_reset(rs->m, e);
}

struct start_arg {
	bool reset; /* from stopped or error: the machine starts from its reset vector */
	int port; /* gdb port to serve on, 0 for none; 0 on return when it failed */
};

/*
 * Everything poweron does on the machine, in one command (one wake-up of a
 * started engine thread): reset when asked, the gdb server, and the check
 * that the guest can run at all, so that "running" is only answered for a
 * machine that runs.
 */
static int do_start(struct rsess *rs, void *arg, struct ms_err *e)
{
	struct start_arg *sa = arg;
	int rc;

	if (sa->reset && (rc = ms_rh_machine_reset(rs->m, e)) != 0)
		return rc;
	if (sa->port > 0 && rs->m->gdb == NULL &&
	    ms_rh_gdb_new(rs->m, sa->port, &rs->m->gdb, e) != 0) {
		ms_warn("session %s: no gdb server: %s", rs->s->id, e->message);
		ms_err_clear(e);
		sa->port = 0;
	}
	if (rs->m->locked_up)
		return ms_fail(e, 502, "guest_crashed", "%s", rs->m->crash);
	rs->want_run = true;
	return 0;
}

static int rh_power_on(struct ms_session *s, struct ms_err *e)
{
	struct rsess *rs = s->bdata;
	enum ms_state st = ms_session_state(s);
	struct start_arg sa = {.reset = st == MS_STATE_STOPPED || st == MS_STATE_ERROR};
	int rc, fresh = 0;

	if (!rs->has_program)
		return ms_fail(e, 409, "no_program", "load a program before powering on");
	pthread_mutex_lock(&s->lock);
	sa.port = s->gdb_port;
	pthread_mutex_unlock(&s->lock);
	if (sa.port == 0) {
		fresh = ms_port_alloc();
		sa.port = fresh > 0 ? fresh : 0;
	}
	rc = post(rs, do_start, &sa, e);
	if (fresh > 0) {
		if (sa.port > 0) {
			pthread_mutex_lock(&s->lock);
			s->gdb_port = sa.port;
			pthread_mutex_unlock(&s->lock);
		} else {
			ms_port_free(fresh);
		}
	}
	if (rc != 0) {
		if (rs->m->locked_up) {
			/* Reported as the engine thread would have: an event and the error state. */
			ms_session_event(s, "guest_crashed",
			                 json_pack("{s:s}", "report", rs->m->crash));
			ms_session_set_state(s, MS_STATE_ERROR, rs->m->crash);
		}
		return rc;
	}
	/* A started thread saw want_run after the command; a new one starts running at once. */
	if ((rc = engine_start(rs, e)) != 0)
		rs->want_run = false;
	return rc;
}

/* Poweroff and pause: the engine stops the guest and keeps it as it is; only the state differs. */
static int halt_as(struct ms_session *s, enum ms_state st)
{
	struct rsess *rs = s->bdata;

	set_run(rs, false);
	ms_rh_machine_request_stop(rs->m);
	ms_session_set_state(s, st, NULL);
	return 0;
}

static int rh_power_off(struct ms_session *s, struct ms_err *e)
{
	return halt_as(s, MS_STATE_STOPPED);
}

static int rh_pause(struct ms_session *s, struct ms_err *e)
{
	return halt_as(s, MS_STATE_PAUSED);
}

static int rh_reset(struct ms_session *s, struct ms_err *e)
{
	struct rsess *rs = s->bdata;
	int rc;

	if (!rs->has_program)
		return ms_fail(e, 409, "no_program", "no program loaded");
	if ((rc = post(rs, do_reset, NULL, e)) != 0)
		return rc;
	if (ms_session_state(s) == MS_STATE_ERROR) {
		set_run(rs, true);
		if ((rc = engine_start(rs, e)) != 0)
			return rc;
		ms_session_set_state(s, MS_STATE_RUNNING, NULL);
	}
	return 0;
}

struct load_arg {
	const char *path;
	uint64_t addr;
};

/*
 * A session created with neither board nor cpu runs the core its first
 * program was built for (the ELF's ARM build attributes, core/image.h):
 * the machine made at create (Cortex-M3) is replaced by one for that core
 * while nothing has run on it yet. Unicorn fixes the CPU model when the
 * engine is opened, hence a new machine rather than a switch.
 */
static int choose_cpu(struct rsess *rs, const struct ms_image *img, struct ms_err *e)
{
	struct ms_rh_machine *m;
	int rc;

	if (!rs->auto_cpu || rs->started || rs->m->ran || rs->m->cov != NULL || img->cpu[0] == 0)
		return 0;
	rs->auto_cpu = false;
	if (strcmp(img->cpu, rs->m->board.cpu) == 0)
		return 0;
	if ((rc = make_machine(rs, rs->s, img->cpu, &m, e)) != 0)
		return rc;
	pthread_mutex_lock(&view_lock);
	ms_rh_machine_free(rs->m);
	rs->m = m;
	pthread_mutex_unlock(&view_lock);
	ms_session_event(rs->s, "cpu",
	                 json_pack("{s:s,s:s}", "cpu", img->cpu, "from", "build attributes"));
	return 0;
}

static int do_load(struct rsess *rs, void *arg, struct ms_err *e)
{
	struct load_arg *la = arg;
	struct ms_image img;
	int rc;

	if ((rc = ms_image_load_file(la->path, la->addr, 256u << 20, &img, e)) != 0)
		return rc;
	if ((rc = choose_cpu(rs, &img, e)) != 0) {
		ms_image_free(&img);
		return rc;
	}
	rc = ms_rh_machine_load(rs->m, &img, e);
	ms_image_free(&img);
	if (rc == 0)
		rs->has_program = true;
	return rc;
}

static int rh_load_program(struct ms_session *s, const struct ms_program *p, bool has_addr,
                           uint64_t addr, struct ms_err *e)
{
	struct rsess *rs = s->bdata;
	struct load_arg la = {.path = p->path, .addr = has_addr ? addr : 0};

	if (p->format == MS_IMAGE_ELF && (p->elf_class != 32 || strcmp(p->arch, "arm") != 0))
		return ms_fail(e, 400, "incompatible_program",
		               "rehost runs 32-bit ARM Cortex-M programs, this one is %s",
		               p->arch[0] ? p->arch : "of unknown architecture");
	return post(rs, do_load, &la, e);
}

struct snap_arg {
	char path[1100];
	uint64_t size;
};

static void snap_path(struct ms_session *s, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/rehost-snap-%s.bin", s->dir, name);
}

static int do_snap_save(struct rsess *rs, void *arg, struct ms_err *e)
{
	struct snap_arg *sa = arg;
	struct ms_rh_snapshot *snap = ms_rh_snapshot_take(rs->m);
	int rc;

	if (snap == NULL)
		return ms_fail(e, 500, "internal", "out of memory for the snapshot");
	rc = ms_rh_snapshot_write(snap, sa->path, e);
	sa->size = ms_rh_snapshot_size(snap);
	ms_rh_snapshot_free(snap);
	return rc;
}

static int do_snap_load(struct rsess *rs, void *arg, struct ms_err *e)
{
	struct snap_arg *sa = arg;
	struct ms_rh_snapshot *snap;
	int rc;

	if ((rc = ms_rh_snapshot_read(rs->m, sa->path, &snap, e)) != 0)
		return rc;
	rc = ms_rh_snapshot_restore(rs->m, snap, e);
	ms_rh_snapshot_free(snap);
	return rc;
}

static int rh_snapshot_save(struct ms_session *s, const char *name, uint64_t *size,
                            struct ms_err *e)
{
	struct rsess *rs = s->bdata;
	struct snap_arg sa;
	int rc;

	if (!rs->has_program)
		return ms_fail(e, 409, "no_program", "nothing to snapshot: no program loaded");
	if ((rc = ms_session_run_dir(s)) != 0)
		return ms_fail(e, 503, "host_failure", "cannot create the session directory: %s",
		               strerror(-rc));
	snap_path(s, name, sa.path, sizeof(sa.path));
	rc = post(rs, do_snap_save, &sa, e);
	if (rc == 0)
		*size = sa.size;
	return rc;
}

static int rh_snapshot_load(struct ms_session *s, const char *name, struct ms_err *e)
{
	struct rsess *rs = s->bdata;
	struct snap_arg sa;

	snap_path(s, name, sa.path, sizeof(sa.path));
	return post(rs, do_snap_load, &sa, e);
}

static int rh_snapshot_delete(struct ms_session *s, const char *name, struct ms_err *e)
{
	char path[1100];

	snap_path(s, name, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
		return ms_fail(e, 500, "io_error", "cannot delete snapshot %s: %s", name,
		               strerror(errno));
	return 0;
}

static int rh_console_write(struct ms_session *s, const void *data, size_t len)
{
	struct rsess *rs = s->bdata;

	ms_rh_machine_input_push(rs->m, data, len);
	pthread_mutex_lock(&rs->lock);
	pthread_cond_broadcast(&rs->cond);
	pthread_mutex_unlock(&rs->lock);
	return 0;
}

struct map_arg {
	json_t *out;
};

static int do_map(struct rsess *rs, void *arg, struct ms_err *e)
{
	((struct map_arg *)arg)->out = ms_rh_machine_device_map(rs->m);
	return 0;
}

static int rh_device_map(struct ms_session *s, json_t **out, struct ms_err *e)
{
	struct rsess *rs = s->bdata;
	struct map_arg ma = {0};
	int rc = post(rs, do_map, &ma, e);

	*out = ma.out;
	return rc;
}

static int do_cov_start(struct rsess *rs, void *arg, struct ms_err *e)
{
	struct ms_rh_cov *cov = rs->m->cov;

	if (cov == NULL) {
		cov = ms_rh_cov_new();
		if (cov == NULL)
			return ms_fail(e, 500, "internal", "out of memory");
	} else {
		ms_rh_cov_reset(cov);
	}
	ms_rh_machine_cov_attach(rs->m, cov);
	return 0;
}

static int do_cov_stop(struct rsess *rs, void *arg, struct ms_err *e)
{
	if (rs->m->cov == NULL)
		return ms_fail(e, 409, "coverage_not_started", "coverage was not started");
	*(json_t **)arg = ms_rh_cov_json(rs->m->cov, 100000);
	ms_rh_cov_free(rs->m->cov);
	ms_rh_machine_cov_attach(rs->m, NULL);
	return 0;
}

static int rh_coverage_start(struct ms_session *s, struct ms_err *e)
{
	return post(s->bdata, do_cov_start, NULL, e);
}

static int rh_coverage_stop(struct ms_session *s, json_t **report, struct ms_err *e)
{
	*report = NULL;
	return post(s->bdata, do_cov_stop, report, e);
}

/*
 * The start of an inference view: 0 with view_lock held and *rso's
 * machine carrying an inference module, else the error with the lock
 * released (409 no engine any more, 501 inference off).
 */
static int view_begin(struct ms_session *s, struct rsess **rso, struct ms_err *e)
{
	struct rsess *rs;

	pthread_mutex_lock(&view_lock);
	rs = s->bdata;
	if (rs == NULL) {
		pthread_mutex_unlock(&view_lock);
		ms_fail(e, 409, "session_gone", "session %s has no engine", s->id);
		return MS_ESTATE;
	}
	if (rs->m->inf == NULL) {
		pthread_mutex_unlock(&view_lock);
		ms_fail(e, 501, "inference_off", "peripheral inference is off for session %s",
		        s->id);
		return MS_EUNSUPPORTED;
	}
	*rso = rs;
	return 0;
}

static int rh_peripherals(struct ms_session *s, json_t **out, struct ms_err *e)
{
	struct rsess *rs;
	json_t *arr;
	int i, rc;

	if ((rc = view_begin(s, &rs, e)) != 0)
		return rc;
	/* Declared (board) devices first; they are fixed after creation. */
	arr = json_array();
	for (i = 0; i < rs->m->n_devs; i++) {
		struct ms_rh_dev *d = &rs->m->devs[i];

		json_array_append_new(arr,
		                      json_pack("{s:s, s:I, s:I, s:s, s:s, s:[]}", "name", d->name,
		                                "base", (json_int_t)d->base, "size",
		                                (json_int_t)d->size, "source", "board", "type",
		                                d->type, "registers"));
	}
	{
		json_t *inferred = ms_infer_peripherals(rs->m->inf);

		if (inferred != NULL)
			json_array_extend(arr, inferred);
		json_decref(inferred);
	}
	pthread_mutex_unlock(&view_lock);
	*out = arr;
	return 0;
}

static int rh_peripheral_patch(struct ms_session *s, json_t *patch, struct ms_err *e)
{
	struct rsess *rs;
	int rc;

	if ((rc = view_begin(s, &rs, e)) != 0)
		return rc;
	rc = ms_infer_patch(rs->m->inf, patch, e);
	pthread_mutex_unlock(&view_lock);
	return rc;
}

static int rh_mmio_recent(struct ms_session *s, uint64_t from, size_t limit, json_t **out,
                          struct ms_err *e)
{
	struct rsess *rs;
	int rc;

	if ((rc = view_begin(s, &rs, e)) != 0)
		return rc;
	*out = ms_infer_mmio_recent(rs->m->inf, from, limit);
	pthread_mutex_unlock(&view_lock);
	return *out != NULL ? 0 : ms_fail(e, 500, "internal", "out of memory");
}

static int rh_models_export(struct ms_session *s, json_t **out, struct ms_err *e)
{
	struct rsess *rs;
	int rc;

	if ((rc = view_begin(s, &rs, e)) != 0)
		return rc;
	*out = ms_infer_export(rs->m->inf);
	pthread_mutex_unlock(&view_lock);
	return *out != NULL ? 0 : ms_fail(e, 500, "internal", "out of memory");
}

struct run_arg {
	uint64_t insns;
};

static int do_run_insns(struct rsess *rs, void *arg, struct ms_err *e)
{
	struct run_arg *ra = arg;
	uint64_t end = rs->m->icount + ra->insns;

	while (rs->m->icount < end) {
		enum ms_rh_stop st = ms_rh_machine_run(rs->m, end - rs->m->icount);

		if (st == MS_RH_STOP_LOCKUP || st == MS_RH_STOP_HOST_ERROR)
			return ms_fail(e, 502, "guest_crashed", "%s", rs->m->crash);
		if (st == MS_RH_STOP_IDLE) {
			/* Asleep with nothing scheduled: time passes without events. */
			rs->m->icount = end;
			break;
		}
		if (st == MS_RH_STOP_BREAK || st == MS_RH_STOP_REQUEST)
			break;
	}
	return 0;
}

static int run_paused(struct ms_session *s, uint64_t insns, struct ms_err *e)
{
	struct rsess *rs = s->bdata;
	struct run_arg ra = {.insns = insns};

	if (!rs->has_program)
		return ms_fail(e, 409, "no_program", "no program loaded");
	if (ms_session_state(s) != MS_STATE_PAUSED && ms_session_state(s) != MS_STATE_CREATED)
		return ms_fail(e, 409, "not_paused", "step and run_for need a paused session");
	return post(rs, do_run_insns, &ra, e);
}

static int rh_step(struct ms_session *s, uint64_t insns, struct ms_err *e)
{
	if (insns == 0 || insns > 1000000000000ull)
		return ms_fail(e, 400, "bad_request", "insns must be 1..1e12");
	return run_paused(s, insns, e);
}

static int rh_run_for(struct ms_session *s, uint64_t virtual_ns, struct ms_err *e)
{
	struct rsess *rs = s->bdata;
	unsigned __int128 n = (unsigned __int128)virtual_ns * rs->m->cpu_hz / 1000000000u;

	if (virtual_ns == 0 || n == 0 || n > 1000000000000ull)
		return ms_fail(e, 400, "bad_request", "virtual_ns out of range");
	return run_paused(s, (uint64_t)n, e);
}

struct inject_arg {
	json_t *event;
	json_t *decision; /* out */
};

static int do_inject(struct rsess *rs, void *arg, struct ms_err *e)
{
	struct inject_arg *ia = arg;

	if (rs->m->inf == NULL)
		return ms_fail(e, 501, "not_supported",
		               "this session runs without peripheral inference");
	return ms_infer_inject_ex(rs->m->inf, ia->event, &ia->decision, e);
}

/* On the engine thread: the event may raise an interrupt through the NVIC. */
static int rh_inject_event(struct ms_session *s, json_t *event, json_t **decision, struct ms_err *e)
{
	struct inject_arg ia = {.event = event};
	int rc = post(s->bdata, do_inject, &ia, e);

	*decision = ia.decision;
	return rc;
}

const struct ms_backend ms_backend_rehost = {
    .name = "rehost",
    .lazy_run_dir = true,
    .init = rh_init,
    .fini = rh_fini,
    .capabilities = rh_capabilities,
    .validate = rh_validate,
    .create = rh_create,
    .destroy = rh_destroy,
    .power_on = rh_power_on,
    .power_off = rh_power_off,
    .pause = rh_pause,
    .reset = rh_reset,
    .load_program = rh_load_program,
    .snapshot_save = rh_snapshot_save,
    .snapshot_load = rh_snapshot_load,
    .snapshot_delete = rh_snapshot_delete,
    .console_write = rh_console_write,
    .device_map = rh_device_map,
    .coverage_start = rh_coverage_start,
    .coverage_stop = rh_coverage_stop,
    .peripherals = rh_peripherals,
    .peripheral_patch = rh_peripheral_patch,
    .mmio_recent = rh_mmio_recent,
    .models_export = rh_models_export,
    .step = rh_step,
    .run_for = rh_run_for,
    .inject_event = rh_inject_event,
};
