/*
 * backend: the one interface every emulator backend fills (QEMU, rehost,
 * OpenOCD, Renode). A new backend is one new file that defines a
 * struct ms_backend and adds it to ms_backends[] in backend.c.
 *
 * Calling rules: the session module calls create/destroy and every control
 * function with s->op_lock held, so a backend never sees two control calls
 * on one session at once. A backend's own threads (process supervisors,
 * engine threads) report asynchronous changes with ms_session_set_state and
 * write UART output to s->console; they must not take s->op_lock.
 *
 * An operation a backend cannot do is a NULL pointer (the API answers 501
 * "not_supported"), or a function that fails with 501 for some boards. No
 * function may claim success for something that did not happen.
 *
 * Errors: return 0 or a negative code and fill *e (see core/err.h); 502
 * "emulator_failed" with the emulator's own words when the emulator failed.
 */
#ifndef MS_BACKEND_H
#define MS_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "core/config.h"
#include "core/err.h"

struct ms_session;
struct ms_program;

struct ms_backend {
	const char *name; /* "qemu", "rehost", ... */
	/*
	 * The run directory (s->dir) is made when something is first put there
	 * (the backend calls ms_session_run_dir; the console and event logs
	 * make it on their first flush), not at create: one inode less on the
	 * create path. Backends that need it at create leave this false.
	 */
	bool lazy_run_dir;

	/* Daemon start: probe what is installed. Non-zero disables the backend. */
	int (*init)(const struct ms_config *cfg, struct ms_err *e);
	/* Daemon stop, after every session was destroyed. */
	void (*fini)(void);

	/*
	 * The seed's capability object: {backend, boards, processors,
	 * peripherals, bus_types, operations}. New reference.
	 */
	json_t *(*capabilities)(void);

	/* Check board_config before anything is created (unknown board/cpu: 400). */
	int (*validate)(json_t *board_config, struct ms_err *e);

	/* Set up the emulator for a new session, which ends in state created. */
	int (*create)(struct ms_session *s, struct ms_err *e);
	/*
	 * Re-attach after a daemon restart. Return 0 with the session's state
	 * set when the emulator is still alive, -ESRCH when it is gone.
	 * May be NULL (every reloaded session becomes stopped).
	 */
	int (*reattach)(struct ms_session *s);
	/* Stop the emulator and free everything; never fails. */
	void (*destroy)(struct ms_session *s);

	int (*power_on)(struct ms_session *s, struct ms_err *e); /* -> running */
	int (*power_off)(struct ms_session *s, struct ms_err *e); /* -> stopped, process gone */
	int (*pause)(struct ms_session *s, struct ms_err *e); /* running -> paused */
	int (*reset)(struct ms_session *s, struct ms_err *e); /* keeps running/paused */

	/*
	 * Load a program; it must survive reset. The run state is kept: a
	 * running session runs the new program from its reset vector.
	 */
	int (*load_program)(struct ms_session *s, const struct ms_program *p, bool has_addr,
	                    uint64_t addr, struct ms_err *e);

	int (*snapshot_save)(struct ms_session *s, const char *name, uint64_t *size,
	                     struct ms_err *e);
	int (*snapshot_load)(struct ms_session *s, const char *name, struct ms_err *e);
	int (*snapshot_delete)(struct ms_session *s, const char *name, struct ms_err *e);

	/* Bytes for the guest UART's receive side. */
	int (*console_write)(struct ms_session *s, const void *data, size_t len);

	/* Memory-mapped regions and devices: array of {name, base, size, kind, ...}. */
	int (*device_map)(struct ms_session *s, json_t **out, struct ms_err *e);

	/*
	 * Peripheral inference (the rehost engine): the inferred and declared
	 * devices with their register models, a correction by hand, the recent
	 * MMIO accesses, and the whole device map for a later session or
	 * "machineserver run --models". May be called from API threads without
	 * op_lock: the backend makes them safe against its engine thread.
	 */
	int (*peripherals)(struct ms_session *s, json_t **out, struct ms_err *e);
	int (*peripheral_patch)(struct ms_session *s, json_t *patch, struct ms_err *e);
	int (*mmio_recent)(struct ms_session *s, uint64_t from, size_t limit, json_t **out,
	                   struct ms_err *e);
	int (*models_export)(struct ms_session *s, json_t **out, struct ms_err *e);

	/* Later features plug in here; NULL until a backend implements them. */
	int (*coverage_start)(struct ms_session *s, struct ms_err *e);
	int (*coverage_stop)(struct ms_session *s, json_t **report, struct ms_err *e);
	int (*step)(struct ms_session *s, uint64_t insns, struct ms_err *e);
	int (*run_for)(struct ms_session *s, uint64_t virtual_ns, struct ms_err *e);
	/*
	 * An external event (a GPIO level and its interrupt). *decision gets
	 * what came of it (a new reference, e.g. whether the interrupt was
	 * raised and why not), or NULL.
	 */
	int (*inject_event)(struct ms_session *s, json_t *event, json_t **decision,
	                    struct ms_err *e);
};

/* Backends compiled in; NULL-terminated. */
extern const struct ms_backend *const ms_backends[];

/* Initialise the enabled backends (per cfg->backends). Failing ones are logged and left disabled. */
void ms_backends_init(const struct ms_config *cfg);
void ms_backends_fini(void);

/* An enabled backend by name, or NULL. */
const struct ms_backend *ms_backend_find(const char *name);

/* Array of every enabled backend's capabilities (new reference). */
json_t *ms_backends_capabilities(void);

/* The "operations" list for a backend, derived from which pointers are set. */
json_t *ms_backend_operations(const struct ms_backend *b);

#endif
