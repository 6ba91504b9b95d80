/*
 * session: registry, state machine and control entry points; see session.h.
 *
 * Threads: API worker threads call the control functions; backend threads
 * call ms_session_set_state / ms_session_event / ms_session_set_extra; the
 * reaper thread, once a second, flushes the console and event logs (they are
 * written behind their rings) and deletes sessions idle past
 * resources.session_timeout.
 * Locks: reg_mu guards the table (sessions[] and n_sessions); s->op_lock
 * serialises control operations on one session; s->lock guards its mutable
 * fields; s->io_gate lets console writes (which do not take op_lock) run
 * together but not across the moment the session is marked destroyed, after
 * which no control operation or console write reaches the backend (a request
 * or a WebSocket may still hold a session that is being deleted).
 * Order: op_lock, then io_gate, then lock; reg_mu is never held while taking
 * either of a session's locks except in ms_sessions_count, which takes only
 * s->lock briefly.
 */
#include "core/session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/log.h"
#include "core/program.h"
#include "core/store.h"
#include "core/stream.h"

#define CONSOLE_RING (256 * 1024)
#define EVENTS_RING (64 * 1024)

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ms_session **sessions;
static size_t n_sessions, cap_sessions;
static const struct ms_config *config;
static char sessions_dir[512];
static pthread_t reaper;
static bool reaper_running;
static pthread_mutex_t reaper_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reaper_cv = PTHREAD_COND_INITIALIZER;
static bool reaper_stop;

static const char *state_names[MS_STATE_COUNT] = {
    "created", "running", "paused", "stopped", "error",
};

const char *ms_state_name(enum ms_state st)
{
	return (unsigned)st < MS_STATE_COUNT ? state_names[st] : "unknown";
}

static int state_from_name(const char *name)
{
	for (int i = 0; i < MS_STATE_COUNT; i++) {
		if (name != NULL && strcmp(name, state_names[i]) == 0)
			return i;
	}
	return -1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void rfc3339(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

bool ms_valid_name(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static void random_hex(char *out, size_t nbytes)
{
	unsigned char raw[32];
	static const char hex[] = "0123456789abcdef";

	if (nbytes > sizeof(raw))
		nbytes = sizeof(raw);
	if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes) {
		/* getrandom on Linux does not fail for small requests; keep ids unique anyway. */
		static atomic_ulong fallback;
		unsigned long v = atomic_fetch_add(&fallback, 1) ^ (unsigned long)now_ms();

		for (size_t i = 0; i < nbytes; i++)
			raw[i] = (unsigned char)(v >> ((i % 8) * 8));
	}
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
}

/* ---- lifetime --------------------------------------------------------- */

static struct ms_session *session_alloc(void)
{
	struct ms_session *s = calloc(1, sizeof(*s));
	pthread_rwlockattr_t ga;

	if (s == NULL)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->op_lock, NULL);
	/* Writer first: a stream typing without pause must not hold a delete off. */
	pthread_rwlockattr_init(&ga);
	pthread_rwlockattr_setkind_np(&ga, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->io_gate, &ga);
	pthread_rwlockattr_destroy(&ga);
	s->refs = 1;
	s->extra = json_object();
	return s;
}

void ms_session_get(struct ms_session *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_SEQ_CST);
}

void ms_session_put(struct ms_session *s)
{
	if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_SEQ_CST) != 0)
		return;
	if (s->console != NULL) {
		ms_stream_close(s->console);
		ms_stream_unref(s->console);
	}
	if (s->events != NULL) {
		ms_stream_close(s->events);
		ms_stream_unref(s->events);
	}
	json_decref(s->board_config);
	json_decref(s->extra);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->op_lock);
	pthread_rwlock_destroy(&s->io_gate);
	free(s);
}

static int open_streams(struct ms_session *s)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/console.log", s->dir);
	s->console = ms_stream_new(CONSOLE_RING, path);
	snprintf(path, sizeof(path), "%s/events.log", s->dir);
	s->events = ms_stream_new(EVENTS_RING, path);
	return s->console != NULL && s->events != NULL ? 0 : -ENOMEM;
}

static int registry_add(struct ms_session *s)
{
	pthread_mutex_lock(&reg_mu);
	if (n_sessions == cap_sessions) {
		size_t cap = cap_sessions ? cap_sessions * 2 : 16;
		struct ms_session **n = realloc(sessions, cap * sizeof(*n));

		if (n == NULL) {
			pthread_mutex_unlock(&reg_mu);
			return -ENOMEM;
		}
		sessions = n;
		cap_sessions = cap;
	}
	sessions[n_sessions++] = s;
	pthread_mutex_unlock(&reg_mu);
	return 0;
}

/* Remove from the table; returns the registry's reference or NULL. */
static struct ms_session *registry_take(const char *id)
{
	struct ms_session *s = NULL;

	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < n_sessions; i++) {
		if (strcmp(sessions[i]->id, id) == 0) {
			s = sessions[i];
			sessions[i] = sessions[--n_sessions];
			break;
		}
	}
	pthread_mutex_unlock(&reg_mu);
	return s;
}

struct ms_session *ms_session_find(const char *id)
{
	struct ms_session *s = NULL;

	if (id == NULL)
		return NULL;
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < n_sessions; i++) {
		if (strcmp(sessions[i]->id, id) == 0) {
			s = sessions[i];
			ms_session_get(s);
			break;
		}
	}
	pthread_mutex_unlock(&reg_mu);
	if (s != NULL) {
		pthread_mutex_lock(&s->lock);
		s->last_used_ms = now_ms();
		pthread_mutex_unlock(&s->lock);
	}
	return s;
}

bool ms_sessions_program_in_use(const char *program_id, char *session_id, size_t cap)
{
	bool used = false;

	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < n_sessions && !used; i++) {
		struct ms_session *s = sessions[i];

		pthread_mutex_lock(&s->lock);
		if (strcmp(s->program_id, program_id) == 0) {
			used = true;
			snprintf(session_id, cap, "%s", s->id);
		}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&reg_mu);
	return used;
}

unsigned ms_sessions_total(void)
{
	unsigned n;

	pthread_mutex_lock(&reg_mu);
	n = (unsigned)n_sessions;
	pthread_mutex_unlock(&reg_mu);
	return n;
}

/* A new reference to every session, for walking without reg_mu held. */
static struct ms_session **snapshot_all(size_t *n)
{
	struct ms_session **all;

	pthread_mutex_lock(&reg_mu);
	all = calloc(n_sessions ? n_sessions : 1, sizeof(*all));
	*n = 0;
	if (all != NULL) {
		for (size_t i = 0; i < n_sessions; i++) {
			all[i] = sessions[i];
			ms_session_get(all[i]);
		}
		*n = n_sessions;
	}
	pthread_mutex_unlock(&reg_mu);
	return all;
}

static void put_all(struct ms_session **all, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ms_session_put(all[i]);
	free(all);
}

/* ---- persistence and views ------------------------------------------- */

json_t *ms_session_json(struct ms_session *s)
{
	char created[32];
	char url[256];
	json_t *o;
	const char *key;
	json_t *val;

	rfc3339(s->created_at_ms, created);
	snprintf(url, sizeof(url), "ws://%s:%d/api/v1/sessions/%s/stream/console",
	         config != NULL ? config->server.bind : "127.0.0.1",
	         config != NULL ? config->server.port : 8080, s->id);
	o = json_object();
	json_object_set_new(o, "id", json_string(s->id));
	json_object_set_new(o, "backend", json_string(s->backend->name));
	json_object_set_new(o, "board", json_string(s->board));
	if (s->cpu[0] != '\0')
		json_object_set_new(o, "cpu", json_string(s->cpu));
	json_object_set(o, "board_config", s->board_config);
	json_object_set_new(o, "console_url", json_string(url));
	json_object_set_new(o, "created_at", json_string(created));
	pthread_mutex_lock(&s->lock);
	json_object_set_new(o, "state", json_string(ms_state_name(s->state)));
	if (s->state == MS_STATE_ERROR || s->reason[0] != '\0')
		json_object_set_new(o, "reason", json_string(s->reason));
	json_object_set_new(o, "gdb_port",
	                    s->gdb_port > 0 ? json_integer(s->gdb_port) : json_null());
	json_object_set_new(o, "program_id",
	                    s->program_id[0] ? json_string(s->program_id) : json_null());
	if (s->has_load_addr) {
		char a[24];

		snprintf(a, sizeof(a), "0x%llx", (unsigned long long)s->load_addr);
		json_object_set_new(o, "load_address", json_string(a));
	}
	json_object_foreach(s->extra, key, val)
	{
		if (json_object_get(o, key) == NULL)
			json_object_set(o, key, val);
	}
	pthread_mutex_unlock(&s->lock);
	return o;
}

static void persist(struct ms_session *s)
{
	json_t *doc = ms_session_json(s);

	json_object_set_new(doc, "created_at_ms", json_integer(s->created_at_ms));
	json_object_set_new(doc, "dir", json_string(s->dir));
	if (ms_store_put(MS_TABLE_SESSIONS, s->id, NULL, doc) != 0)
		ms_warn("cannot persist session %s", s->id);
	json_decref(doc);
}

json_t *ms_sessions_list_json(void)
{
	size_t n;
	struct ms_session **all = snapshot_all(&n);
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, ms_session_json(all[i]));
	put_all(all, n);
	return arr;
}

void ms_sessions_count(void (*cb)(const char *backend, enum ms_state st, unsigned n, void *ud),
                       void *ud)
{
	/* Tally per (backend index, state) without holding reg_mu across callbacks. */
	unsigned counts[16][MS_STATE_COUNT];
	const struct ms_backend *names[16];
	size_t nb = 0, n;
	struct ms_session **all = snapshot_all(&n);

	memset(counts, 0, sizeof(counts));
	for (size_t i = 0; ms_backends[i] != NULL && nb < 16; i++)
		names[nb++] = ms_backends[i];
	for (size_t i = 0; i < n; i++) {
		enum ms_state st = ms_session_state(all[i]);

		for (size_t b = 0; b < nb; b++) {
			if (names[b] == all[i]->backend)
				counts[b][st]++;
		}
	}
	put_all(all, n);
	for (size_t b = 0; b < nb; b++) {
		if (ms_backend_find(names[b]->name) == NULL)
			continue;
		for (int st = 0; st < MS_STATE_COUNT; st++)
			cb(names[b]->name, (enum ms_state)st, counts[b][st], ud);
	}
}

/* ---- state and events ------------------------------------------------- */

enum ms_state ms_session_state(struct ms_session *s)
{
	enum ms_state st;

	pthread_mutex_lock(&s->lock);
	st = s->state;
	pthread_mutex_unlock(&s->lock);
	return st;
}

void ms_session_event(struct ms_session *s, const char *type, json_t *data)
{
	char when[32];
	json_t *ev = json_object();
	char *line;

	rfc3339(now_ms(), when);
	json_object_set_new(ev, "type", json_string(type));
	json_object_set_new(ev, "time", json_string(when));
	json_object_set_new(ev, "session", json_string(s->id));
	json_object_set_new(ev, "data", data != NULL ? data : json_object());
	line = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (line != NULL) {
		size_t n = strlen(line);

		line[n] = '\n';
		ms_stream_write(s->events, line, n + 1);
		free(line);
	}
}

void ms_session_set_state(struct ms_session *s, enum ms_state st, const char *reason)
{
	enum ms_state old;
	bool changed;

	pthread_mutex_lock(&s->lock);
	old = s->state;
	changed = old != st || (reason != NULL && strcmp(reason, s->reason) != 0);
	s->state = st;
	if (st == MS_STATE_ERROR)
		s->error_seq++;
	if (reason != NULL)
		snprintf(s->reason, sizeof(s->reason), "%s", reason);
	else if (st != MS_STATE_ERROR)
		s->reason[0] = '\0';
	pthread_mutex_unlock(&s->lock);
	if (!changed)
		return;
	persist(s);
	{
		json_t *d =
		    json_pack("{s:s,s:s}", "from", ms_state_name(old), "state", ms_state_name(st));

		if (reason != NULL)
			json_object_set_new(d, "reason", json_string(reason));
		ms_session_event(s, "state", d);
	}
	if (st == MS_STATE_ERROR)
		ms_warn("session %s: error: %s", s->id, reason != NULL ? reason : "");
}

void ms_session_set_extra(struct ms_session *s, const char *key, json_t *value)
{
	pthread_mutex_lock(&s->lock);
	if (value == NULL)
		json_object_del(s->extra, key);
	else
		json_object_set_new(s->extra, key, value);
	pthread_mutex_unlock(&s->lock);
}

/* ---- creation and deletion ------------------------------------------- */

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -errno;
	return chmod(path, 0700) == 0 ? 0 : -errno;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void fill_board(struct ms_session *s)
{
	const char *board = json_string_value(json_object_get(s->board_config, "board"));
	const char *cpu = json_string_value(json_object_get(s->board_config, "cpu"));

	snprintf(s->board, sizeof(s->board), "%s", board != NULL ? board : "");
	snprintf(s->cpu, sizeof(s->cpu), "%s", cpu != NULL ? cpu : "");
}

int ms_sessions_create(const char *backend, json_t *board_config, struct ms_session **out,
                       struct ms_err *e)
{
	const struct ms_backend *b;
	struct ms_session *s;
	int rc;
	/* Where the time goes, logged at debug level (docs/PERFORMANCE.md). */
	int64_t t_start = mono_us(), t_alloc, t_dir, t_backend, t_registry, t_persist;

	if (backend == NULL || backend[0] == '\0')
		return ms_fail(e, 400, "bad_request", "missing \"backend\"");
	b = ms_backend_find(backend);
	if (b == NULL) {
		bool known = false;

		for (size_t i = 0; ms_backends[i] != NULL; i++)
			known = known || strcmp(ms_backends[i]->name, backend) == 0;
		if (known)
			return ms_fail(e, 501, "backend_disabled",
			               "backend %s is not enabled or not installed on this host",
			               backend);
		return ms_fail(e, 400, "unknown_backend", "unknown backend \"%.64s\"", backend);
	}
	if (board_config != NULL && !json_is_object(board_config))
		return ms_fail(e, 400, "bad_request", "\"board_config\" must be an object");
	if (config->resources.max_sessions > 0 &&
	    ms_sessions_total() >= config->resources.max_sessions)
		return ms_fail(e, 429, "too_many_sessions", "session limit reached (%u)",
		               config->resources.max_sessions);
	if (board_config == NULL)
		board_config = json_object();
	else
		json_incref(board_config);
	if (b->validate != NULL && (rc = b->validate(board_config, e)) != 0) {
		json_decref(board_config);
		return rc;
	}

	s = session_alloc();
	if (s == NULL) {
		json_decref(board_config);
		return ms_fail(e, 503, "out_of_memory", "cannot allocate a session");
	}
	s->backend = b;
	s->board_config = board_config;
	fill_board(s);
	memcpy(s->id, "sess_", 5);
	random_hex(s->id + 5, 8);
	s->created_at_ms = now_ms();
	s->last_used_ms = s->created_at_ms;
	s->state = MS_STATE_CREATED;
	snprintf(s->dir, sizeof(s->dir), "%s/%s", sessions_dir, s->id);
	t_alloc = mono_us();
	if ((!b->lazy_run_dir && (rc = make_dir(s->dir)) != 0) || (rc = open_streams(s)) != 0) {
		ms_session_put(s);
		return ms_fail(e, 503, "host_failure", "cannot create the session directory: %s",
		               ms_strerror(rc));
	}
	t_dir = mono_us();
	pthread_mutex_lock(&s->op_lock);
	rc = b->create(s, e);
	pthread_mutex_unlock(&s->op_lock);
	t_backend = mono_us();
	if (rc != 0) {
		nftw(s->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		ms_session_put(s);
		return rc;
	}
	/*
	 * Checked again after the (slow) create so that concurrent creates
	 * cannot overshoot the limit: the loser is destroyed.
	 */
	pthread_mutex_lock(&reg_mu);
	if (config->resources.max_sessions > 0 && n_sessions >= config->resources.max_sessions) {
		pthread_mutex_unlock(&reg_mu);
		pthread_mutex_lock(&s->op_lock);
		b->destroy(s);
		pthread_mutex_unlock(&s->op_lock);
		nftw(s->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		ms_session_put(s);
		return ms_fail(e, 429, "too_many_sessions", "session limit reached (%u)",
		               config->resources.max_sessions);
	}
	pthread_mutex_unlock(&reg_mu);
	if (registry_add(s) != 0) {
		pthread_mutex_lock(&s->op_lock);
		b->destroy(s);
		pthread_mutex_unlock(&s->op_lock);
		ms_session_put(s);
		return ms_fail(e, 503, "out_of_memory", "cannot register the session");
	}
	t_registry = mono_us();
	persist(s);
	t_persist = mono_us();
	ms_session_event(s, "created",
	                 json_pack("{s:s,s:s}", "backend", b->name, "board", s->board));
	ms_info("session %s created (%s, board %s)", s->id, b->name, s->board);
	ms_debug("session %s create: validate %lld us, session + streams %lld us, backend %lld us, "
	         "registry %lld us, store %lld us, event + log %lld us",
	         s->id, (long long)(t_alloc - t_start), (long long)(t_dir - t_alloc),
	         (long long)(t_backend - t_dir), (long long)(t_registry - t_backend),
	         (long long)(t_persist - t_registry), (long long)(mono_us() - t_persist));
	ms_session_get(s);
	*out = s;
	return 0;
}

int ms_session_run_dir(struct ms_session *s)
{
	return make_dir(s->dir);
}

static void destroy_and_forget(struct ms_session *s, bool remove_files)
{
	pthread_mutex_lock(&s->op_lock);
	/* Waits for console writes under way; later ones see the flag. */
	pthread_rwlock_wrlock(&s->io_gate);
	s->destroyed = true;
	pthread_rwlock_unlock(&s->io_gate);
	s->backend->destroy(s);
	pthread_mutex_unlock(&s->op_lock);
	if (remove_files) {
		ms_store_delete(MS_TABLE_SESSIONS, s->id);
		ms_store_delete_owned(MS_TABLE_SNAPSHOTS, s->id);
		nftw(s->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
}

int ms_sessions_delete(const char *id, struct ms_err *e)
{
	struct ms_session *s = registry_take(id);

	if (s == NULL)
		return ms_fail(e, 404, "session_not_found", "no session %.64s", id);
	ms_session_event(s, "deleted", NULL);
	/*
	 * Open WebSocket bridges see EOF and close with 1001 instead of waiting
	 * forever. Closed first, so that a late flush of the logs cannot bring
	 * the run directory back after it is removed.
	 */
	ms_stream_close(s->console);
	ms_stream_close(s->events);
	destroy_and_forget(s, true);
	ms_info("session %s deleted", s->id);
	ms_session_put(s);
	return 0;
}

/* ---- control ----------------------------------------------------------- */

/*
 * Take op_lock for a control operation. False, with the lock not held and e
 * filled, when the session was deleted while the caller held it: its backend
 * has let it go and must not be called again.
 */
static bool op_begin(struct ms_session *s, struct ms_err *e)
{
	pthread_mutex_lock(&s->op_lock);
	if (!s->destroyed)
		return true;
	pthread_mutex_unlock(&s->op_lock);
	ms_fail(e, 404, "session_not_found", "session %s was deleted", s->id);
	return false;
}

static int unsupported(struct ms_session *s, const char *op, struct ms_err *e)
{
	return ms_fail(e, 501, "not_supported", "backend %s does not support %s", s->backend->name,
	               op);
}

static int wrong_state(struct ms_session *s, enum ms_state st, const char *op, struct ms_err *e)
{
	if (st == MS_STATE_ERROR) {
		char reason[512];

		pthread_mutex_lock(&s->lock);
		snprintf(reason, sizeof(reason), "%s", s->reason);
		pthread_mutex_unlock(&s->lock);
		return ms_fail(e, 409, "invalid_state", "cannot %s session %s: it is in error (%s)",
		               op, s->id, reason);
	}
	return ms_fail(e, 409, "invalid_state", "cannot %s session %s while it is %s", op, s->id,
	               ms_state_name(st));
}

/*
 * Record the state a successful operation leads to, unless the backend's
 * own thread reported an error in the meantime (a guest that crashes the
 * instant it starts): that error is newer and must not be overwritten.
 */
static void settle(struct ms_session *s, enum ms_state st)
{
	bool failed;

	pthread_mutex_lock(&s->lock);
	failed = s->state == MS_STATE_ERROR && s->error_seq != s->seen_error_seq;
	pthread_mutex_unlock(&s->lock);
	if (!failed)
		ms_session_set_state(s, st, NULL);
}

/* Note the current error as known before an operation starts (see settle). */
static void mark_errors_seen(struct ms_session *s)
{
	pthread_mutex_lock(&s->lock);
	s->seen_error_seq = s->error_seq;
	pthread_mutex_unlock(&s->lock);
}

int ms_session_poweron(struct ms_session *s, struct ms_err *e)
{
	int rc = 0;

	if (!op_begin(s, e))
		return MS_ENOTFOUND;
	if (ms_session_state(s) != MS_STATE_RUNNING) {
		mark_errors_seen(s);
		if (s->backend->power_on == NULL)
			rc = unsupported(s, "poweron", e);
		else if ((rc = s->backend->power_on(s, e)) == 0)
			settle(s, MS_STATE_RUNNING);
	}
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_poweroff(struct ms_session *s, struct ms_err *e)
{
	int rc = 0;

	if (!op_begin(s, e))
		return MS_ENOTFOUND;
	if (ms_session_state(s) != MS_STATE_STOPPED) {
		if (s->backend->power_off == NULL)
			rc = unsupported(s, "poweroff", e);
		else if ((rc = s->backend->power_off(s, e)) == 0)
			ms_session_set_state(s, MS_STATE_STOPPED, NULL);
	}
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_pause(struct ms_session *s, struct ms_err *e)
{
	int rc = 0;
	enum ms_state st;

	if (!op_begin(s, e))
		return MS_ENOTFOUND;
	st = ms_session_state(s);
	if (st == MS_STATE_RUNNING) {
		mark_errors_seen(s);
		if (s->backend->pause == NULL)
			rc = unsupported(s, "pause", e);
		else if ((rc = s->backend->pause(s, e)) == 0)
			settle(s, MS_STATE_PAUSED);
	} else if (st != MS_STATE_PAUSED) {
		rc = wrong_state(s, st, "pause", e);
	}
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_reset(struct ms_session *s, struct ms_err *e)
{
	int rc;
	enum ms_state st;

	if (!op_begin(s, e))
		return MS_ENOTFOUND;
	st = ms_session_state(s);
	if (st == MS_STATE_STOPPED || st == MS_STATE_ERROR)
		rc = wrong_state(s, st, "reset", e);
	else if (s->backend->reset == NULL)
		rc = unsupported(s, "reset", e);
	else if ((rc = s->backend->reset(s, e)) == 0)
		ms_session_event(s, "reset", NULL);
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_load(struct ms_session *s, const struct ms_program *p, bool has_addr, uint64_t addr,
                    struct ms_err *e)
{
	int rc;
	enum ms_state st;

	if (!op_begin(s, e))
		return MS_ENOTFOUND;
	st = ms_session_state(s);
	if (st == MS_STATE_ERROR) {
		rc = wrong_state(s, st, "load a program into", e);
	} else if (s->backend->load_program == NULL) {
		rc = unsupported(s, "program loading", e);
	} else if ((rc = s->backend->load_program(s, p, has_addr, addr, e)) == 0) {
		pthread_mutex_lock(&s->lock);
		snprintf(s->program_id, sizeof(s->program_id), "%s", p->id);
		s->has_load_addr = has_addr;
		s->load_addr = addr;
		pthread_mutex_unlock(&s->lock);
		persist(s);
		ms_session_event(s, "program_loaded",
		                 json_pack("{s:s,s:s}", "program_id", p->id, "format",
		                           ms_image_format_name(p->format)));
	}
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

static bool alive(enum ms_state st)
{
	return st == MS_STATE_CREATED || st == MS_STATE_RUNNING || st == MS_STATE_PAUSED;
}

/*
 * The start of an operation on a live session (created, running or paused)
 * that a backend may lack (implemented false): returns 0 with op_lock held
 * when the caller may go on, else the error (404 deleted, 409 wrong state,
 * 501 not implemented) with the lock released. verb names the operation in
 * a 409 ("step"), feature in a 501 ("instruction stepping").
 */
static int live_op(struct ms_session *s, const char *verb, bool implemented, const char *feature,
                   struct ms_err *e)
{
	enum ms_state st;
	int rc;

	if (!op_begin(s, e))
		return MS_ENOTFOUND;
	st = ms_session_state(s);
	if (!alive(st))
		rc = wrong_state(s, st, verb, e);
	else if (!implemented)
		rc = unsupported(s, feature, e);
	else
		return 0;
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

/* The stored snapshot document matching a name or an id (new reference), or NULL. */
static json_t *find_snapshot(struct ms_session *s, const char *name_or_id)
{
	json_t *all = NULL, *found = NULL, *snap;
	size_t i;

	if (ms_store_list(MS_TABLE_SNAPSHOTS, s->id, &all) != 0)
		return NULL;
	json_array_foreach(all, i, snap)
	{
		const char *id = json_string_value(json_object_get(snap, "id"));
		const char *name = json_string_value(json_object_get(snap, "name"));

		if ((id != NULL && strcmp(id, name_or_id) == 0) ||
		    (name != NULL && strcmp(name, name_or_id) == 0)) {
			found = json_incref(snap);
			break;
		}
	}
	json_decref(all);
	return found;
}

int ms_session_snapshot_save(struct ms_session *s, const char *name, json_t **snap,
                             struct ms_err *e)
{
	int rc;
	json_t *old;
	uint64_t size = 0;

	if (!ms_valid_name(name))
		return ms_fail(e, 400, "bad_name",
		               "snapshot names are 1-64 characters of A-Z a-z 0-9 _ . - and do not "
		               "start with . or -");
	if ((rc = live_op(s, "snapshot", s->backend->snapshot_save != NULL, "snapshots", e)) != 0)
		return rc;
	if ((old = find_snapshot(s, name)) != NULL) {
		json_decref(old);
		rc = ms_fail(e, 409, "snapshot_exists",
		             "session %s already has a snapshot named %s", s->id, name);
	} else if ((rc = s->backend->snapshot_save(s, name, &size, e)) == 0) {
		char id[40], when[32];
		int64_t t = now_ms();

		memcpy(id, "snap_", 5);
		random_hex(id + 5, 8);
		rfc3339(t, when);
		*snap = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "id", id, "name", name, "session_id",
		                  s->id, "created_at", when, "size", (json_int_t)size, "state",
		                  ms_state_name(ms_session_state(s)));
		ms_store_put(MS_TABLE_SNAPSHOTS, id, s->id, *snap);
		ms_session_event(s, "snapshot_saved",
		                 json_pack("{s:s,s:s}", "id", id, "name", name));
	}
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_snapshot_restore(struct ms_session *s, const char *name_or_id, struct ms_err *e)
{
	int rc;
	enum ms_state st;
	json_t *snap;

	if (!op_begin(s, e))
		return MS_ENOTFOUND;
	st = ms_session_state(s);
	snap = find_snapshot(s, name_or_id);
	if (snap == NULL) {
		rc = ms_fail(e, 404, "snapshot_not_found", "session %s has no snapshot %.64s",
		             s->id, name_or_id);
	} else if (!alive(st)) {
		rc = wrong_state(s, st, "restore", e);
	} else if (s->backend->snapshot_load == NULL) {
		rc = unsupported(s, "snapshot restore", e);
	} else {
		const char *name = json_string_value(json_object_get(snap, "name"));

		rc = s->backend->snapshot_load(s, name, e);
		ms_session_event(s, "snapshot_restored",
		                 json_pack("{s:s,s:b}", "name", name, "ok", rc == 0));
	}
	json_decref(snap);
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_snapshot_delete(struct ms_session *s, const char *name_or_id, struct ms_err *e)
{
	int rc;
	json_t *snap;

	if (!op_begin(s, e))
		return MS_ENOTFOUND;
	snap = find_snapshot(s, name_or_id);
	if (snap == NULL) {
		rc = ms_fail(e, 404, "snapshot_not_found", "session %s has no snapshot %.64s",
		             s->id, name_or_id);
	} else if (s->backend->snapshot_delete == NULL) {
		rc = unsupported(s, "snapshot deletion", e);
	} else {
		rc = s->backend->snapshot_delete(
		    s, json_string_value(json_object_get(snap, "name")), e);
		if (rc == 0)
			ms_store_delete(MS_TABLE_SNAPSHOTS,
			                json_string_value(json_object_get(snap, "id")));
	}
	json_decref(snap);
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

json_t *ms_session_snapshots_json(struct ms_session *s)
{
	json_t *all = NULL;

	if (ms_store_list(MS_TABLE_SNAPSHOTS, s->id, &all) != 0)
		return json_array();
	return all;
}

int ms_session_devices(struct ms_session *s, json_t **out, struct ms_err *e)
{
	int rc = live_op(s, "list the devices of", s->backend->device_map != NULL,
	                 "device discovery", e);

	if (rc != 0)
		return rc;
	rc = s->backend->device_map(s, out, e);
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_coverage_start(struct ms_session *s, struct ms_err *e)
{
	int rc =
	    live_op(s, "collect coverage of", s->backend->coverage_start != NULL, "coverage", e);

	if (rc != 0)
		return rc;
	if ((rc = s->backend->coverage_start(s, e)) == 0)
		ms_session_event(s, "coverage_started", NULL);
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_coverage_stop(struct ms_session *s, json_t **report, struct ms_err *e)
{
	int rc;

	*report = NULL;
	if (!op_begin(s, e))
		return MS_ENOTFOUND;
	if (s->backend->coverage_stop == NULL)
		rc = unsupported(s, "coverage", e);
	else if ((rc = s->backend->coverage_stop(s, report, e)) == 0)
		ms_session_event(s, "coverage_stopped", NULL);
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_step(struct ms_session *s, uint64_t insns, struct ms_err *e)
{
	int rc = live_op(s, "step", s->backend->step != NULL, "instruction stepping", e);

	if (rc != 0)
		return rc;
	rc = s->backend->step(s, insns, e);
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_run_for(struct ms_session *s, uint64_t virtual_ns, struct ms_err *e)
{
	int rc = live_op(s, "run", s->backend->run_for != NULL, "running for a virtual time", e);

	if (rc != 0)
		return rc;
	rc = s->backend->run_for(s, virtual_ns, e);
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

int ms_session_inject(struct ms_session *s, json_t *event, json_t **decision, struct ms_err *e)
{
	int rc;

	*decision = NULL;
	if ((rc = live_op(s, "inject an event into", s->backend->inject_event != NULL,
	                  "event injection", e)) != 0)
		return rc;
	if ((rc = s->backend->inject_event(s, event, decision, e)) == 0)
		ms_session_event(s, "injected", json_deep_copy(event));
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

/*
 * The inference views run without op_lock: they must answer while a long
 * operation (a snapshot) holds it, and the backend guards its models with
 * its own lock. A session that was never powered on simply has none yet.
 */
int ms_session_peripherals(struct ms_session *s, json_t **out, struct ms_err *e)
{
	if (s->backend->peripherals == NULL)
		return unsupported(s, "peripheral inference", e);
	return s->backend->peripherals(s, out, e);
}

int ms_session_peripheral_patch(struct ms_session *s, json_t *patch, struct ms_err *e)
{
	int rc;

	if (s->backend->peripheral_patch == NULL)
		return unsupported(s, "peripheral inference", e);
	rc = s->backend->peripheral_patch(s, patch, e);
	if (rc == 0)
		ms_session_event(s, "infer.patch", json_deep_copy(patch));
	return rc;
}

int ms_session_mmio(struct ms_session *s, uint64_t from, size_t limit, json_t **out,
                    struct ms_err *e)
{
	if (s->backend->mmio_recent == NULL)
		return unsupported(s, "the MMIO log", e);
	return s->backend->mmio_recent(s, from, limit, out, e);
}

int ms_session_models_export(struct ms_session *s, json_t **out, struct ms_err *e)
{
	if (s->backend->models_export == NULL)
		return unsupported(s, "device map export", e);
	return s->backend->models_export(s, out, e);
}

int ms_session_console_write(struct ms_session *s, const void *data, size_t len)
{
	int rc;

	/*
	 * Not under op_lock: typing must not wait behind a slow snapshot, and
	 * backends make console_write safe against their own control calls,
	 * except destroy, which frees what it uses: io_gate keeps them apart.
	 */
	if (s->backend->console_write == NULL)
		return MS_EUNSUPPORTED;
	pthread_rwlock_rdlock(&s->io_gate);
	rc = s->destroyed ? MS_ESTATE : s->backend->console_write(s, data, len);
	pthread_rwlock_unlock(&s->io_gate);
	return rc;
}

/* ---- start-up, reaper, shutdown --------------------------------------- */

/*
 * For a backend without reattach (rehost runs its emulator inside the
 * daemon, so it died with the previous one): set a new emulator up, with the
 * session's program, so that the session is an ordinary powered-off one that
 * poweron runs again. Without backend state, its first control request or
 * console byte would reach a backend that has nothing to work on.
 */
static int renew(struct ms_session *s, struct ms_err *e)
{
	struct ms_program p;
	int rc;

	s->state = MS_STATE_CREATED; /* what create reports: not a change worth an event */
	pthread_mutex_lock(&s->op_lock);
	rc = s->backend->create(s, e);
	if (rc == 0 && s->program_id[0] != '\0' && s->backend->load_program != NULL &&
	    (ms_programs_get(s->program_id, &p, e) != 0 ||
	     s->backend->load_program(s, &p, s->has_load_addr, s->load_addr, e) != 0)) {
		ms_warn("session %s: program %s not loaded again: %s", s->id, s->program_id,
		        e->message);
		s->program_id[0] = '\0';
		s->has_load_addr = false;
		ms_err_clear(e);
	}
	pthread_mutex_unlock(&s->op_lock);
	return rc;
}

static void reload_one(json_t *doc)
{
	const char *id = json_string_value(json_object_get(doc, "id"));
	const char *backend = json_string_value(json_object_get(doc, "backend"));
	const char *dir = json_string_value(json_object_get(doc, "dir"));
	const char *prog = json_string_value(json_object_get(doc, "program_id"));
	const char *addr = json_string_value(json_object_get(doc, "load_address"));
	const struct ms_backend *b = ms_backend_find(backend != NULL ? backend : "");
	struct ms_session *s;
	struct ms_err e;
	int prev;

	if (id == NULL || dir == NULL || strlen(id) >= sizeof(s->id) ||
	    strlen(dir) >= sizeof(s->dir))
		return;
	if (b == NULL) {
		ms_warn("session %s: backend %s is not enabled; record kept", id,
		        backend ? backend : "?");
		return;
	}
	s = session_alloc();
	if (s == NULL)
		return;
	snprintf(s->id, sizeof(s->id), "%s", id);
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->backend = b;
	s->board_config = json_incref(json_object_get(doc, "board_config"));
	if (s->board_config == NULL)
		s->board_config = json_object();
	fill_board(s);
	s->created_at_ms = json_integer_value(json_object_get(doc, "created_at_ms"));
	s->last_used_ms = now_ms();
	snprintf(s->program_id, sizeof(s->program_id), "%s", prog != NULL ? prog : "");
	if (addr != NULL) {
		s->has_load_addr = true;
		s->load_addr = strtoull(addr, NULL, 0);
	}
	prev = state_from_name(json_string_value(json_object_get(doc, "state")));
	s->state = MS_STATE_STOPPED;
	if (make_dir(s->dir) != 0 || open_streams(s) != 0) {
		ms_session_put(s);
		return;
	}
	ms_err_clear(&e);
	if (b->reattach == NULL && renew(s, &e) != 0) {
		ms_warn("session %s: cannot set up a %s emulator again (%s); record kept", id,
		        b->name, e.message);
		ms_session_put(s);
		return;
	}
	if (b->reattach == NULL || b->reattach(s) != 0) {
		/* Its emulator is gone: the session is kept, powered off. */
		s->state = MS_STATE_STOPPED;
		s->gdb_port = 0;
		if (prev == MS_STATE_ERROR) {
			const char *why = json_string_value(json_object_get(doc, "reason"));

			s->state = MS_STATE_ERROR;
			snprintf(s->reason, sizeof(s->reason), "%s", why != NULL ? why : "");
		}
	}
	if (registry_add(s) != 0) {
		ms_session_put(s);
		return;
	}
	persist(s);
	ms_session_event(s, "reloaded", json_pack("{s:s}", "state", ms_state_name(s->state)));
	ms_info("session %s reloaded as %s", s->id, ms_state_name(s->state));
}

static void *reaper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&reaper_mu);
	while (!reaper_stop) {
		struct timespec ts;
		size_t n;
		struct ms_session **all;
		int64_t limit = (int64_t)config->resources.session_timeout * 1000;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&reaper_cv, &reaper_mu, &ts);
		if (reaper_stop)
			continue;
		pthread_mutex_unlock(&reaper_mu);
		all = snapshot_all(&n);
		for (size_t i = 0; i < n; i++) {
			int64_t last;

			/*
			 * The logs are written behind their rings (stream.c): a quiet
			 * stream's last bytes reach the file within a second.
			 */
			ms_stream_flush(all[i]->console);
			ms_stream_flush(all[i]->events);
			if (limit <= 0)
				continue;
			pthread_mutex_lock(&all[i]->lock);
			/* Someone watching its console or events is using it. */
			if (__atomic_load_n(&all[i]->watchers, __ATOMIC_SEQ_CST) > 0)
				all[i]->last_used_ms = now_ms();
			last = all[i]->last_used_ms;
			pthread_mutex_unlock(&all[i]->lock);
			if (now_ms() - last > limit) {
				ms_info("session %s idle for more than %u s: deleting", all[i]->id,
				        config->resources.session_timeout);
				ms_sessions_delete(all[i]->id, NULL);
			}
		}
		put_all(all, n);
		pthread_mutex_lock(&reaper_mu);
	}
	pthread_mutex_unlock(&reaper_mu);
	return NULL;
}

int ms_sessions_init(const struct ms_config *cfg, struct ms_err *e)
{
	json_t *docs = NULL, *doc;
	size_t i;
	int rc;

	config = cfg;
	snprintf(sessions_dir, sizeof(sessions_dir), "%s/sessions", cfg->server.data_dir);
	if ((rc = make_dir(sessions_dir)) != 0)
		return ms_fail(e, 500, "host_failure", "cannot create %s: %s", sessions_dir,
		               ms_strerror(rc));
	if (ms_store_list(MS_TABLE_SESSIONS, NULL, &docs) == 0) {
		json_array_foreach(docs, i, doc) reload_one(doc);
		json_decref(docs);
	}
	reaper_stop = false;
	if (pthread_create(&reaper, NULL, reaper_main, NULL) == 0)
		reaper_running = true;
	return 0;
}

void ms_sessions_shutdown(void)
{
	size_t n;
	struct ms_session **all;

	if (reaper_running) {
		pthread_mutex_lock(&reaper_mu);
		reaper_stop = true;
		pthread_cond_signal(&reaper_cv);
		pthread_mutex_unlock(&reaper_mu);
		pthread_join(reaper, NULL);
		reaper_running = false;
	}
	all = snapshot_all(&n);
	for (size_t i = 0; i < n; i++) {
		struct ms_session *s = registry_take(all[i]->id);

		if (s == NULL)
			continue;
		/*
		 * The record keeps the state the session had, so that a restarted
		 * daemon can tell "was running" from "was stopped" when it finds
		 * the emulator gone.
		 */
		destroy_and_forget(s, false);
		/* The logs' last bytes, and the run directory of a session that never wrote them. */
		ms_stream_flush(s->console);
		ms_stream_flush(s->events);
		ms_session_put(s);
	}
	put_all(all, n);
}
