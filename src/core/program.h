/*
 * program: uploaded firmware, stored by content hash under
 * <data_dir>/programs/<sha256>.<ext>, described in the store.
 *
 * Upload validation goes through image.c: an ELF, Intel HEX or raw binary
 * that does not parse is refused. The same bytes uploaded twice give the
 * same program id.
 *
 * Threads: any thread; the store serialises writes. Files are written to a
 * temporary name and renamed, so a reader never sees half a file.
 */
#ifndef MS_PROGRAM_H
#define MS_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/err.h"
#include "core/image.h"

struct ms_program {
	char id[40]; /* "prog_" + first 24 hex digits of sha256 */
	char sha256[65];
	char name[128]; /* uploaded file name, sanitised; may be "" */
	enum ms_image_format format;
	uint64_t size;
	char arch[24];
	int elf_class;
	bool has_entry;
	uint64_t entry;
	char path[512]; /* absolute path of the stored file */
	int64_t created_at_ms;
};

/* Create <data_dir>/programs (0700) and remember the upload limit. */
int ms_programs_init(const char *data_dir, uint64_t max_bytes);

/* Absolute path of the upload directory. */
const char *ms_programs_dir(void);

/*
 * Validate and store len bytes. filename may be NULL. 413 "too_large" above
 * the limit, 400 "bad_image" when it does not parse, 400 "empty_file".
 */
int ms_programs_add(const uint8_t *data, size_t len, const char *filename, struct ms_program *out,
                    struct ms_err *e);

/* Same, from a file already on disk (the upload spool); the file is not removed. */
int ms_programs_add_file(const char *spool_path, const char *filename, struct ms_program *out,
                         struct ms_err *e);

int ms_programs_get(const char *id, struct ms_program *out, struct ms_err *e);

/*
 * Resolve the seed's "program_path": accepted only when its real path
 * (symlinks resolved) lies inside the upload directory and names a stored
 * program: 403 "path_forbidden" otherwise, 404 when inside but unknown.
 * A relative path is taken relative to the upload directory; an empty one
 * is 400 "bad_program_path".
 */
int ms_programs_find_path(const char *path, struct ms_program *out, struct ms_err *e);

/* 404 when absent. The file is removed too. */
int ms_programs_delete(const char *id, struct ms_err *e);

/* New array of program objects, oldest first; NULL when the store fails. */
json_t *ms_programs_list_json(void);

/*
 * The API shape: {id, name, format, size, sha256, entry_point ("0x..." or
 * null), arch, elf_class, created_at (RFC 3339)}.
 */
json_t *ms_program_json(const struct ms_program *p);

#endif
