/*
 * board: board description files for the rehost engine (see board.h).
 *
 * YAML is read with libyaml's event parser into a jansson tree, then the
 * tree is checked field by field, so every malformed file is refused with
 * what is wrong and where. Threads: pure, any thread.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <unicorn/unicorn.h>
#include <yaml.h>

#include "rehost/board.h"

const char *const ms_rh_cpus[] = {
    "cortex-m0", "cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", NULL,
};

int ms_rh_cpu_model(const char *name, bool *fpu, bool *v6m)
{
	bool f = false, v6 = false;
	int model;

	if (strcmp(name, "cortex-m0") == 0 || strcmp(name, "cortex-m0plus") == 0 ||
	    strcmp(name, "cortex-m0+") == 0) {
		model = UC_CPU_ARM_CORTEX_M0;
		v6 = true;
	} else if (strcmp(name, "cortex-m3") == 0) {
		model = UC_CPU_ARM_CORTEX_M3;
	} else if (strcmp(name, "cortex-m4") == 0) {
		model = UC_CPU_ARM_CORTEX_M4;
		f = true;
	} else if (strcmp(name, "cortex-m7") == 0) {
		model = UC_CPU_ARM_CORTEX_M7;
		f = true;
	} else if (strcmp(name, "cortex-m33") == 0) {
		model = UC_CPU_ARM_CORTEX_M33;
		f = true;
	} else {
		return -1;
	}
	if (fpu != NULL)
		*fpu = f;
	if (v6m != NULL)
		*v6m = v6;
	return model;
}

const char *ms_rh_boards_dir(void)
{
	static char dir[PATH_MAX];
	const char *env = getenv("MS_BOARDS_DIR");
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env != NULL && env[0] != 0)
		return env;
	if (access("boards", R_OK | X_OK) == 0)
		return "boards";
	/* The executable lives in <repo>/build/: try <repo>/boards. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = 0;
			slash = strrchr(exe, '/');
			if (slash != NULL) {
				*slash = 0;
				snprintf(dir, sizeof(dir), "%s/boards", exe);
				if (access(dir, R_OK | X_OK) == 0)
					return dir;
			}
		}
	}
	return "boards";
}

/* ---- YAML to JSON ---- */

struct yparse {
	yaml_parser_t p;
	const char *name;
	struct ms_err *e;
	int depth;
};

static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	char *end;
	unsigned long long v;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, len);
	if (len > 0 && len < 24 && (s[0] >= '0' && s[0] <= '9')) {
		errno = 0;
		v = strtoull(s, &end, 0);
		if (errno == 0 && *end == 0 && v <= (unsigned long long)INT64_MAX)
			return json_integer((json_int_t)v);
	}
	if (len > 1 && len < 24 && s[0] == '-' && s[1] >= '0' && s[1] <= '9') {
		long long sv;

		errno = 0;
		sv = strtoll(s, &end, 0);
		if (errno == 0 && *end == 0)
			return json_integer(sv);
	}
	if (strcmp(s, "true") == 0)
		return json_true();
	if (strcmp(s, "false") == 0)
		return json_false();
	if (strcmp(s, "null") == 0 || strcmp(s, "~") == 0)
		return json_null();
	return json_stringn(s, len);
}

static int yfail(struct yparse *y, const yaml_mark_t *mk, const char *what)
{
	return ms_fail(y->e, 400, "bad_yaml", "%s:%zu:%zu: %s", y->name, mk->line + 1,
	               mk->column + 1, what);
}

static int parse_node(struct yparse *y, yaml_event_t *first, json_t **out);

static int next_event(struct yparse *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->p, ev)) {
		return ms_fail(y->e, 400, "bad_yaml", "%s:%zu:%zu: %s", y->name,
		               y->p.problem_mark.line + 1, y->p.problem_mark.column + 1,
		               y->p.problem != NULL ? y->p.problem : "syntax error");
	}
	return 0;
}

static int parse_node(struct yparse *y, yaml_event_t *ev, json_t **out)
{
	yaml_event_t sub;
	json_t *node, *key, *val;
	int rc;

	if (++y->depth > 32) {
		rc = yfail(y, &ev->start_mark, "nesting too deep");
		goto out;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		*out = scalar_value(ev);
		rc = *out != NULL ? 0 : yfail(y, &ev->start_mark, "bad scalar");
		goto out;
	case YAML_ALIAS_EVENT:
		rc = yfail(y, &ev->start_mark, "aliases are not supported");
		goto out;
	case YAML_SEQUENCE_START_EVENT:
		node = json_array();
		for (;;) {
			if ((rc = next_event(y, &sub)) != 0) {
				json_decref(node);
				goto out;
			}
			if (sub.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&sub);
				break;
			}
			rc = parse_node(y, &sub, &val);
			yaml_event_delete(&sub);
			if (rc != 0) {
				json_decref(node);
				goto out;
			}
			json_array_append_new(node, val);
		}
		*out = node;
		rc = 0;
		goto out;
	case YAML_MAPPING_START_EVENT:
		node = json_object();
		for (;;) {
			if ((rc = next_event(y, &sub)) != 0) {
				json_decref(node);
				goto out;
			}
			if (sub.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&sub);
				break;
			}
			if (sub.type != YAML_SCALAR_EVENT) {
				rc = yfail(y, &sub.start_mark, "mapping keys must be scalars");
				yaml_event_delete(&sub);
				json_decref(node);
				goto out;
			}
			key = json_stringn((const char *)sub.data.scalar.value,
			                   sub.data.scalar.length);
			yaml_event_delete(&sub);
			if (key == NULL || (rc = next_event(y, &sub)) != 0) {
				if (key == NULL)
					rc = ms_fail(y->e, 400, "bad_yaml", "%s: bad key", y->name);
				json_decref(key);
				json_decref(node);
				goto out;
			}
			rc = parse_node(y, &sub, &val);
			yaml_event_delete(&sub);
			if (rc != 0) {
				json_decref(key);
				json_decref(node);
				goto out;
			}
			json_object_set_new(node, json_string_value(key), val);
			json_decref(key);
		}
		*out = node;
		rc = 0;
		goto out;
	default:
		rc = yfail(y, &ev->start_mark, "unexpected YAML event");
		goto out;
	}
out:
	y->depth--;
	return rc;
}

int ms_rh_yaml_to_json(const char *yaml, size_t len, const char *name, json_t **out,
                       struct ms_err *e)
{
	struct yparse y = {.name = name, .e = e};
	yaml_event_t ev;
	json_t *doc = NULL;
	int rc;

	*out = NULL;
	if (len > (1u << 20))
		return ms_fail(e, 413, "too_large", "%s: larger than 1 MiB", name);
	if (!yaml_parser_initialize(&y.p))
		return ms_fail(e, 500, "internal", "yaml parser: out of memory");
	yaml_parser_set_input_string(&y.p, (const unsigned char *)yaml, len);
	for (;;) {
		if ((rc = next_event(&y, &ev)) != 0)
			break;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT ||
		    ev.type == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (doc != NULL) {
			rc = yfail(&y, &ev.start_mark, "more than one document");
			yaml_event_delete(&ev);
			break;
		}
		rc = parse_node(&y, &ev, &doc);
		yaml_event_delete(&ev);
		if (rc != 0)
			break;
	}
	yaml_parser_delete(&y.p);
	if (rc != 0) {
		json_decref(doc);
		return rc;
	}
	if (doc == NULL)
		return ms_fail(e, 400, "bad_yaml", "%s: empty document", name);
	*out = doc;
	return 0;
}

/* ---- board files ---- */

static int get_u32(json_t *o, const char *key, bool required, uint32_t *out, const char *ctx,
                   struct ms_err *e)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL) {
		if (required)
			return ms_fail(e, 400, "bad_board", "%s: missing %s", ctx, key);
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		return ms_fail(e, 400, "bad_board", "%s: %s must be an integer in 0..0xffffffff",
		               ctx, key);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int get_str(json_t *o, const char *key, bool required, char *out, size_t cap,
                   const char *ctx, struct ms_err *e)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL) {
		if (required)
			return ms_fail(e, 400, "bad_board", "%s: missing %s", ctx, key);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= cap)
		return ms_fail(e, 400, "bad_board", "%s: %s must be a string of 1..%zu characters",
		               ctx, key, cap - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int check_keys(json_t *o, const char *const *allowed, const char *ctx, struct ms_err *e)
{
	const char *k;
	json_t *v;
	int i;

	json_object_foreach(o, k, v)
	{
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return ms_fail(e, 400, "bad_board", "%s: unknown key %s", ctx, k);
	}
	return 0;
}

int ms_rh_board_parse(const char *yaml, size_t len, const char *name, struct ms_rh_board *b,
                      struct ms_err *e)
{
	static const char *const top_keys[] = {"name",   "cpu",     "cpu_hz",      "irqs",
	                                       "memory", "devices", "description", NULL};
	static const char *const mem_keys[] = {"name", "base", "size", "readonly", "alias", NULL};
	static const char *const dev_keys[] = {"type", "name", "base", "irqs", "console", NULL};
	json_t *doc, *arr, *it, *v;
	char ctx[160];
	size_t i, j;
	uint32_t u;
	bool fpu, v6m;
	int rc;

	memset(b, 0, sizeof(*b));
	if ((rc = ms_rh_yaml_to_json(yaml, len, name, &doc, e)) != 0)
		return rc;
	if (!json_is_object(doc)) {
		rc = ms_fail(e, 400, "bad_board", "%s: top level must be a mapping", name);
		goto out;
	}
	if ((rc = check_keys(doc, top_keys, name, e)) != 0)
		goto out;
	if ((rc = get_str(doc, "name", true, b->name, sizeof(b->name), name, e)) != 0 ||
	    (rc = get_str(doc, "cpu", true, b->cpu, sizeof(b->cpu), name, e)) != 0)
		goto out;
	if (ms_rh_cpu_model(b->cpu, &fpu, &v6m) < 0) {
		rc = ms_fail(e, 400, "bad_board", "%s: unknown cpu %s", name, b->cpu);
		goto out;
	}
	u = 25000000;
	if ((rc = get_u32(doc, "cpu_hz", false, &u, name, e)) != 0)
		goto out;
	if (u < 1000) {
		rc = ms_fail(e, 400, "bad_board", "%s: cpu_hz below 1000", name);
		goto out;
	}
	b->cpu_hz = u;
	b->irqs = 32;
	if ((rc = get_u32(doc, "irqs", false, &b->irqs, name, e)) != 0)
		goto out;
	if (b->irqs < 1 || b->irqs > 240) {
		rc = ms_fail(e, 400, "bad_board", "%s: irqs must be 1..240", name);
		goto out;
	}
	arr = json_object_get(doc, "memory");
	if (arr != NULL && !json_is_array(arr)) {
		rc = ms_fail(e, 400, "bad_board", "%s: memory must be a list", name);
		goto out;
	}
	json_array_foreach(arr, i, it)
	{
		struct ms_rh_board_mem *mm;

		snprintf(ctx, sizeof(ctx), "%s: memory[%zu]", name, i);
		if (b->n_mem >= MS_RH_BOARD_MAX_MEM) {
			rc = ms_fail(e, 400, "bad_board", "%s: more than %d regions", ctx,
			             MS_RH_BOARD_MAX_MEM);
			goto out;
		}
		if (!json_is_object(it)) {
			rc = ms_fail(e, 400, "bad_board", "%s: must be a mapping", ctx);
			goto out;
		}
		mm = &b->mem[b->n_mem];
		if ((rc = check_keys(it, mem_keys, ctx, e)) != 0 ||
		    (rc = get_str(it, "name", true, mm->name, sizeof(mm->name), ctx, e)) != 0 ||
		    (rc = get_u32(it, "base", true, &mm->base, ctx, e)) != 0 ||
		    (rc = get_str(it, "alias", false, mm->alias, sizeof(mm->alias), ctx, e)) != 0)
			goto out;
		if (mm->alias[0] == 0 && (rc = get_u32(it, "size", true, &mm->size, ctx, e)) != 0)
			goto out;
		v = json_object_get(it, "readonly");
		if (v != NULL && !json_is_boolean(v)) {
			rc =
			    ms_fail(e, 400, "bad_board", "%s: readonly must be true or false", ctx);
			goto out;
		}
		mm->readonly = json_is_true(v);
		if (mm->alias[0] != 0) {
			for (j = 0; j < (size_t)b->n_mem; j++)
				if (strcmp(b->mem[j].name, mm->alias) == 0)
					break;
			if (j == (size_t)b->n_mem) {
				rc = ms_fail(e, 400, "bad_board",
				             "%s: alias of %s, which is not declared before it",
				             ctx, mm->alias);
				goto out;
			}
			mm->size = b->mem[j].size;
		}
		if ((mm->base & 0xfff) != 0 || mm->size == 0 || (mm->size & 0xfff) != 0 ||
		    (uint64_t)mm->base + mm->size > 0x100000000ull) {
			rc = ms_fail(e, 400, "bad_board",
			             "%s: base and size must be multiples of 4 KiB inside 4 GiB",
			             ctx);
			goto out;
		}
		b->n_mem++;
	}
	arr = json_object_get(doc, "devices");
	if (arr != NULL && !json_is_array(arr)) {
		rc = ms_fail(e, 400, "bad_board", "%s: devices must be a list", name);
		goto out;
	}
	json_array_foreach(arr, i, it)
	{
		struct ms_rh_board_dev *d;
		json_t *irqs;

		snprintf(ctx, sizeof(ctx), "%s: devices[%zu]", name, i);
		if (b->n_dev >= MS_RH_BOARD_MAX_DEV) {
			rc = ms_fail(e, 400, "bad_board", "%s: too many devices", ctx);
			goto out;
		}
		if (!json_is_object(it)) {
			rc = ms_fail(e, 400, "bad_board", "%s: must be a mapping", ctx);
			goto out;
		}
		d = &b->dev[b->n_dev];
		if ((rc = check_keys(it, dev_keys, ctx, e)) != 0 ||
		    (rc = get_str(it, "type", true, d->type, sizeof(d->type), ctx, e)) != 0 ||
		    (rc = get_str(it, "name", true, d->name, sizeof(d->name), ctx, e)) != 0 ||
		    (rc = get_u32(it, "base", true, &d->base, ctx, e)) != 0)
			goto out;
		if (strcmp(d->type, "cmsdk-uart") != 0 && strcmp(d->type, "cmsdk-timer") != 0) {
			rc = ms_fail(e, 400, "bad_board",
			             "%s: unknown device type %s (known: cmsdk-uart, cmsdk-timer)",
			             ctx, d->type);
			goto out;
		}
		if ((d->base & 0xfff) != 0) {
			rc = ms_fail(e, 400, "bad_board", "%s: base must be 4 KiB aligned", ctx);
			goto out;
		}
		irqs = json_object_get(it, "irqs");
		if (irqs != NULL) {
			if (!json_is_array(irqs) || json_array_size(irqs) > 4) {
				rc = ms_fail(e, 400, "bad_board",
				             "%s: irqs must be a list of up to 4", ctx);
				goto out;
			}
			for (j = 0; j < json_array_size(irqs); j++) {
				v = json_array_get(irqs, j);
				if (!json_is_integer(v) || json_integer_value(v) < -1 ||
				    json_integer_value(v) >= (json_int_t)b->irqs) {
					rc = ms_fail(e, 400, "bad_board",
					             "%s: irq out of range 0..%u (or -1 for none)",
					             ctx, b->irqs - 1);
					goto out;
				}
				d->irqs[j] = (int)json_integer_value(v);
			}
			d->n_irqs = (int)json_array_size(irqs);
		}
		v = json_object_get(it, "console");
		if (v != NULL && !json_is_boolean(v)) {
			rc = ms_fail(e, 400, "bad_board", "%s: console must be true or false", ctx);
			goto out;
		}
		d->console = json_is_true(v);
		b->n_dev++;
	}
	rc = 0;
out:
	json_decref(doc);
	return rc;
}

static bool valid_board_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > 60 || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

int ms_rh_board_load(const char *name, struct ms_rh_board *b, struct ms_err *e)
{
	char path[PATH_MAX + 80];
	char *buf;
	FILE *f;
	long n;
	int rc;

	if (!valid_board_name(name))
		return ms_fail(e, 400, "bad_board", "bad board name");
	snprintf(path, sizeof(path), "%s/%s.yaml", ms_rh_boards_dir(), name);
	f = fopen(path, "rb");
	if (f == NULL)
		return ms_fail(e, 404, "board_not_found", "unknown board %s", name);
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return ms_fail(e, 400, "bad_board", "%s: unreadable or larger than 1 MiB", path);
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return ms_fail(e, 500, "internal", "cannot read %s", path);
	}
	fclose(f);
	buf[n] = 0;
	rc = ms_rh_board_parse(buf, (size_t)n, path, b, e);
	free(buf);
	if (rc == 0 && strcmp(b->name, name) != 0)
		rc = ms_fail(e, 400, "bad_board", "%s: name %s does not match the file name", path,
		             b->name);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

json_t *ms_rh_board_list(void)
{
	json_t *arr = json_array();
	DIR *d = opendir(ms_rh_boards_dir());
	struct dirent *de;
	char *names[256];
	size_t n = 0, i;

	if (d == NULL)
		return arr;
	while ((de = readdir(d)) != NULL && n < 256) {
		size_t l = strlen(de->d_name);

		if (l > 5 && strcmp(de->d_name + l - 5, ".yaml") == 0) {
			names[n] = strndup(de->d_name, l - 5);
			if (names[n] != NULL)
				n++;
		}
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (i = 0; i < n; i++) {
		json_array_append_new(arr, json_string(names[i]));
		free(names[i]);
	}
	return arr;
}
