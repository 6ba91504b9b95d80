/*
 * store: the SQLite database (WAL) under the data directory.
 *
 * A small document store: each table row is an id, an optional owner id
 * (the session a snapshot belongs to), a creation time and a JSON document.
 * Plus the audit log, which is a proper table because it is queried and
 * paginated.
 *
 * Threads: any thread. One connection opened in serialized mode plus our own
 * mutex around each statement sequence; statements are prepared per call
 * (the store is not on any hot path). Table names come from the enum, never
 * from user text; every value is a bound parameter.
 * Ownership: documents returned through json_t ** are new references the
 * caller decrefs.
 */
#ifndef MS_STORE_H
#define MS_STORE_H

#include <stdint.h>
#include <jansson.h>

#include "core/err.h"

enum ms_table {
	MS_TABLE_SESSIONS,
	MS_TABLE_PROGRAMS,
	MS_TABLE_SNAPSHOTS,
	MS_TABLE_JOBS,
};

/* Open (creating if needed) the database file; migrations run here. */
int ms_store_open(const char *path, struct ms_err *e);
void ms_store_close(void);

/* Insert or replace. owner may be NULL. doc is not stolen. */
int ms_store_put(enum ms_table t, const char *id, const char *owner, json_t *doc);

/* -ENOENT when absent. */
int ms_store_get(enum ms_table t, const char *id, json_t **doc);

/* All documents (owner NULL) or those of one owner, oldest first, as an array. */
int ms_store_list(enum ms_table t, const char *owner, json_t **array);

/* -ENOENT when absent. */
int ms_store_delete(enum ms_table t, const char *id);

/* Delete every row owned by owner (e.g. a deleted session's snapshots). */
int ms_store_delete_owned(enum ms_table t, const char *owner);

struct ms_audit_entry {
	int64_t time_ms;
	const char *subject; /* "key:<id>", "jwt:<sub>" or "anonymous" */
	const char *client; /* client address */
	const char *method;
	const char *path;
	int status;
};

int ms_store_audit_add(const struct ms_audit_entry *a);

/*
 * Newest first. Entries with id < before (before <= 0: from the newest),
 * at most limit (1..1000). *page is an object
 * {"entries":[{id,time,subject,client,method,path,status}...],"next_before":N|null}.
 * time is RFC 3339 UTC with milliseconds; each entry also carries time_ms.
 * -EINVAL for a limit out of range.
 *
 * All functions return -EBADF before ms_store_open, -EINVAL for a bad
 * table or NULL argument, MS_EINTERNAL when SQLite fails (logged).
 * ms_store_audit_add: time_ms <= 0 means now, subject NULL is stored as
 * "anonymous"; text fields are stored as valid UTF-8 without control
 * characters (others become '?'), at most 2048 bytes each.
 */
int ms_store_audit_list(int64_t before, int limit, json_t **page);

#endif
