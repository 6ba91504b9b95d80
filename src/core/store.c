/*
 * store: the SQLite database; see store.h.
 *
 * Schema (version 1, kept in PRAGMA user_version):
 *   docs(table_id, id, owner, created_ms, json)  primary key (table_id, id),
 *        index on (table_id, owner)
 *   audit(id integer primary key, time_ms, subject, client, method, path, status)
 *
 * Threads: any thread. There is one connection, opened in SQLite's
 * serialized mode, and one mutex (lock) that every function holds for its
 * whole statement sequence, so a prepare/bind/step/finalize run is never
 * interleaved with another thread's. WAL mode lets an outside reader (the
 * sqlite3 shell, a backup) read while the daemon writes; the busy timeout
 * covers such outside writers. open/close are for start-up and shutdown;
 * they take the same lock.
 */
#include "core/store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"

#define BUSY_TIMEOUT_MS 5000
#define SCHEMA_VERSION 1
#define MAX_AUDIT_FIELD 2048

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite3 *db; /* guarded by lock */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool table_ok(enum ms_table t)
{
	return t >= MS_TABLE_SESSIONS && t <= MS_TABLE_JOBS;
}

/* Log an SQLite failure and turn it into our internal error. Caller holds lock. */
static int db_fail(const char *what)
{
	ms_error("store: %s: %s", what, db ? sqlite3_errmsg(db) : "not open");
	return MS_EINTERNAL;
}

static const char schema_v1[] = "CREATE TABLE IF NOT EXISTS docs ("
                                "  table_id INTEGER NOT NULL,"
                                "  id TEXT NOT NULL,"
                                "  owner TEXT,"
                                "  created_ms INTEGER NOT NULL,"
                                "  json TEXT NOT NULL,"
                                "  PRIMARY KEY (table_id, id));"
                                "CREATE INDEX IF NOT EXISTS docs_owner ON docs(table_id, owner);"
                                "CREATE TABLE IF NOT EXISTS audit ("
                                "  id INTEGER PRIMARY KEY,"
                                "  time_ms INTEGER NOT NULL,"
                                "  subject TEXT NOT NULL,"
                                "  client TEXT NOT NULL,"
                                "  method TEXT NOT NULL,"
                                "  path TEXT NOT NULL,"
                                "  status INTEGER NOT NULL);"
                                "PRAGMA user_version = 1;";

/* Bring the schema to SCHEMA_VERSION. Caller holds lock. */
static int migrate(struct ms_err *e)
{
	sqlite3_stmt *st;
	int version, rc;
	char *msg = NULL;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return ms_fail(e, 500, "store_error", "cannot read schema version: %s",
		               sqlite3_errmsg(db));
	rc = sqlite3_step(st);
	version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (version < 0)
		return ms_fail(e, 500, "store_error", "cannot read schema version: %s",
		               sqlite3_errmsg(db));
	if (version > SCHEMA_VERSION)
		return ms_fail(e, 500, "store_error",
		               "database schema version %d is newer than this daemon (%d)", version,
		               SCHEMA_VERSION);
	if (version == SCHEMA_VERSION)
		return 0;
	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, schema_v1, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int r = ms_fail(e, 500, "store_error", "cannot create the schema: %s",
		                msg ? msg : sqlite3_errmsg(db));

		sqlite3_free(msg);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	return 0;
}

int ms_store_open(const char *path, struct ms_err *e)
{
	char *msg = NULL;
	int rc;

	pthread_mutex_lock(&lock);
	if (db != NULL) {
		pthread_mutex_unlock(&lock);
		return ms_fail(e, 500, "store_error", "store already open");
	}
	rc = sqlite3_open_v2(
	    path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = ms_fail(e, 500, "store_error", "cannot open database %s: %s", path,
		             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* The database holds API audit data: owner-only, like the data directory. */
	if (chmod(path, 0600) != 0)
		ms_warn("store: cannot chmod 0600 %s: %s", path, strerror(errno));
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	rc = sqlite3_exec(db,
	                  "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
	                  "PRAGMA foreign_keys = ON;",
	                  NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		rc = ms_fail(e, 500, "store_error", "cannot set up database %s: %s", path,
		             msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		goto fail;
	}
	rc = migrate(e);
	if (rc != 0)
		goto fail;
	pthread_mutex_unlock(&lock);
	return 0;
fail:
	sqlite3_close(db);
	db = NULL;
	pthread_mutex_unlock(&lock);
	return rc;
}

void ms_store_close(void)
{
	pthread_mutex_lock(&lock);
	if (db != NULL) {
		if (sqlite3_close(db) != SQLITE_OK)
			ms_error("store: close: %s", sqlite3_errmsg(db));
		db = NULL;
	}
	pthread_mutex_unlock(&lock);
}

/*
 * Prepare sql under lock; on success returns 0 with the lock held and *st
 * ready for binding. On failure the lock is released.
 */
static int begin(const char *sql, sqlite3_stmt **st)
{
	pthread_mutex_lock(&lock);
	if (db == NULL) {
		pthread_mutex_unlock(&lock);
		ms_error("store: used before ms_store_open");
		return -EBADF;
	}
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		int rc = db_fail("prepare");

		pthread_mutex_unlock(&lock);
		return rc;
	}
	return 0;
}

static void end(sqlite3_stmt *st)
{
	sqlite3_finalize(st);
	pthread_mutex_unlock(&lock);
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

int ms_store_put(enum ms_table t, const char *id, const char *owner, json_t *doc)
{
	sqlite3_stmt *st;
	char *json;
	int rc;

	if (!table_ok(t) || id == NULL || id[0] == '\0' || doc == NULL)
		return -EINVAL;
	json = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
	if (json == NULL)
		return -ENOMEM;
	/* On replace the creation time stays, so lists keep their order. */
	rc = begin("INSERT INTO docs(table_id, id, owner, created_ms, json) VALUES (?,?,?,?,?) "
	           "ON CONFLICT(table_id, id) DO UPDATE SET owner = excluded.owner, "
	           "json = excluded.json",
	           &st);
	if (rc != 0) {
		free(json);
		return rc;
	}
	sqlite3_bind_int(st, 1, (int)t);
	bind_text(st, 2, id);
	bind_text(st, 3, owner);
	sqlite3_bind_int64(st, 4, now_ms());
	sqlite3_bind_text(st, 5, json, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail("put");
	end(st);
	free(json);
	return rc;
}

/* Parse a stored document. Caller holds lock. */
static json_t *row_json(sqlite3_stmt *st, int col)
{
	const char *text = (const char *)sqlite3_column_text(st, col);
	json_error_t jerr;
	json_t *doc;

	if (text == NULL)
		return NULL;
	doc = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (doc == NULL)
		ms_error("store: corrupt document: %s", jerr.text);
	return doc;
}

int ms_store_get(enum ms_table t, const char *id, json_t **doc)
{
	sqlite3_stmt *st;
	int rc;

	*doc = NULL;
	if (!table_ok(t) || id == NULL)
		return -EINVAL;
	rc = begin("SELECT json FROM docs WHERE table_id = ? AND id = ?", &st);
	if (rc != 0)
		return rc;
	sqlite3_bind_int(st, 1, (int)t);
	bind_text(st, 2, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*doc = row_json(st, 0);
		rc = *doc ? 0 : MS_EINTERNAL;
	} else if (rc == SQLITE_DONE) {
		rc = -ENOENT;
	} else {
		rc = db_fail("get");
	}
	end(st);
	return rc;
}

int ms_store_list(enum ms_table t, const char *owner, json_t **array)
{
	sqlite3_stmt *st;
	json_t *arr;
	int rc;

	*array = NULL;
	if (!table_ok(t))
		return -EINVAL;
	arr = json_array();
	if (arr == NULL)
		return -ENOMEM;
	if (owner == NULL)
		rc = begin("SELECT json FROM docs WHERE table_id = ? ORDER BY created_ms, rowid",
		           &st);
	else
		rc = begin("SELECT json FROM docs WHERE table_id = ? AND owner = ? "
		           "ORDER BY created_ms, rowid",
		           &st);
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	sqlite3_bind_int(st, 1, (int)t);
	if (owner != NULL)
		bind_text(st, 2, owner);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *doc = row_json(st, 0);

		/* One corrupt row must not hide the others; it was logged. */
		if (doc != NULL)
			json_array_append_new(arr, doc);
	}
	rc = rc == SQLITE_DONE ? 0 : db_fail("list");
	end(st);
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	*array = arr;
	return 0;
}

int ms_store_delete(enum ms_table t, const char *id)
{
	sqlite3_stmt *st;
	int rc;

	if (!table_ok(t) || id == NULL)
		return -EINVAL;
	rc = begin("DELETE FROM docs WHERE table_id = ? AND id = ?", &st);
	if (rc != 0)
		return rc;
	sqlite3_bind_int(st, 1, (int)t);
	bind_text(st, 2, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail("delete");
	else
		rc = sqlite3_changes(db) > 0 ? 0 : -ENOENT;
	end(st);
	return rc;
}

int ms_store_delete_owned(enum ms_table t, const char *owner)
{
	sqlite3_stmt *st;
	int rc;

	if (!table_ok(t) || owner == NULL)
		return -EINVAL;
	rc = begin("DELETE FROM docs WHERE table_id = ? AND owner = ?", &st);
	if (rc != 0)
		return rc;
	sqlite3_bind_int(st, 1, (int)t);
	bind_text(st, 2, owner);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail("delete owned");
	end(st);
	return rc;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/*
 * Audit fields come from the request (the path above all): keep them valid
 * UTF-8 without control characters, so that every stored row can be listed
 * as JSON and printed on a terminal, and bound their length.
 */
static char *clean_field(const char *s)
{
	size_t n = strlen(s), i = 0, k = 0;
	char *out;

	if (n > MAX_AUDIT_FIELD)
		n = MAX_AUDIT_FIELD;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	while (i < n) {
		size_t len = utf8_len((const unsigned char *)s + i, n - i);

		if (len == 0 || (len == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f))) {
			out[k++] = '?';
			i++;
			continue;
		}
		memcpy(out + k, s + i, len);
		k += len;
		i += len;
	}
	out[k] = '\0';
	return out;
}

int ms_store_audit_add(const struct ms_audit_entry *a)
{
	const char *raw[4];
	char *f[4] = {NULL};
	sqlite3_stmt *st;
	int rc, i;

	if (a == NULL)
		return -EINVAL;
	raw[0] = a->subject ? a->subject : "anonymous";
	raw[1] = a->client ? a->client : "";
	raw[2] = a->method ? a->method : "";
	raw[3] = a->path ? a->path : "";
	for (i = 0; i < 4; i++) {
		f[i] = clean_field(raw[i]);
		if (f[i] == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	rc = begin("INSERT INTO audit(time_ms, subject, client, method, path, status) "
	           "VALUES (?,?,?,?,?,?)",
	           &st);
	if (rc != 0)
		goto out;
	sqlite3_bind_int64(st, 1, a->time_ms > 0 ? a->time_ms : now_ms());
	for (i = 0; i < 4; i++)
		bind_text(st, 2 + i, f[i]);
	sqlite3_bind_int(st, 6, a->status);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail("audit add");
	end(st);
out:
	for (i = 0; i < 4; i++)
		free(f[i]);
	return rc;
}

/* RFC 3339 UTC with milliseconds, e.g. 2026-11-22T04:20:45.123Z. */
static void rfc3339(int64_t ms, char *buf, size_t size)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)((ms % 1000 + 1000) % 1000));
}

static const char *col_text(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return s ? s : "";
}

int ms_store_audit_list(int64_t before, int limit, json_t **page)
{
	sqlite3_stmt *st;
	json_t *entries, *out;
	int64_t last_id = 0;
	int rc, n = 0;
	bool more = false;

	*page = NULL;
	if (limit < 1 || limit > 1000)
		return -EINVAL;
	if (before <= 0)
		before = INT64_MAX;
	entries = json_array();
	if (entries == NULL)
		return -ENOMEM;
	/* One row more than asked tells whether there is a next page. */
	rc = begin("SELECT id, time_ms, subject, client, method, path, status FROM audit "
	           "WHERE id < ? ORDER BY id DESC LIMIT ?",
	           &st);
	if (rc != 0) {
		json_decref(entries);
		return rc;
	}
	sqlite3_bind_int64(st, 1, before);
	sqlite3_bind_int(st, 2, limit + 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char when[80];
		int64_t ms = sqlite3_column_int64(st, 1);

		if (n == limit) {
			more = true;
			continue;
		}
		last_id = sqlite3_column_int64(st, 0);
		rfc3339(ms, when, sizeof(when));
		json_array_append_new(
		    entries,
		    json_pack("{sI ss sI ss ss ss ss si}", "id", (json_int_t)last_id, "time", when,
		              "time_ms", (json_int_t)ms, "subject", col_text(st, 2), "client",
		              col_text(st, 3), "method", col_text(st, 4), "path", col_text(st, 5),
		              "status", sqlite3_column_int(st, 6)));
		n++;
	}
	rc = rc == SQLITE_DONE ? 0 : db_fail("audit list");
	end(st);
	if (rc != 0) {
		json_decref(entries);
		return rc;
	}
	out = json_pack("{so so}", "entries", entries, "next_before",
	                more ? json_integer(last_id) : json_null());
	if (out == NULL)
		return -ENOMEM;
	*page = out;
	return 0;
}
