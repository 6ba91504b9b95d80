/*
 * session: the session registry and the one session state machine every
 * backend shares.
 *
 *   created -> running <-> paused -> stopped        error (with a reason)
 *
 * created: the emulator is set up (a QEMU child exists, started with -S) but
 * has never run. running / paused: as the words say (QEMU's prelaunch counts
 * as paused). stopped: powered off, the emulator process is gone; poweron
 * starts it again. error: the emulator died or failed; reason holds its own
 * words (QEMU's last stderr line, a lockup with the registers).
 *
 * All control requests go through ms_session_* functions here, which check
 * the state, call the backend and record the outcome, so the rules live in
 * one place. Backends report asynchronous changes (a child that died, a
 * guest stopped by gdb) with ms_session_set_state from their own threads.
 *
 * Threads and locks:
 *  - the registry mutex guards the id -> session table;
 *  - s->op_lock serialises control operations on one session (API handlers
 *    take it; backends' control functions run under it);
 *  - s->lock guards the mutable fields marked below and is held only for
 *    short updates; never call into a backend with it held.
 *  Lock order: op_lock before lock. Backend threads take only lock.
 * Ownership: sessions are reference counted. ms_session_find returns a new
 * reference released with ms_session_put; the registry holds one until
 * deletion.
 */
#ifndef MS_SESSION_H
#define MS_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "core/config.h"
#include "core/err.h"

struct ms_backend;
struct ms_stream;
struct ms_program;

enum ms_state {
	MS_STATE_CREATED,
	MS_STATE_RUNNING,
	MS_STATE_PAUSED,
	MS_STATE_STOPPED,
	MS_STATE_ERROR,
};
#define MS_STATE_COUNT 5

struct ms_session {
	/* Immutable after ms_sessions_create returns. */
	char id[40]; /* "sess_" + 16 hex digits */
	const struct ms_backend *backend;
	json_t *board_config; /* as given, read-only */
	char board[64]; /* board_config.board or "" */
	char cpu[64]; /* board_config.cpu or "" */
	char dir[512]; /* private 0700 run directory */
	int64_t created_at_ms;
	struct ms_stream *console; /* UART bytes; log at <dir>/console.log */
	struct ms_stream *events; /* NDJSON events; log at <dir>/events.log */

	pthread_mutex_t lock; /* guards the fields below */
	enum ms_state state;
	char reason[512]; /* why it is in error; "" otherwise */
	int gdb_port; /* 0 when none */
	char program_id[40]; /* loaded program or "" */
	uint64_t load_addr; /* raw binaries: where they go */
	bool has_load_addr;
	int64_t last_used_ms; /* for resources.session_timeout */
	json_t *extra; /* backend-reported fields (object) merged into the JSON view */
	int watchers; /* open console/event streams (atomic): a watched session is in use */
	unsigned error_seq; /* counts transitions into error */
	unsigned seen_error_seq; /* error_seq when the current control operation began */

	pthread_mutex_t op_lock; /* serialises control operations */
	void *bdata; /* backend private; see the backend's file */
	/*
	 * Set (under op_lock and io_gate held for writing) just before the
	 * backend's destroy: a request or a console stream still holding the
	 * session must not call into the backend after that.
	 */
	bool destroyed;
	pthread_rwlock_t io_gate; /* console writes (read) against destroy (write) */
	int refs; /* atomic */
};

/* Set up the registry; reload persisted sessions (those whose emulators are gone become stopped). */
int ms_sessions_init(const struct ms_config *cfg, struct ms_err *e);

/* Destroy every session's emulator (daemon shutdown); records stay. */
void ms_sessions_shutdown(void);

/*
 * Create a session: validate backend and board_config (400/404 for unknown
 * backends, boards, cpus), enforce max_sessions (429), make the run
 * directory, call the backend's create. board_config is not stolen.
 */
int ms_sessions_create(const char *backend, json_t *board_config, struct ms_session **out,
                       struct ms_err *e);

struct ms_session *ms_session_find(const char *id);
void ms_session_get(struct ms_session *s);
void ms_session_put(struct ms_session *s);

/*
 * Make sure the session's run directory exists (0700): for backends with
 * lazy_run_dir, before they put a file there. 0 or a negative errno.
 */
int ms_session_run_dir(struct ms_session *s);

/* Remove from the registry, destroy the emulator, delete its records. */
int ms_sessions_delete(const char *id, struct ms_err *e);

/* Control, each under op_lock. */
int ms_session_poweron(struct ms_session *s, struct ms_err *e);
int ms_session_poweroff(struct ms_session *s, struct ms_err *e);
int ms_session_pause(struct ms_session *s, struct ms_err *e);
int ms_session_reset(struct ms_session *s, struct ms_err *e);
int ms_session_load(struct ms_session *s, const struct ms_program *p, bool has_addr, uint64_t addr,
                    struct ms_err *e);
int ms_session_snapshot_save(struct ms_session *s, const char *name, json_t **snap,
                             struct ms_err *e);
int ms_session_snapshot_restore(struct ms_session *s, const char *name_or_id, struct ms_err *e);
int ms_session_snapshot_delete(struct ms_session *s, const char *name_or_id, struct ms_err *e);
json_t *ms_session_snapshots_json(struct ms_session *s);
int ms_session_devices(struct ms_session *s, json_t **out, struct ms_err *e);
int ms_session_coverage_start(struct ms_session *s, struct ms_err *e);
/* Stop collecting; *report is the backend's report object (new reference). */
int ms_session_coverage_stop(struct ms_session *s, json_t **report, struct ms_err *e);
/* Peripheral inference views (see backend.h); not serialised with control operations. */
int ms_session_peripherals(struct ms_session *s, json_t **out, struct ms_err *e);
int ms_session_peripheral_patch(struct ms_session *s, json_t *patch, struct ms_err *e);
int ms_session_mmio(struct ms_session *s, uint64_t from, size_t limit, json_t **out,
                    struct ms_err *e);
int ms_session_models_export(struct ms_session *s, json_t **out, struct ms_err *e);
/* Co-simulation primitives on a paused session, and external events (GPIO levels, IRQs). */
int ms_session_step(struct ms_session *s, uint64_t insns, struct ms_err *e);
int ms_session_run_for(struct ms_session *s, uint64_t virtual_ns, struct ms_err *e);
/* *decision: the backend's account of the event (new reference) or NULL; see backend.h. */
int ms_session_inject(struct ms_session *s, json_t *event, json_t **decision, struct ms_err *e);
int ms_session_console_write(struct ms_session *s, const void *data, size_t len);

/*
 * Called by backends (any thread) and by this module. Persists the state,
 * emits a "state" event, updates metrics. reason may be NULL.
 */
void ms_session_set_state(struct ms_session *s, enum ms_state st, const char *reason);
enum ms_state ms_session_state(struct ms_session *s);

/* Emit an event {"type":type,"time":...,"session":id,"data":data}; data is stolen (may be NULL). */
void ms_session_event(struct ms_session *s, const char *type, json_t *data);

/* Merge backend facts into the session's JSON view (key, value stolen). */
void ms_session_set_extra(struct ms_session *s, const char *key, json_t *value);

const char *ms_state_name(enum ms_state st);

/* JSON views (new references). */
json_t *ms_session_json(struct ms_session *s);
json_t *ms_sessions_list_json(void);

/* Count of live sessions per backend name and state, for /metrics. */
void ms_sessions_count(void (*cb)(const char *backend, enum ms_state st, unsigned n, void *ud),
                       void *ud);
unsigned ms_sessions_total(void);

/* True (and the first such session's id) when a session has program_id loaded. */
bool ms_sessions_program_in_use(const char *program_id, char *session_id, size_t cap);

/* Validate a snapshot or other user-given name: [A-Za-z0-9_.-]{1,64}, not starting with '.' or '-'. */
bool ms_valid_name(const char *name);

#endif
