/*
 * qemu_caps: what the installed QEMU binaries can do, asked from them
 * (-machine help, -cpu help, -device help) once at daemon start, and the
 * check of a session's board_config against it (unknown boards and CPUs
 * are refused with the closest valid names). Also the text parsers for
 * QEMU's output, exposed in qemu.h so that tests can feed them hostile
 * input.
 *
 * Threads: ms__qemu_caps_init/fini run on the main thread before and after
 * any session exists; the cache is read-only in between, so every other
 * function may be called from any thread without locking. The parsers and
 * helpers are pure.
 */
#include "backend/qemu.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

extern char **environ;

#define MAX_BINS 48

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- capability cache ------------------------------------------------- */

static struct ms__qemu_bin bins[MAX_BINS];
static size_t n_bins;
static json_t *caps; /* the cached capability object */
static json_t *all_boards; /* sorted names over every binary */

/*
 * Names the seed's README uses that QEMU 7.2 renamed; accepted so that the
 * seed's example bodies work verbatim.
 */
static const char *const board_aliases[][2] = {
    {"raspi2", "raspi2b"},
    {"raspi3", "raspi3b"},
};

/* Boards where QEMU 7.2 aborts on loadvm (EMULATORS.md §1.3). */
static const char *const no_restore_boards[] = {"lm3s6965evb", "lm3s811evb"};

static bool json_array_has(json_t *arr, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
			return true;
	}
	return false;
}

static void sorted_insert_unique(json_t *arr, const char *name)
{
	size_t i, n = json_array_size(arr);

	for (i = 0; i < n; i++) {
		int c = strcmp(json_string_value(json_array_get(arr, i)), name);

		if (c == 0)
			return;
		if (c > 0)
			break;
	}
	json_array_insert_new(arr, i, json_string(name));
}

/*
 * Run argv (no shell) and capture at most cap-1 bytes of its standard output
 * (standard error too when with_stderr) into a NUL-terminated heap buffer.
 */
int ms__qemu_run_capture(char *const argv[], bool with_stderr, int timeout_ms, char **out,
                         int *wstatus)
{
	posix_spawn_file_actions_t fa;
	int p[2];
	pid_t pid;
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int64_t deadline = mono_ms() + timeout_ms;
	int rc, st = 0;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(buf);
		return -errno;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	if (with_stderr)
		posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	else
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		free(buf);
		return -rc;
	}
	for (;;) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		int left = (int)(deadline - mono_ms());
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, left) <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (len + 4096 > cap) {
			char *nb;

			if (cap >= (16u << 20)) {
				kill(pid, SIGKILL);
				break;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				kill(pid, SIGKILL);
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(p[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	*out = buf;
	if (wstatus)
		*wstatus = st;
	return 0;
}

static bool is_warning(const char *line, size_t n)
{
	for (size_t k = 0; k + 8 <= n; k++) {
		if (memcmp(line + k, "warning:", 8) == 0)
			return true;
	}
	return false;
}

/*
 * The stderr line that explains a death: the last one QEMU itself wrote
 * ("qemu-system-arm: ..." or "qemu: fatal: ..."), not the register dump that
 * follows a lockup; otherwise the last non-empty line.
 */
void ms__qemu_last_line(const char *tail, size_t len, char *buf, size_t cap)
{
	const char *best = NULL, *last = NULL;
	size_t best_len = 0, last_len = 0;
	size_t i = 0;

	buf[0] = '\0';
	if (!tail)
		return;
	while (i < len) {
		size_t j = i;
		size_t n;

		while (j < len && tail[j] != '\n')
			j++;
		n = j - i;
		while (n > 0 && (tail[i + n - 1] == '\r' || tail[i + n - 1] == ' '))
			n--;
		/* Warnings ("nic ... has no peer") never explain a death. */
		if (n > 0 && !is_warning(tail + i, n)) {
			last = tail + i;
			last_len = n;
			if (strncmp(tail + i, "qemu", 4) == 0) {
				best = tail + i;
				best_len = n;
			}
		}
		i = j + 1;
	}
	if (!best) {
		best = last;
		best_len = last_len;
	}
	if (best)
		snprintf(buf, cap, "%.*s", (int)best_len, best);
	/* It becomes an API string: plain ASCII only. */
	for (char *c = buf; *c; c++) {
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	}
}

/* ---- text parsers ------------------------------------------------------ */

json_t *ms__qemu_parse_machines(const char *text)
{
	json_t *arr = json_array();
	const char *p = text;

	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char line[512];
		char name[64];
		const char *rest;
		size_t k = 0;

		if (n >= sizeof(line))
			goto next;
		memcpy(line, p, n);
		line[n] = '\0';
		if (n == 0 || isspace((unsigned char)line[0]) || strchr(line, ':') == line + n - 1)
			goto next;
		while (line[k] && !isspace((unsigned char)line[k]) && k < sizeof(name) - 1)
			k++;
		if (line[k] && !isspace((unsigned char)line[k]))
			goto next;
		memcpy(name, line, k);
		name[k] = '\0';
		/* Names are identifiers; anything else is not a machine line. */
		for (size_t i = 0; i < k; i++) {
			if (!isalnum((unsigned char)name[i]) && !strchr("-_.", name[i]))
				goto next;
		}
		if (k == 0 || strcmp(name, "none") == 0)
			goto next;
		rest = line + k;
		while (*rest == ' ' || *rest == '\t')
			rest++;
		{
			json_t *m = json_pack("{s:s,s:s}", "name", name, "description", rest);
			const char *al = strstr(rest, "(alias of ");

			if (al) {
				char target[64];

				if (sscanf(al, "(alias of %63[^)])", target) == 1)
					json_object_set_new(m, "alias_of", json_string(target));
			}
			json_array_append_new(arr, m);
		}
	next:
		p = eol ? eol + 1 : NULL;
	}
	return arr;
}

json_t *ms__qemu_parse_cpus(const char *text)
{
	json_t *arr = json_array();
	const char *p = text;

	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char line[512], tok[64];

		if (n > 0 && n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = '\0';
			/* Headers ("Available CPUs:") end in a colon; x86 prefixes lines with "x86". */
			if (line[n - 1] != ':') {
				const char *q = line;

				while (*q == ' ' || *q == '\t')
					q++;
				if (strncmp(q, "x86 ", 4) == 0)
					q += 4;
				while (*q == ' ')
					q++;
				if (sscanf(q, "%63s", tok) == 1) {
					bool ok = true;

					for (const char *c = tok; *c; c++) {
						if (!isalnum((unsigned char)*c) &&
						    !strchr("-_.", *c))
							ok = false;
					}
					if (ok && !json_array_has(arr, tok))
						json_array_append_new(arr, json_string(tok));
				}
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	return arr;
}

json_t *ms__qemu_parse_devices(const char *text)
{
	json_t *per = json_array(), *buses = json_array();
	const char *p = text;
	char category[64] = "";

	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char line[512], name[96], bus[64];
		int used = 0;

		if (n > 0 && n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = '\0';
			if (line[n - 1] == ':' && strncmp(line, "name ", 5) != 0) {
				/* "Storage devices:" -> "storage" */
				size_t k = 0;

				while (line[k] && line[k] != ' ' && line[k] != ':' &&
				       k < sizeof(category) - 1) {
					category[k] = (char)tolower((unsigned char)line[k]);
					k++;
				}
				category[k] = '\0';
			} else if (sscanf(line, "name \"%95[^\"]\"%n", name, &used) == 1 &&
			           used > 0) {
				const char *b = strstr(line, ", bus ");
				json_t *d = json_pack("{s:s,s:s}", "name", name, "category",
				                      category[0] ? category : "uncategorized");

				if (b && sscanf(b, ", bus %63[^,]", bus) == 1) {
					char lower[64];
					size_t k;

					for (k = 0; bus[k] && k < sizeof(lower) - 1; k++)
						lower[k] = (char)tolower((unsigned char)bus[k]);
					lower[k] = '\0';
					/* "usb-bus" and "usb" are the same kind of bus to a user. */
					if (k > 4 && strcmp(lower + k - 4, "-bus") == 0)
						lower[k - 4] = '\0';
					json_object_set_new(d, "bus", json_string(lower));
					sorted_insert_unique(buses, lower);
				}
				json_array_append_new(per, d);
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	return json_pack("{s:o,s:o}", "peripherals", per, "bus_types", buses);
}

static const char *region_kind(const char *type, int prio)
{
	if (strstr(type, "rom"))
		return "rom";
	if (strstr(type, "ram"))
		return "ram";
	/*
	 * create_unimplemented_device() maps its i/o region at priority -1000;
	 * small negative priorities are real background devices (nvic-default).
	 */
	if (prio <= -1000)
		return "unimplemented";
	return "io";
}

static json_t *parse_view(const char *text, const char *as_line)
{
	json_t *arr = json_array();
	const char *p = text;
	bool in_view = false, seen_memory = false, done = false;
	uint64_t prev_end = 0;

	while (p && *p && !done) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char line[1024];

		if (n >= sizeof(line))
			goto next;
		memcpy(line, p, n);
		line[n] = '\0';
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		if (strncmp(line, "FlatView #", 10) == 0) {
			if (seen_memory)
				done = true;
			in_view = true;
			goto next;
		}
		if (!in_view)
			goto next;
		if (strstr(line, as_line)) {
			seen_memory = true;
			goto next;
		}
		if (seen_memory) {
			uint64_t a, b;
			int prio, used = 0;
			char type[64];
			const char *name;
			char clean[256];
			size_t cl;
			const char *kind;
			json_t *last;

			if (sscanf(line, " %" SCNx64 "-%" SCNx64 " (prio %d, %63[^)]): %n", &a, &b,
			           &prio, type, &used) != 4 ||
			    used == 0 || b < a)
				goto next;
			name = line + used;
			snprintf(clean, sizeof(clean), "%s", name);
			cl = strlen(clean);
			/* A trailing " @<16 hex digits>" is the offset inside the region. */
			if (cl > 18 && clean[cl - 18] == ' ' && clean[cl - 17] == '@') {
				bool hex = true;

				for (size_t i = cl - 16; i < cl; i++) {
					if (!isxdigit((unsigned char)clean[i]))
						hex = false;
				}
				if (hex)
					clean[cl - 18] = '\0';
			}
			kind = region_kind(type, prio);
			last = json_array_size(arr) ? json_array_get(arr, json_array_size(arr) - 1)
			                            : NULL;
			if (last && prev_end + 1 == a &&
			    strcmp(json_string_value(json_object_get(last, "name")), clean) == 0 &&
			    strcmp(json_string_value(json_object_get(last, "kind")), kind) == 0) {
				uint64_t base = strtoull(
				    json_string_value(json_object_get(last, "base")), NULL, 16);
				char sz[24];

				snprintf(sz, sizeof(sz), "0x%" PRIx64, b - base + 1);
				json_object_set_new(last, "size", json_string(sz));
			} else {
				char bs[24], sz[24];

				snprintf(bs, sizeof(bs), "0x%" PRIx64, a);
				snprintf(sz, sizeof(sz), "0x%" PRIx64, b - a + 1);
				json_array_append_new(arr,
				                      json_pack("{s:s,s:s,s:s,s:s}", "name", clean,
				                                "base", bs, "size", sz, "kind",
				                                kind));
			}
			prev_end = b;
		}
	next:
		p = eol ? eol + 1 : NULL;
	}
	return arr;
}

json_t *ms__qemu_parse_mtree(const char *text)
{
	/* What the first CPU sees (an M-profile SoC container), else system memory. */
	json_t *arr = parse_view(text, "AS \"cpu-memory-0\"");

	if (json_array_size(arr) > 0)
		return arr;
	json_decref(arr);
	return parse_view(text, "AS \"memory\"");
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag +
			    (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));

			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

void ms__qemu_closest(const char *word, json_t *names, size_t max, char *buf, size_t cap)
{
	size_t n = json_array_size(names);
	size_t *score = calloc(n ? n : 1, sizeof(*score));
	size_t used = 0, wl = strlen(word);

	buf[0] = '\0';
	if (!score)
		return;
	for (size_t i = 0; i < n; i++) {
		const char *c = json_string_value(json_array_get(names, i));

		score[i] = c ? edit_distance(word, c) : SIZE_MAX;
		/* A typed prefix ("mps2") should suggest what it starts. */
		if (c && wl >= 2 && strncasecmp(c, word, wl) == 0)
			score[i] = score[i] > 1 ? 1 : score[i];
	}
	for (size_t k = 0; k < max; k++) {
		size_t best = SIZE_MAX, bi = 0;

		for (size_t i = 0; i < n; i++) {
			if (score[i] < best) {
				best = score[i];
				bi = i;
			}
		}
		if (best == SIZE_MAX)
			break;
		used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0, "%s%s",
		                         used ? ", " : "",
		                         json_string_value(json_array_get(names, bi)));
		if (used >= cap)
			break;
		score[bi] = SIZE_MAX;
	}
	free(score);
}

/* ---- capabilities ----------------------------------------------------- */

int ms__qemu_find_in_path(const char *name, char *out, size_t cap)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL;

	if (strchr(name, '/')) {
		if (access(name, X_OK) != 0)
			return -errno;
		snprintf(out, cap, "%s", name);
		return 0;
	}
	copy = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (!copy)
		return -ENOMEM;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, cap, "%s/%s", d, name);
		if (access(out, X_OK) == 0) {
			free(copy);
			return 0;
		}
	}
	free(copy);
	return -ENOENT;
}

static int probe_binary(const char *path)
{
	struct ms__qemu_bin *b;
	const char *base = strrchr(path, '/');
	char *out = NULL;
	char *argv[4];
	int st;

	if (n_bins >= MAX_BINS)
		return -ENOSPC;
	for (size_t i = 0; i < n_bins; i++) {
		if (strcmp(bins[i].path, path) == 0)
			return 0;
	}
	b = &bins[n_bins];
	memset(b, 0, sizeof(*b));
	snprintf(b->path, sizeof(b->path), "%s", path);
	base = base ? base + 1 : path;
	snprintf(b->arch, sizeof(b->arch), "%s",
	         strncmp(base, "qemu-system-", 12) == 0 ? base + 12 : base);

	argv[0] = b->path;
	argv[1] = "-machine";
	argv[2] = "help";
	argv[3] = NULL;
	if (ms__qemu_run_capture(argv, false, 10000, &out, &st) != 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st)) {
		free(out);
		return -ENOEXEC;
	}
	b->machines = ms__qemu_parse_machines(out);
	free(out);
	argv[1] = "-cpu";
	if (ms__qemu_run_capture(argv, false, 10000, &out, &st) != 0) {
		json_decref(b->machines);
		return -ENOEXEC;
	}
	b->cpus = ms__qemu_parse_cpus(out);
	free(out);
	argv[1] = "-device";
	if (ms__qemu_run_capture(argv, false, 10000, &out, &st) != 0) {
		json_decref(b->machines);
		json_decref(b->cpus);
		return -ENOEXEC;
	}
	b->devices = ms__qemu_parse_devices(out);
	free(out);
	b->machine_names = json_array();
	{
		size_t i;
		json_t *m;

		json_array_foreach(b->machines, i, m)
		    json_array_append(b->machine_names, json_object_get(m, "name"));
	}
	if (json_array_size(b->machines) == 0) {
		json_decref(b->machines);
		json_decref(b->cpus);
		json_decref(b->devices);
		json_decref(b->machine_names);
		return -ENOEXEC;
	}
	n_bins++;
	return 0;
}

static int scan_dir_binaries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char names[MAX_BINS][256];
	size_t n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < MAX_BINS) {
		if (strncmp(de->d_name, "qemu-system-", 12) == 0)
			snprintf(names[n++], sizeof(names[0]), "%s/%s", dir, de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
	for (size_t i = 0; i < n; i++)
		probe_binary(names[i]);
	return 0;
}

static json_t *build_caps(void)
{
	json_t *c, *boards = json_array(), *cpus = json_array(), *per = json_array(),
	           *buses = json_array(), *bl = json_array(), *aliases = json_object();
	json_t *seen_dev = json_object();

	for (size_t i = 0; i < n_bins; i++) {
		size_t k;
		json_t *v;

		json_array_foreach(bins[i].machine_names, k, v)
		    sorted_insert_unique(boards, json_string_value(v));
		json_array_foreach(bins[i].cpus, k, v)
		    sorted_insert_unique(cpus, json_string_value(v));
		json_array_foreach(json_object_get(bins[i].devices, "bus_types"), k, v)
		    sorted_insert_unique(buses, json_string_value(v));
		json_array_foreach(json_object_get(bins[i].devices, "peripherals"), k, v)
		{
			const char *name = json_string_value(json_object_get(v, "name"));

			if (!json_object_get(seen_dev, name)) {
				json_object_set_new(seen_dev, name, json_true());
				sorted_insert_unique(per, name);
			}
		}
		json_array_append_new(
		    bl,
		    json_pack("{s:s,s:s,s:I,s:I}", "path", bins[i].path, "arch", bins[i].arch,
		              "boards", (json_int_t)json_array_size(bins[i].machines), "processors",
		              (json_int_t)json_array_size(bins[i].cpus)));
	}
	for (size_t i = 0; i < sizeof(board_aliases) / sizeof(board_aliases[0]); i++) {
		if (json_array_has(boards, board_aliases[i][1]))
			json_object_set_new(aliases, board_aliases[i][0],
			                    json_string(board_aliases[i][1]));
	}
	json_decref(seen_dev);
	all_boards = json_incref(boards);
	c = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:[s,s]}", "backend", "qemu", "boards",
	              boards, "processors", cpus, "peripherals", per, "bus_types", buses,
	              "operations", ms_backend_operations(&ms_backend_qemu), "binaries", bl,
	              "board_aliases", aliases, "snapshot_restore_unsupported",
	              no_restore_boards[0], no_restore_boards[1]);
	return c;
}

static void caps_clear(void)
{
	for (size_t i = 0; i < n_bins; i++) {
		json_decref(bins[i].machines);
		json_decref(bins[i].machine_names);
		json_decref(bins[i].cpus);
		json_decref(bins[i].devices);
	}
	n_bins = 0;
	json_decref(caps);
	caps = NULL;
	json_decref(all_boards);
	all_boards = NULL;
}

void ms__qemu_caps_fini(void)
{
	caps_clear();
}

int ms__qemu_caps_init(const char *want, struct ms_err *e)
{
	char path[PATH_MAX];
	int rc;

	caps_clear();
	rc = ms__qemu_find_in_path(want, path, sizeof(path));
	if (rc != 0)
		return ms_fail(e, 500, "qemu_missing", "cannot find qemu binary %s: %s", want,
		               ms_strerror(rc));
	if (probe_binary(path) != 0)
		return ms_fail(e, 500, "qemu_broken", "%s does not answer -machine help", path);
	/* Other architectures' binaries (aarch64-only boards such as raspi3b). */
	{
		char dir[PATH_MAX];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			scan_dir_binaries(dir);
		}
		if (strcmp(dir, "/usr/bin") != 0)
			scan_dir_binaries("/usr/bin");
	}
	caps = build_caps();
	ms_info("qemu: %zu binaries, %zu boards", n_bins, json_array_size(all_boards));
	return 0;
}

json_t *ms__qemu_caps_json(void)
{
	return caps ? json_deep_copy(caps) : json_pack("{s:s}", "backend", "qemu");
}

/* ---- board_config validation ------------------------------------------ */

static const char *alias_target(const char *board)
{
	for (size_t i = 0; i < sizeof(board_aliases) / sizeof(board_aliases[0]); i++) {
		if (strcmp(board, board_aliases[i][0]) == 0)
			return board_aliases[i][1];
	}
	return board;
}

static json_t *machine_of(const struct ms__qemu_bin *b, const char *name)
{
	size_t i;
	json_t *m;

	json_array_foreach(b->machines, i, m)
	{
		if (strcmp(json_string_value(json_object_get(m, "name")), name) == 0)
			return m;
	}
	return NULL;
}

bool ms__qemu_bin_fits_arch(const struct ms__qemu_bin *b, const char *arch)
{
	if (!arch || !arch[0])
		return true;
	if (strcmp(arch, "arm") == 0)
		return strcmp(b->arch, "arm") == 0 || strcmp(b->arch, "aarch64") == 0;
	return strcmp(b->arch, arch) == 0;
}

/*
 * Resolve a board_config (and, when known, the program's architecture) to a
 * binary, machine and options. 400 with the closest valid names otherwise.
 */
int ms__qemu_resolve(json_t *bc, const char *prog_arch, struct ms__qemu_resolved *r,
                     struct ms_err *e)
{
	json_t *jb, *jc, *jm, *jn;
	const char *board, *cpu = "";

	memset(r, 0, sizeof(*r));
	if (!n_bins)
		return ms_fail(e, 501, "not_supported", "the qemu backend found no qemu binary");
	if (!json_is_object(bc))
		return ms_fail(e, 400, "bad_board_config", "board_config must be an object");
	{
		const char *key;
		json_t *val;

		/* A key we would silently ignore is a lie about the machine the user gets. */
		json_object_foreach(bc, key, val)
		{
			if (strcmp(key, "memory_map") == 0)
				return ms_fail(
				    e, 501, "not_supported",
				    "the qemu backend runs QEMU's own board models and cannot "
				    "change their memory map (the rehost backend can)");
			if (strcmp(key, "board") != 0 && strcmp(key, "cpu") != 0 &&
			    strcmp(key, "memory") != 0 && strcmp(key, "network") != 0)
				return ms_fail(
				    e, 400, "bad_board_config",
				    "unknown board_config key \"%.64s\" for qemu (known: board, "
				    "cpu, memory, network)",
				    key);
		}
	}
	jb = json_object_get(bc, "board");
	if (!json_is_string(jb) || json_string_length(jb) == 0)
		return ms_fail(e, 400, "bad_board_config",
		               "board_config.board is required for the qemu backend (see GET "
		               "/api/v1/capabilities)");
	board = alias_target(json_string_value(jb));
	jc = json_object_get(bc, "cpu");
	if (jc && !json_is_null(jc)) {
		if (!json_is_string(jc))
			return ms_fail(e, 400, "bad_board_config",
			               "board_config.cpu must be a string");
		cpu = json_string_value(jc);
	}
	{
		bool board_known = false;
		const struct ms__qemu_bin *cpu_hint = NULL;

		for (size_t i = 0; i < n_bins && !r->bin; i++) {
			const struct ms__qemu_bin *b = &bins[i];

			if (!machine_of(b, board))
				continue;
			board_known = true;
			if (!cpu_hint)
				cpu_hint = b;
			if (cpu[0] && !json_array_has(b->cpus, cpu))
				continue;
			if (!ms__qemu_bin_fits_arch(b, prog_arch))
				continue;
			r->bin = b;
		}
		if (!board_known) {
			char near[256];

			ms__qemu_closest(json_string_value(jb), all_boards, 3, near, sizeof(near));
			return ms_fail(e, 400, "unknown_board",
			               "unknown board \"%.64s\" for qemu; closest: %s",
			               json_string_value(jb), near);
		}
		if (!r->bin && cpu[0]) {
			bool any = false;

			for (size_t i = 0; i < n_bins; i++) {
				if (machine_of(&bins[i], board) &&
				    json_array_has(bins[i].cpus, cpu))
					any = true;
			}
			if (!any) {
				char near[256];

				ms__qemu_closest(cpu, cpu_hint->cpus, 3, near, sizeof(near));
				return ms_fail(e, 400, "unknown_cpu",
				               "unknown cpu \"%.64s\" for board %s; closest: %s",
				               cpu, board, near);
			}
		}
		if (!r->bin)
			return ms_fail(e, 400, "incompatible_program",
			               "no installed qemu runs %s programs on board %s%s%s",
			               prog_arch, board, cpu[0] ? " with cpu " : "", cpu);
	}
	snprintf(r->machine, sizeof(r->machine), "%s", board);
	snprintf(r->cpu, sizeof(r->cpu), "%s", cpu);
	{
		const char *desc =
		    json_string_value(json_object_get(machine_of(r->bin, board), "description"));

		r->m_profile = desc && strstr(desc, "Cortex-M");
	}
	for (size_t i = 0; i < sizeof(no_restore_boards) / sizeof(no_restore_boards[0]); i++) {
		if (strcmp(r->machine, no_restore_boards[i]) == 0)
			r->no_restore = true;
	}
	jm = json_object_get(bc, "memory");
	if (jm && !json_is_null(jm)) {
		if (json_is_integer(jm)) {
			json_int_t mb = json_integer_value(jm);

			if (mb < 1 || mb > 65536)
				return ms_fail(e, 400, "bad_board_config",
				               "board_config.memory is in MiB, 1..65536");
			snprintf(r->memory, sizeof(r->memory), "%lldM", (long long)mb);
		} else if (json_is_string(jm)) {
			const char *m = json_string_value(jm);
			size_t n = strlen(m), digits = 0;
			unsigned long long v;
			char unit = 'M';

			while (digits < n && isdigit((unsigned char)m[digits]))
				digits++;
			if (digits == 0 || digits > 7 || n > digits + 2 ||
			    (n == digits + 1 && !strchr("KMGkmg", m[digits])) ||
			    (n == digits + 2 &&
			     (!strchr("KMGkmg", m[digits]) ||
			      toupper((unsigned char)m[digits + 1]) != 'B')))
				return ms_fail(e, 400, "bad_board_config",
				               "board_config.memory must look like 256M, 1G or a "
				               "number of MiB");
			v = strtoull(m, NULL, 10);
			if (n > digits)
				unit = (char)toupper((unsigned char)m[digits]);
			if (v == 0 || (unit == 'G' && v > 64) || (unit == 'M' && v > 65536) ||
			    (unit == 'K' && v > 67108864ULL))
				return ms_fail(e, 400, "bad_board_config",
				               "board_config.memory is out of range (at most 64G)");
			snprintf(r->memory, sizeof(r->memory), "%llu%c", v, unit);
		} else {
			return ms_fail(
			    e, 400, "bad_board_config",
			    "board_config.memory must be a number of MiB or a string like 256M");
		}
	}
	jn = json_object_get(bc, "network");
	if (jn && !json_is_null(jn)) {
		if (!json_is_boolean(jn))
			return ms_fail(e, 400, "bad_board_config",
			               "board_config.network must be true or false");
		r->network = json_is_true(jn);
	}
	return 0;
}
