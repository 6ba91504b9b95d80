/*
 * Unit tests for src/core/store.c on a real SQLite file in a temporary
 * directory: documents per table and owner, replace, delete, persistence
 * across reopen, the schema as another SQLite connection sees it, audit
 * pagination, hostile text, and concurrent writers.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "core/store.h"

struct fx {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ms_err e;

	strcpy(f->dir, "/tmp/ms-test-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/ms.db", f->dir);
	if (ms_store_open(f->path, &e) != 0) {
		fprintf(stderr, "open: %s\n", e.message);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[200];

	ms_store_close();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static json_t *doc(const char *name, int n)
{
	return json_pack("{ss si}", "name", name, "n", n);
}

static void put(enum ms_table t, const char *id, const char *owner, const char *name, int n)
{
	json_t *d = doc(name, n);

	assert_int_equal(ms_store_put(t, id, owner, d), 0);
	json_decref(d);
}

static void test_put_get_replace_delete(void **state)
{
	json_t *d = NULL, *arr = NULL;

	put(MS_TABLE_SESSIONS, "sess_1", NULL, "one", 1);
	put(MS_TABLE_SESSIONS, "sess_2", NULL, "two", 2);
	/* The same id in another table is another document. */
	put(MS_TABLE_PROGRAMS, "sess_1", NULL, "prog", 9);

	assert_int_equal(ms_store_get(MS_TABLE_SESSIONS, "sess_1", &d), 0);
	assert_string_equal(json_string_value(json_object_get(d, "name")), "one");
	json_decref(d);
	assert_int_equal(ms_store_get(MS_TABLE_PROGRAMS, "sess_1", &d), 0);
	assert_int_equal(json_integer_value(json_object_get(d, "n")), 9);
	json_decref(d);
	assert_int_equal(ms_store_get(MS_TABLE_SESSIONS, "sess_3", &d), -ENOENT);
	assert_null(d);
	assert_int_equal(ms_store_get(MS_TABLE_JOBS, "sess_1", &d), -ENOENT);

	/* Replace keeps the position in the list. */
	put(MS_TABLE_SESSIONS, "sess_1", NULL, "one again", 11);
	assert_int_equal(ms_store_list(MS_TABLE_SESSIONS, NULL, &arr), 0);
	assert_int_equal(json_array_size(arr), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "name")),
	                    "one again");
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "name")),
	                    "two");
	json_decref(arr);

	assert_int_equal(ms_store_delete(MS_TABLE_SESSIONS, "sess_1"), 0);
	assert_int_equal(ms_store_delete(MS_TABLE_SESSIONS, "sess_1"), -ENOENT);
	assert_int_equal(ms_store_get(MS_TABLE_SESSIONS, "sess_1", &d), -ENOENT);
	assert_int_equal(ms_store_get(MS_TABLE_PROGRAMS, "sess_1", &d), 0);
	json_decref(d);
}

static void test_owner_lists(void **state)
{
	json_t *arr;
	int i;

	for (i = 0; i < 6; i++) {
		char id[16];

		snprintf(id, sizeof(id), "snap_%d", i);
		put(MS_TABLE_SNAPSHOTS, id, i % 2 ? "sess_a" : "sess_b", id, i);
	}
	assert_int_equal(ms_store_list(MS_TABLE_SNAPSHOTS, "sess_a", &arr), 0);
	assert_int_equal(json_array_size(arr), 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, i), "n")),
		                 2 * i + 1);
	json_decref(arr);
	assert_int_equal(ms_store_list(MS_TABLE_SNAPSHOTS, NULL, &arr), 0);
	assert_int_equal(json_array_size(arr), 6);
	json_decref(arr);

	assert_int_equal(ms_store_delete_owned(MS_TABLE_SNAPSHOTS, "sess_a"), 0);
	assert_int_equal(ms_store_list(MS_TABLE_SNAPSHOTS, "sess_a", &arr), 0);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
	assert_int_equal(ms_store_list(MS_TABLE_SNAPSHOTS, NULL, &arr), 0);
	assert_int_equal(json_array_size(arr), 3);
	json_decref(arr);
	/* Nothing owned: still fine. */
	assert_int_equal(ms_store_delete_owned(MS_TABLE_SNAPSHOTS, "sess_zz"), 0);
}

static void test_bad_arguments(void **state)
{
	json_t *d = doc("x", 1), *out;

	assert_int_equal(ms_store_put((enum ms_table)42, "a", NULL, d), -EINVAL);
	assert_int_equal(ms_store_put((enum ms_table) - 1, "a", NULL, d), -EINVAL);
	assert_int_equal(ms_store_put(MS_TABLE_JOBS, NULL, NULL, d), -EINVAL);
	assert_int_equal(ms_store_put(MS_TABLE_JOBS, "", NULL, d), -EINVAL);
	assert_int_equal(ms_store_put(MS_TABLE_JOBS, "a", NULL, NULL), -EINVAL);
	assert_int_equal(ms_store_get((enum ms_table)9, "a", &out), -EINVAL);
	assert_int_equal(ms_store_list((enum ms_table)9, NULL, &out), -EINVAL);
	assert_int_equal(ms_store_audit_list(0, 0, &out), -EINVAL);
	assert_int_equal(ms_store_audit_list(0, 1001, &out), -EINVAL);
	json_decref(d);

	/* Text that would break a concatenated query is just an id. */
	put(MS_TABLE_JOBS, "x'); DROP TABLE docs; --", "o' OR '1'='1", "evil", 1);
	assert_int_equal(ms_store_get(MS_TABLE_JOBS, "x'); DROP TABLE docs; --", &out), 0);
	json_decref(out);
	assert_int_equal(ms_store_list(MS_TABLE_JOBS, "o' OR '1'='1", &out), 0);
	assert_int_equal(json_array_size(out), 1);
	json_decref(out);
	assert_int_equal(ms_store_list(MS_TABLE_JOBS, "nobody", &out), 0);
	assert_int_equal(json_array_size(out), 0);
	json_decref(out);
}

static void test_persistence_and_schema(void **state)
{
	struct fx *f = *state;
	struct ms_err e;
	struct stat st;
	sqlite3 *other;
	sqlite3_stmt *q;
	json_t *d;
	int n = 0;

	put(MS_TABLE_PROGRAMS, "prog_1", NULL, "fw", 7);
	assert_int_equal(ms_store_open(f->path, &e), MS_EINTERNAL);
	assert_non_null(strstr(e.message, "already open"));
	ms_store_close();
	assert_int_equal(ms_store_get(MS_TABLE_PROGRAMS, "prog_1", &d), -EBADF);
	assert_int_equal(ms_store_open(f->path, &e), 0);
	assert_int_equal(ms_store_get(MS_TABLE_PROGRAMS, "prog_1", &d), 0);
	assert_int_equal(json_integer_value(json_object_get(d, "n")), 7);
	json_decref(d);

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* What another connection sees: WAL, our tables and the owner index. */
	assert_int_equal(sqlite3_open_v2(f->path, &other, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(other, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	assert_int_equal(sqlite3_prepare_v2(other,
	                                    "SELECT name FROM sqlite_master WHERE name IN "
	                                    "('docs','audit','docs_owner')",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW)
		n++;
	sqlite3_finalize(q);
	assert_int_equal(n, 3);
	assert_int_equal(sqlite3_prepare_v2(other,
	                                    "SELECT json FROM docs WHERE table_id = 1 AND "
	                                    "id = 'prog_1'",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "{\"name\":\"fw\",\"n\":7}");
	sqlite3_finalize(q);
	sqlite3_close(other);
}

static void test_refuses_newer_schema_and_bad_path(void **state)
{
	struct fx *f = *state;
	struct ms_err e;
	sqlite3 *other;
	char path[160];

	ms_store_close();
	assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "PRAGMA user_version = 99", NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(ms_store_open(f->path, &e), MS_EINTERNAL);
	assert_non_null(strstr(e.message, "newer"));

	snprintf(path, sizeof(path), "%s/no/such/dir/ms.db", f->dir);
	assert_int_equal(ms_store_open(path, &e), MS_EINTERNAL);
	assert_non_null(strstr(e.message, "cannot open database"));

	/* A file that is not a database. */
	snprintf(path, sizeof(path), "%s/junk.db", f->dir);
	other = NULL;
	{
		FILE *j = fopen(path, "w");

		assert_non_null(j);
		fputs("this is not an sqlite database, just text that is long enough to fill "
		      "the first page header and then some more text\n",
		      j);
		fclose(j);
	}
	assert_int_equal(ms_store_open(path, &e), MS_EINTERNAL);
	/* setup's teardown closes; reopen the good file so it has something to close. */
	assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
	sqlite3_exec(other, "PRAGMA user_version = 1", NULL, NULL, NULL);
	sqlite3_close(other);
	assert_int_equal(ms_store_open(f->path, &e), 0);
}

static void test_audit_pagination(void **state)
{
	json_t *page;
	int64_t before = 0;
	int seen = 0, pages = 0, i;
	int64_t last = INT64_MAX;

	for (i = 0; i < 25; i++) {
		struct ms_audit_entry a = {
		    .time_ms = 1700000000000 + i,
		    .subject = i % 2 ? "key:ci" : NULL,
		    .client = "127.0.0.1",
		    .method = "POST",
		    .path = "/api/v1/sessions",
		    .status = 200 + i,
		};

		assert_int_equal(ms_store_audit_add(&a), 0);
	}
	for (;;) {
		json_t *entries, *next;
		size_t k;

		assert_int_equal(ms_store_audit_list(before, 10, &page), 0);
		entries = json_object_get(page, "entries");
		next = json_object_get(page, "next_before");
		assert_non_null(next);
		pages++;
		for (k = 0; k < json_array_size(entries); k++) {
			json_t *en = json_array_get(entries, k);
			int64_t id = json_integer_value(json_object_get(en, "id"));
			int status = (int)json_integer_value(json_object_get(en, "status"));

			/* Newest first, strictly decreasing across pages. */
			assert_true(id < last);
			last = id;
			assert_int_equal(status, 200 + 24 - seen);
			assert_string_equal(json_string_value(json_object_get(en, "subject")),
			                    (24 - seen) % 2 ? "key:ci" : "anonymous");
			assert_string_equal(json_string_value(json_object_get(en, "method")),
			                    "POST");
			seen++;
		}
		if (json_is_null(next)) {
			json_decref(page);
			break;
		}
		assert_int_equal(json_array_size(entries), 10);
		before = json_integer_value(next);
		json_decref(page);
	}
	assert_int_equal(seen, 25);
	assert_int_equal(pages, 3);

	/* Exactly one page's worth: next_before is null, no empty extra page. */
	assert_int_equal(ms_store_audit_list(0, 25, &page), 0);
	assert_true(json_is_null(json_object_get(page, "next_before")));
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(page, "entries"), 24), "time")),
	                    "2023-11-14T22:13:20.000Z");
	json_decref(page);
}

static void test_audit_hostile_text(void **state)
{
	json_t *page, *en;
	char longpath[5000];
	struct ms_audit_entry a = {
	    .time_ms = 0,
	    .subject = "jwt:\xff\xfe",
	    .client = "::1",
	    .method = "GET",
	    .path = "/api/v1/\x1b[31m\n\xc3\xa9\xed\xa0\x80",
	    .status = 404,
	};

	assert_int_equal(ms_store_audit_add(&a), 0);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	a.path = longpath;
	assert_int_equal(ms_store_audit_add(&a), 0);
	assert_int_equal(ms_store_audit_list(0, 2, &page), 0);
	en = json_array_get(json_object_get(page, "entries"), 1);
	assert_non_null(en);
	assert_string_equal(json_string_value(json_object_get(en, "subject")), "jwt:??");
	/* ESC and LF replaced, the valid é kept, the encoded surrogate replaced. */
	assert_string_equal(json_string_value(json_object_get(en, "path")),
	                    "/api/v1/?[31m?\xc3\xa9???");
	assert_true(json_integer_value(json_object_get(en, "time_ms")) > 0);
	en = json_array_get(json_object_get(page, "entries"), 0);
	assert_int_equal(strlen(json_string_value(json_object_get(en, "path"))), 2048);
	json_decref(page);
}

static void *writer(void *arg)
{
	int t = (int)(intptr_t)arg, i;

	for (i = 0; i < 200; i++) {
		char id[32];
		json_t *d = json_pack("{si si}", "t", t, "i", i);
		struct ms_audit_entry a = {.method = "PUT", .path = id, .status = 200};

		snprintf(id, sizeof(id), "job_%d_%d", t, i);
		if (ms_store_put(MS_TABLE_JOBS, id, t % 2 ? "odd" : "even", d) != 0)
			return (void *)1;
		if (ms_store_audit_add(&a) != 0)
			return (void *)1;
		json_decref(d);
	}
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	pthread_t th[4];
	json_t *arr, *page;
	int i;

	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
	for (i = 0; i < 4; i++) {
		void *r;

		pthread_join(th[i], &r);
		assert_null(r);
	}
	assert_int_equal(ms_store_list(MS_TABLE_JOBS, NULL, &arr), 0);
	assert_int_equal(json_array_size(arr), 800);
	json_decref(arr);
	assert_int_equal(ms_store_list(MS_TABLE_JOBS, "odd", &arr), 0);
	assert_int_equal(json_array_size(arr), 400);
	json_decref(arr);
	assert_int_equal(ms_store_audit_list(0, 1000, &page), 0);
	assert_int_equal(json_array_size(json_object_get(page, "entries")), 800);
	json_decref(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_put_get_replace_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_owner_lists, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_persistence_and_schema, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refuses_newer_schema_and_bad_path, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_audit_pagination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_audit_hostile_text, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
