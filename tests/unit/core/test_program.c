/*
 * Unit tests for src/core/program.c with a real SQLite store and a real data
 * directory: uploads of Debian's u-boot ELF and micro:bit HEX and a raw
 * binary, content addressing (sha256sum agrees), file modes, refusal of
 * empty, oversized and lying files, program_path confinement (absolute,
 * relative, "..", symlinks in and out, sibling prefix), delete and list.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "core/program.h"
#include "core/store.h"

#define UBOOT "/usr/lib/u-boot/qemu_arm64/uboot.elf"
#define MBHEX "/usr/share/firmware-microbit-micropython/firmware.hex"

static char data_dir[64];

static int setup(void **state)
{
	char db[128];
	struct ms_err e;

	strcpy(data_dir, "/tmp/ms-test-program-XXXXXX");
	if (mkdtemp(data_dir) == NULL)
		return -1;
	snprintf(db, sizeof(db), "%s/ms.db", data_dir);
	if (ms_store_open(db, &e) != 0)
		return -1;
	return ms_programs_init(data_dir, 2u << 20);
}

static int teardown(void **state)
{
	char cmd[128];

	ms_store_close();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return buf;
}

static void sha256sum(const char *path, char out[65])
{
	char cmd[PATH_MAX + 32];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(out, 65, p));
	pclose(p);
}

/* Files in the programs directory, temporaries included. */
static int count_files(void)
{
	DIR *d = opendir(ms_programs_dir());
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static void test_init_dir(void **state)
{
	char want[PATH_MAX], path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/programs", data_dir);
	assert_non_null(realpath(path, want));
	assert_string_equal(ms_programs_dir(), want);
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(ms_programs_init("", 1), -EINVAL);
	/* A nested data directory that does not exist yet is created. */
	snprintf(path, sizeof(path), "%s/a/b", data_dir);
	assert_int_equal(ms_programs_init(path, 2u << 20), 0);
	snprintf(path, sizeof(path), "%s/a/b/programs", data_dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(ms_programs_init(data_dir, 2u << 20), 0);
}

static void test_add_elf_hex_bin(void **state)
{
	struct ms_program p, q, r;
	struct ms_err e;
	char sum[65];
	struct stat st;
	size_t n;
	uint8_t *stored, *orig;
	json_t *j;

	assert_int_equal(ms_programs_add_file(UBOOT, "uboot.elf", &p, &e), 0);
	sha256sum(UBOOT, sum);
	assert_string_equal(p.sha256, sum);
	assert_int_equal(strncmp(p.id, "prog_", 5), 0);
	assert_int_equal(strncmp(p.id + 5, sum, 24), 0);
	assert_int_equal(strlen(p.id), 29);
	assert_int_equal(p.format, MS_IMAGE_ELF);
	assert_string_equal(p.arch, "aarch64");
	assert_int_equal(p.elf_class, 64);
	assert_true(p.has_entry);
	assert_int_equal(p.entry, 0);
	assert_string_equal(p.name, "uboot.elf");
	assert_int_equal(p.size, 1086480);
	assert_true(strncmp(p.path, ms_programs_dir(), strlen(ms_programs_dir())) == 0);
	assert_non_null(strstr(p.path, ".elf"));
	assert_int_equal(stat(p.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	stored = read_file(p.path, &n);
	orig = read_file(UBOOT, &n);
	assert_memory_equal(stored, orig, n);

	/* Same bytes, other name: same program, no second file. */
	assert_int_equal(ms_programs_add(orig, n, "copy.elf", &q, &e), 0);
	assert_string_equal(q.id, p.id);
	assert_string_equal(q.name, "uboot.elf");
	assert_int_equal(q.created_at_ms, p.created_at_ms);
	free(stored);
	free(orig);

	assert_int_equal(ms_programs_add_file(MBHEX, "firmware.hex", &q, &e), 0);
	assert_int_equal(q.format, MS_IMAGE_IHEX);
	assert_true(q.has_entry);
	assert_int_equal(q.entry, 0x1ccd9);
	assert_non_null(strstr(q.path, ".hex"));
	j = ms_program_json(&q);
	assert_string_equal(json_string_value(json_object_get(j, "entry_point")), "0x0001ccd9");
	assert_string_equal(json_string_value(json_object_get(j, "format")), "ihex");
	assert_true(json_is_null(json_object_get(j, "arch")));
	assert_true(json_is_null(json_object_get(j, "elf_class")));
	json_decref(j);

	assert_int_equal(ms_programs_add((const uint8_t *)"\x00\x10\x00\x20\x09\x00\x00\x00", 8,
	                                 "../../etc/evil\nname $(rm -rf x).bin", &r, &e),
	                 0);
	assert_int_equal(r.format, MS_IMAGE_BIN);
	assert_string_equal(r.name, "evil_name___rm_-rf_x_.bin");
	assert_non_null(strstr(r.path, ".bin"));
	j = ms_program_json(&r);
	assert_true(json_is_null(json_object_get(j, "entry_point")));
	assert_int_equal(json_integer_value(json_object_get(j, "size")), 8);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "created_at"))), 24);
	json_decref(j);

	j = ms_program_json(&p);
	assert_string_equal(json_string_value(json_object_get(j, "entry_point")), "0x00000000");
	assert_string_equal(json_string_value(json_object_get(j, "arch")), "aarch64");
	assert_int_equal(json_integer_value(json_object_get(j, "elf_class")), 64);
	assert_string_equal(json_string_value(json_object_get(j, "sha256")), p.sha256);
	assert_string_equal(json_string_value(json_object_get(j, "id")), p.id);
	json_decref(j);

	/* Stored state survives a store reopen. */
	ms_store_close();
	{
		char db[128];

		snprintf(db, sizeof(db), "%s/ms.db", data_dir);
		assert_int_equal(ms_store_open(db, &e), 0);
	}
	assert_int_equal(ms_programs_get(p.id, &q, &e), 0);
	assert_string_equal(q.path, p.path);
	assert_int_equal(q.size, p.size);
	assert_int_equal(count_files(), 3);
}

static void test_refusals(void **state)
{
	struct ms_program p;
	struct ms_err e;
	size_t n;
	uint8_t *elf = read_file(UBOOT, &n);
	char big[] = "/tmp/ms-test-program-big-XXXXXX";
	int fd;

	assert_int_equal(ms_programs_add(elf, 0, "x", &p, &e), MS_EBADINPUT);
	assert_string_equal(e.code, "empty_file");
	assert_int_equal(ms_programs_add(elf, n / 2, "half.elf", &p, &e), MS_EBADINPUT);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "bad_image");
	/* A lying program header offset. */
	memset(elf + 32, 0xff, 8);
	assert_int_equal(ms_programs_add(elf, n, "lying.elf", &p, &e), MS_EBADINPUT);
	assert_string_equal(e.code, "bad_image");
	assert_int_equal(ms_programs_add((const uint8_t *)":10000000zz\n", 12, "x.hex", &p, &e),
	                 MS_EBADINPUT);
	assert_string_equal(e.code, "bad_image");
	free(elf);

	/* Over the 2 MiB limit, from memory and from a spool file. */
	elf = calloc(1, (2u << 20) + 1);
	assert_int_equal(ms_programs_add(elf, (2u << 20) + 1, "big.bin", &p, &e), MS_ETOOBIG);
	assert_int_equal(e.status, 413);
	assert_string_equal(e.code, "too_large");
	fd = mkstemp(big);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, elf, (2u << 20) + 1), (2u << 20) + 1);
	close(fd);
	assert_int_equal(ms_programs_add_file(big, "big.bin", &p, &e), MS_ETOOBIG);
	unlink(big);
	free(elf);
	assert_int_equal(ms_programs_add_file("/nonexistent/x", "x", &p, &e), MS_EINTERNAL);
	assert_int_equal(ms_programs_add_file("/tmp", "x", &p, &e), MS_EBADINPUT);

	/* Nothing stored, no temporary left behind. */
	assert_int_equal(count_files(), 0);
}

static void test_get_delete_list(void **state)
{
	struct ms_program a, b, p;
	struct ms_err e;
	json_t *list;

	assert_int_equal(ms_programs_add((const uint8_t *)"AAAA", 4, "a.bin", &a, &e), 0);
	assert_int_equal(ms_programs_add((const uint8_t *)"BBBB", 4, "b.bin", &b, &e), 0);
	list = ms_programs_list_json();
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")),
	                    a.id);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")),
	                    "b.bin");
	json_decref(list);

	assert_int_equal(ms_programs_get(a.id, &p, &e), 0);
	assert_string_equal(p.name, "a.bin");
	assert_int_equal(ms_programs_get("prog_000000000000000000000000", &p, &e), MS_ENOTFOUND);
	assert_int_equal(e.status, 404);
	assert_string_equal(e.code, "program_not_found");
	assert_int_equal(ms_programs_get("../../etc/passwd", &p, &e), MS_ENOTFOUND);
	assert_int_equal(ms_programs_get(NULL, &p, &e), MS_ENOTFOUND);

	assert_int_equal(ms_programs_delete(a.id, &e), 0);
	assert_int_equal(access(a.path, F_OK), -1);
	assert_int_equal(ms_programs_get(a.id, &p, &e), MS_ENOTFOUND);
	assert_int_equal(ms_programs_delete(a.id, &e), MS_ENOTFOUND);
	assert_int_equal(ms_programs_delete("prog_x", &e), MS_ENOTFOUND);
	list = ms_programs_list_json();
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);

	/* A record whose file vanished behind our back gets its file back on re-upload. */
	assert_int_equal(unlink(b.path), 0);
	assert_int_equal(ms_programs_add((const uint8_t *)"BBBB", 4, "b.bin", &p, &e), 0);
	assert_string_equal(p.id, b.id);
	assert_int_equal(access(b.path, R_OK), 0);

	/* Uploading again after delete brings the file back. */
	assert_int_equal(ms_programs_add((const uint8_t *)"AAAA", 4, "a.bin", &p, &e), 0);
	assert_string_equal(p.id, a.id);
	assert_int_equal(access(p.path, R_OK), 0);
}

static void expect_path(const char *path, int status)
{
	struct ms_program p;
	struct ms_err e;
	int rc;

	ms_err_clear(&e);
	rc = ms_programs_find_path(path, &p, &e);
	if (status == 0) {
		if (rc != 0)
			fail_msg("%s: %d %s", path, e.status, e.message);
		return;
	}
	if (rc == 0)
		fail_msg("%s: accepted, wanted %d", path, status);
	if (e.status != status)
		fail_msg("%s: got %d (%s), wanted %d", path, e.status, e.message, status);
	if (status == 403)
		assert_string_equal(e.code, "path_forbidden");
}

static void test_find_path(void **state)
{
	const char *dir = ms_programs_dir();
	struct ms_program p, f;
	struct ms_err e;
	char path[PATH_MAX], lnk[PATH_MAX], sibling[PATH_MAX];

	assert_int_equal(ms_programs_add((const uint8_t *)"\x01\x02\x03\x04", 4, "fw.bin", &p, &e),
	                 0);
	assert_int_equal(ms_programs_find_path(p.path, &f, &e), 0);
	assert_string_equal(f.id, p.id);
	/* Relative to the upload directory, and through "." and "..". */
	expect_path(strrchr(p.path, '/') + 1, 0);
	snprintf(path, sizeof(path), "%s/./../programs/%s", dir, strrchr(p.path, '/') + 1);
	expect_path(path, 0);
	/* A symlink inside pointing at a stored program resolves to it. */
	snprintf(lnk, sizeof(lnk), "%s/alias", dir);
	assert_int_equal(symlink(p.path, lnk), 0);
	expect_path(lnk, 0);
	unlink(lnk);

	/* Outside: 403. */
	expect_path("/etc/passwd", 403);
	expect_path("/nonexistent/dir/x.elf", 403);
	expect_path("../ms.db", 403);
	snprintf(path, sizeof(path), "%s/../ms.db", dir);
	expect_path(path, 403);
	expect_path(dir, 403);
	snprintf(path, sizeof(path), "%s/", dir);
	expect_path(path, 403);
	snprintf(path, sizeof(path), "%s/..", dir);
	expect_path(path, 403);
	snprintf(path, sizeof(path), "%s/../../../../../../etc/passwd", dir);
	expect_path(path, 403);
	/* A sibling whose name starts with the upload directory's name. */
	snprintf(sibling, sizeof(sibling), "%s-evil", dir);
	assert_int_equal(mkdir(sibling, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s", sibling, strrchr(p.path, '/') + 1);
	assert_int_equal(link(p.path, path), 0);
	expect_path(path, 403);
	unlink(path);
	rmdir(sibling);
	/* A symlink inside that leads outside. */
	snprintf(lnk, sizeof(lnk), "%s/escape", dir);
	assert_int_equal(symlink("/etc/passwd", lnk), 0);
	expect_path(lnk, 403);
	unlink(lnk);
	assert_int_equal(symlink("/etc", lnk), 0);
	snprintf(path, sizeof(path), "%s/passwd", lnk);
	expect_path(path, 403);
	unlink(lnk);

	/* Inside but not a stored program: 404. */
	snprintf(path, sizeof(path), "%s/%064d.elf", dir, 0);
	expect_path(path, 404);
	snprintf(path, sizeof(path), "%s/nothing-here", dir);
	expect_path(path, 404);
	snprintf(path, sizeof(path), "%s/%.64s.elf", dir, p.sha256); /* right hash, wrong ext */
	expect_path(path, 404);
	snprintf(path, sizeof(path), "%s/.tmp-abcdef", dir);
	expect_path(path, 404);

	expect_path("", 400);
	expect_path(NULL, 400);
}

struct racer {
	const uint8_t *data;
	size_t len;
	struct ms_program p;
	int rc;
};

static void *race_add(void *arg)
{
	struct racer *r = arg;
	struct ms_err e;

	r->rc = ms_programs_add(r->data, r->len, "same.hex", &r->p, &e);
	return NULL;
}

static void test_concurrent_same_upload(void **state)
{
	struct racer r[4];
	pthread_t th[4];
	size_t n;
	uint8_t *hex = read_file(MBHEX, &n);
	json_t *list;
	int i;

	for (i = 0; i < 4; i++) {
		r[i].data = hex;
		r[i].len = n;
		assert_int_equal(pthread_create(&th[i], NULL, race_add, &r[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].rc, 0);
		assert_string_equal(r[i].p.id, r[0].p.id);
	}
	list = ms_programs_list_json();
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	assert_int_equal(count_files(), 1);
	free(hex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_init_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_elf_hex_bin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_delete_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_find_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_same_upload, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
