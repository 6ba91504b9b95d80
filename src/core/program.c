/*
 * program: the firmware upload store; see program.h.
 *
 * Each upload is validated by image.c, hashed with SHA-256 (OpenSSL EVP),
 * written to <data_dir>/programs/.tmp-XXXXXX (0600), fsync'ed and renamed
 * to <sha256>.<elf|hex|bin>, then described by a document in the store
 * table MS_TABLE_PROGRAMS keyed by its id ("prog_" + 24 hex digits). The
 * document keeps the file's base name, never a full path, so the data
 * directory can move.
 *
 * "program_path" from the seed is honoured only for files whose real path
 * (realpath(3), symlinks resolved) lies inside the upload directory: the
 * prefix check includes the trailing slash, so a sibling directory such as
 * ".../programs-evil" does not pass.
 *
 * Threads: any thread. The directory and limit are set once by
 * ms_programs_init at start-up and read-only afterwards. lock serialises the
 * file + store sequences of add and delete, so a delete never removes the
 * file of an upload that is being stored; hashing and parsing run outside it.
 */
#include "core/program.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/store.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char dir[PATH_MAX]; /* real path of the upload directory; set at init */
static size_t dir_len;
static uint64_t max_bytes;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *ext_of(enum ms_image_format f)
{
	switch (f) {
	case MS_IMAGE_ELF:
		return "elf";
	case MS_IMAGE_IHEX:
		return "hex";
	default:
		return "bin";
	}
}

static enum ms_image_format format_from_name(const char *s)
{
	if (s == NULL)
		return MS_IMAGE_UNKNOWN;
	if (strcmp(s, "elf") == 0)
		return MS_IMAGE_ELF;
	if (strcmp(s, "ihex") == 0)
		return MS_IMAGE_IHEX;
	if (strcmp(s, "bin") == 0)
		return MS_IMAGE_BIN;
	return MS_IMAGE_UNKNOWN;
}

/* mkdir -p with mode for the missing components. */
static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

int ms_programs_init(const char *data_dir, uint64_t max)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (data_dir == NULL || data_dir[0] == '\0' || max == 0)
		return -EINVAL;
	if ((size_t)snprintf(path, sizeof(path), "%s/programs", data_dir) >= sizeof(path))
		return -ENAMETOOLONG;
	rc = mkdir_p(path, 0700);
	if (rc != 0) {
		ms_error("programs: cannot create %s: %s", path, strerror(-rc));
		return rc;
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/* Uploads are private to the daemon whatever the umask made of an old directory. */
	if ((st.st_mode & 0777) != 0700 && chmod(path, 0700) != 0)
		ms_warn("programs: cannot chmod 0700 %s: %s", path, strerror(errno));
	pthread_mutex_lock(&lock);
	if (realpath(path, dir) == NULL) {
		rc = -errno;
		dir[0] = '\0';
		dir_len = 0;
		pthread_mutex_unlock(&lock);
		return rc;
	}
	dir_len = strlen(dir);
	/* Room for "/<64 hex>.ext" inside struct ms_program.path. */
	if (dir_len + 70 >= sizeof(((struct ms_program *)0)->path)) {
		dir[0] = '\0';
		dir_len = 0;
		pthread_mutex_unlock(&lock);
		return -ENAMETOOLONG;
	}
	max_bytes = max;
	pthread_mutex_unlock(&lock);
	return 0;
}

const char *ms_programs_dir(void)
{
	return dir;
}

/* Keep a display name harmless: last path component, [A-Za-z0-9._+-] only, bounded. */
static void sanitise_name(const char *in, char *out, size_t size)
{
	const char *base = in;
	const char *p;
	size_t k = 0;

	out[0] = '\0';
	if (in == NULL)
		return;
	for (p = in; *p != '\0'; p++) {
		if (*p == '/' || *p == '\\')
			base = p + 1;
	}
	for (p = base; *p != '\0' && k + 1 < size; p++) {
		unsigned char c = (unsigned char)*p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '+';

		out[k++] = ok ? (char)c : '_';
	}
	out[k] = '\0';
}

static bool is_lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

static bool valid_id(const char *id)
{
	return id != NULL && strlen(id) == 29 && strncmp(id, "prog_", 5) == 0 &&
	    is_lower_hex(id + 5, 24);
}

static void set_path(struct ms_program *p)
{
	snprintf(p->path, sizeof(p->path), "%s/%s.%s", dir, p->sha256, ext_of(p->format));
}

static json_t *to_doc(const struct ms_program *p)
{
	char entry[24];

	snprintf(entry, sizeof(entry), "0x%" PRIx64, p->entry);
	return json_pack("{ss ss ss sI ss sb ss ss si sI ss}", "id", p->id, "name", p->name,
	                 "format", ms_image_format_name(p->format), "size", (json_int_t)p->size,
	                 "sha256", p->sha256, "has_entry", p->has_entry, "entry", entry, "arch",
	                 p->arch, "elf_class", p->elf_class, "created_ms",
	                 (json_int_t)p->created_at_ms, "file", strrchr(p->path, '/') + 1);
}

/* Rebuild a program from its document; MS_EINTERNAL when the record is damaged. */
static int from_doc(json_t *doc, struct ms_program *p)
{
	const char *id = NULL, *name = NULL, *format = NULL, *sha = NULL, *entry = NULL;
	const char *arch = NULL;
	json_int_t size = 0, created = 0;
	int has_entry = 0, elf_class = 0;
	char *end;

	memset(p, 0, sizeof(*p));
	if (json_unpack(doc, "{ss ss ss sI ss sb ss ss si sI}", "id", &id, "name", &name, "format",
	                &format, "size", &size, "sha256", &sha, "has_entry", &has_entry, "entry",
	                &entry, "arch", &arch, "elf_class", &elf_class, "created_ms",
	                &created) != 0)
		return MS_EINTERNAL;
	if (!valid_id(id) || strlen(sha) != 64 || !is_lower_hex(sha, 64) ||
	    strncmp(id + 5, sha, 24) != 0 || format_from_name(format) == MS_IMAGE_UNKNOWN ||
	    size < 0 || strlen(name) >= sizeof(p->name) || strlen(arch) >= sizeof(p->arch))
		return MS_EINTERNAL;
	errno = 0;
	p->entry = strtoull(entry, &end, 16);
	if (errno != 0 || *end != '\0')
		return MS_EINTERNAL;
	strcpy(p->id, id);
	strcpy(p->sha256, sha);
	strcpy(p->name, name);
	strcpy(p->arch, arch);
	p->format = format_from_name(format);
	p->size = (uint64_t)size;
	p->has_entry = has_entry;
	p->elf_class = elf_class;
	p->created_at_ms = created;
	set_path(p);
	return 0;
}

/* Look up by id. 0, -ENOENT, or MS_EINTERNAL (store failure or damaged record). */
static int lookup(const char *id, struct ms_program *p)
{
	json_t *doc;
	int rc;

	rc = ms_store_get(MS_TABLE_PROGRAMS, id, &doc);
	if (rc != 0)
		return rc == -ENOENT ? rc : MS_EINTERNAL;
	rc = from_doc(doc, p);
	json_decref(doc);
	if (rc != 0)
		ms_error("programs: damaged record %s", id);
	return rc;
}

static int write_all(int fd, const uint8_t *d, size_t len)
{
	while (len > 0) {
		ssize_t k = write(fd, d, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		d += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Write data to final through a temporary file in the same directory and rename. */
static int write_atomic(const char *final, const uint8_t *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, rc, dfd;

	snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", dir);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fchmod(fd, 0600) == 0 ? 0 : -errno;
	if (rc == 0)
		rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, final) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	/* Make the rename itself durable. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int ms_programs_add(const uint8_t *data, size_t len, const char *filename, struct ms_program *out,
                    struct ms_err *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	struct ms_image img;
	struct ms_program p;
	struct stat st;
	json_t *doc;
	unsigned i;
	int rc;

	if (dir_len == 0)
		return ms_fail(e, 500, "internal", "program store not initialised");
	if (len == 0)
		return ms_fail(e, 400, "empty_file", "the uploaded file is empty");
	if ((uint64_t)len > max_bytes)
		return ms_fail(e, 413, "too_large",
		               "the uploaded file is %zu bytes, the limit is %" PRIu64, len,
		               max_bytes);
	rc = ms_image_parse(data, len, 0, &img, e);
	if (rc != 0)
		return rc;
	memset(&p, 0, sizeof(p));
	p.format = img.format;
	p.size = len;
	snprintf(p.arch, sizeof(p.arch), "%s", img.arch);
	p.elf_class = img.elf_class;
	p.has_entry = img.has_entry;
	p.entry = img.entry;
	ms_image_free(&img);
	if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
		return ms_fail(e, 500, "internal", "sha-256 failed");
	for (i = 0; i < 32; i++)
		snprintf(p.sha256 + 2 * i, 3, "%02x", md[i]);
	snprintf(p.id, sizeof(p.id), "prog_%.24s", p.sha256);
	sanitise_name(filename, p.name, sizeof(p.name));
	p.created_at_ms = now_ms();
	set_path(&p);

	pthread_mutex_lock(&lock);
	rc = lookup(p.id, out);
	if (rc == 0) {
		/* Same bytes again: same program. Restore the file if someone removed it. */
		if (strcmp(out->sha256, p.sha256) != 0) {
			rc = ms_fail(e, 500, "internal", "program id collision for %s", p.id);
		} else if (stat(out->path, &st) != 0 || (uint64_t)st.st_size != out->size) {
			rc = write_atomic(out->path, data, len);
			if (rc != 0)
				rc = ms_fail(e, 500, "storage_error", "cannot store %s: %s",
				             out->id, strerror(-rc));
		}
		pthread_mutex_unlock(&lock);
		return rc;
	}
	if (rc != -ENOENT) {
		pthread_mutex_unlock(&lock);
		return ms_fail(e, 500, "storage_error", "cannot read the program store");
	}
	rc = write_atomic(p.path, data, len);
	if (rc != 0) {
		pthread_mutex_unlock(&lock);
		return ms_fail(e, 500, "storage_error", "cannot store the upload: %s",
		               strerror(-rc));
	}
	doc = to_doc(&p);
	rc = doc ? ms_store_put(MS_TABLE_PROGRAMS, p.id, NULL, doc) : -ENOMEM;
	json_decref(doc);
	if (rc != 0) {
		unlink(p.path);
		pthread_mutex_unlock(&lock);
		return ms_fail(e, 500, "storage_error", "cannot record the upload: %s",
		               ms_strerror(rc));
	}
	pthread_mutex_unlock(&lock);
	*out = p;
	return 0;
}

int ms_programs_add_file(const char *spool_path, const char *filename, struct ms_program *out,
                         struct ms_err *e)
{
	struct stat st;
	uint8_t *buf;
	size_t n = 0, cap;
	int fd, rc;

	if (dir_len == 0)
		return ms_fail(e, 500, "internal", "program store not initialised");
	fd = open(spool_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ms_fail(e, 500, "storage_error", "cannot open the upload %s: %s", spool_path,
		               strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ms_fail(e, 400, "bad_image", "the upload is not a regular file");
	}
	if ((uint64_t)st.st_size > max_bytes) {
		close(fd);
		return ms_fail(e, 413, "too_large",
		               "the uploaded file is %jd bytes, the limit is %" PRIu64,
		               (intmax_t)st.st_size, max_bytes);
	}
	/* One byte of slack shows a file that grew after fstat. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		return ms_fail(e, 500, "out_of_memory", "cannot allocate %zu bytes", cap);
	}
	while (n < cap) {
		ssize_t k = read(fd, buf + n, cap - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = ms_fail(e, 500, "storage_error", "cannot read the upload: %s",
			             strerror(errno));
			close(fd);
			free(buf);
			return rc;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (n > (size_t)st.st_size)
		rc = ms_fail(e, 409, "upload_changed", "the upload changed while being read");
	else
		rc = ms_programs_add(buf, n, filename, out, e);
	free(buf);
	return rc;
}

int ms_programs_get(const char *id, struct ms_program *out, struct ms_err *e)
{
	int rc;

	if (!valid_id(id))
		return ms_fail(e, 404, "program_not_found",
		               "no such program (ids look like prog_ and 24 hex digits)");
	rc = lookup(id, out);
	if (rc == -ENOENT)
		return ms_fail(e, 404, "program_not_found", "no program %s", id);
	if (rc != 0)
		return ms_fail(e, 500, "storage_error", "cannot read program %s", id);
	return 0;
}

static int forbidden(struct ms_err *e)
{
	return ms_fail(e, 403, "path_forbidden",
	               "program_path must name an uploaded program inside %s", dir);
}

int ms_programs_find_path(const char *path, struct ms_program *out, struct ms_err *e)
{
	char joined[PATH_MAX], resolved[PATH_MAX], parent[PATH_MAX];
	const char *rest, *base;
	char *slash;
	char id[40];
	struct ms_program p;
	int rc;

	if (dir_len == 0)
		return ms_fail(e, 500, "internal", "program store not initialised");
	if (path == NULL || path[0] == '\0')
		return ms_fail(e, 400, "bad_program_path", "program_path is empty");
	/* Relative paths are taken relative to the upload directory. */
	if ((size_t)snprintf(joined, sizeof(joined), "%s%s%s", path[0] == '/' ? "" : dir,
	                     path[0] == '/' ? "" : "/", path) >= sizeof(joined))
		return ms_fail(e, 400, "bad_program_path", "program_path is too long");

	if (realpath(joined, resolved) == NULL) {
		if (errno != ENOENT)
			return forbidden(e);
		/* The file does not exist: decide inside/outside from its directory. */
		slash = strrchr(joined, '/');
		base = slash + 1;
		if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
			return forbidden(e);
		if (slash == joined)
			strcpy(parent, "/");
		else
			snprintf(parent, sizeof(parent), "%.*s", (int)(slash - joined), joined);
		if (realpath(parent, resolved) == NULL)
			return forbidden(e);
		if (strlen(resolved) + 1 + strlen(base) >= sizeof(resolved))
			return forbidden(e);
		strcat(resolved, "/");
		strcat(resolved, base);
	}
	if (strncmp(resolved, dir, dir_len) != 0 || resolved[dir_len] != '/' ||
	    resolved[dir_len + 1] == '\0')
		return forbidden(e);

	rest = resolved + dir_len + 1;
	if (strchr(rest, '/') != NULL || strlen(rest) != 68 || rest[64] != '.' ||
	    !is_lower_hex(rest, 64))
		return ms_fail(e, 404, "program_not_found", "no uploaded program at that path");
	snprintf(id, sizeof(id), "prog_%.24s", rest);
	rc = lookup(id, &p);
	if (rc != 0 && rc != -ENOENT)
		return ms_fail(e, 500, "storage_error", "cannot read program %s", id);
	if (rc == -ENOENT || strncmp(p.sha256, rest, 64) != 0 ||
	    strcmp(rest + 65, ext_of(p.format)) != 0 || access(p.path, R_OK) != 0)
		return ms_fail(e, 404, "program_not_found", "no uploaded program at that path");
	*out = p;
	return 0;
}

int ms_programs_delete(const char *id, struct ms_err *e)
{
	struct ms_program p;
	int rc;

	if (!valid_id(id))
		return ms_fail(e, 404, "program_not_found",
		               "no such program (ids look like prog_ and 24 hex digits)");
	pthread_mutex_lock(&lock);
	rc = lookup(id, &p);
	if (rc == 0) {
		if (unlink(p.path) != 0 && errno != ENOENT)
			ms_warn("programs: cannot remove %s: %s", p.path, strerror(errno));
		rc = ms_store_delete(MS_TABLE_PROGRAMS, id);
	}
	pthread_mutex_unlock(&lock);
	if (rc == -ENOENT)
		return ms_fail(e, 404, "program_not_found", "no program %s", id);
	if (rc != 0)
		return ms_fail(e, 500, "storage_error", "cannot delete program %s", id);
	return 0;
}

json_t *ms_programs_list_json(void)
{
	json_t *docs, *arr, *d;
	size_t i;

	if (ms_store_list(MS_TABLE_PROGRAMS, NULL, &docs) != 0)
		return NULL;
	arr = json_array();
	json_array_foreach(docs, i, d)
	{
		struct ms_program p;

		/* A damaged record is logged and left out rather than failing the list. */
		if (from_doc(d, &p) != 0) {
			ms_error("programs: damaged record in the list");
			continue;
		}
		json_array_append_new(arr, ms_program_json(&p));
	}
	json_decref(docs);
	return arr;
}

json_t *ms_program_json(const struct ms_program *p)
{
	char entry[24], when[80];
	time_t s = (time_t)(p->created_at_ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (int)((p->created_at_ms % 1000 + 1000) % 1000));
	snprintf(entry, sizeof(entry), "0x%08" PRIx64, p->entry);
	return json_pack("{ss ss ss sI ss so so so ss}", "id", p->id, "name", p->name, "format",
	                 ms_image_format_name(p->format), "size", (json_int_t)p->size, "sha256",
	                 p->sha256, "entry_point", p->has_entry ? json_string(entry) : json_null(),
	                 "arch", p->arch[0] ? json_string(p->arch) : json_null(), "elf_class",
	                 p->elf_class ? json_integer(p->elf_class) : json_null(), "created_at",
	                 when);
}
