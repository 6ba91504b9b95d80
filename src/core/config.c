/*
 * config: config.yaml loading and validation; see config.h for the keys.
 *
 * Parsed with libyaml's document API (yaml_parser_load) and walked against
 * the table of known keys below, not with libcyaml: libcyaml 1.3.1 (Debian
 * bookworm) reports schema errors only through its log callback as text
 * without any line or column, while the issue asks for FILE:LINE:COL on
 * every unknown key and bad value. libyaml's nodes carry their start mark,
 * so each message points at the offending key or value.
 *
 * Typing follows YAML 1.2's core schema, strictly: booleans are plain
 * true/false (a quoted "true" is a string and is refused), integers are
 * plain decimal (or 0x hex) numbers, sizes are integers in bytes or strings
 * with a unit (K, M, G, T and KiB ... TiB are powers of 1024; kB, MB, GB, TB
 * powers of 1000). null, ~ or an empty value leave a section at its
 * defaults and an optional string unset.
 *
 * Threads: loading is done once at start-up by the main thread; the loaded
 * struct is read-only afterwards and needs no lock. No globals.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "core/log.h"

#define MAX_CONFIG_BYTES (1u << 20)
#define MIN_JWT_SECRET 16
#define MAX_API_KEY 512
#define MAX_FLOW_OPENERS 4096

/* strdup that cannot return NULL: a config we cannot hold is fatal. */
static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL) {
		ms_error("config: out of memory");
		abort();
	}
	return p;
}

static char *absolute_path(const char *path);

void ms_config_defaults(struct ms_config *c)
{
	memset(c, 0, sizeof(*c));
	c->server.port = 8080;
	c->server.mode = xstrdup("release");
	c->server.bind = xstrdup("127.0.0.1");
	/* Absolute already, so a daemon run without a config file gets one too. */
	c->server.data_dir = absolute_path("./data");
	if (c->server.data_dir == NULL)
		c->server.data_dir = xstrdup("./data");
	c->server.threads = 4;
	c->auth.enabled = false;
	c->backends.qemu.enabled = true;
	c->backends.qemu.binary = xstrdup("qemu-system-arm");
	c->backends.rehost.enabled = true;
	c->backends.renode.enabled = false;
	c->backends.openocd.enabled = false;
	c->resources.max_sessions = 10;
	c->resources.session_timeout = 3600;
	c->resources.gdb_port_min = 3400;
	c->resources.gdb_port_max = 3999;
	c->resources.max_upload_bytes = UINT64_C(64) << 20;
	c->resources.max_snapshot_bytes = UINT64_C(1) << 30;
	c->monitoring.enabled = true;
}

void ms_config_free(struct ms_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->server.mode);
	free(c->server.bind);
	free(c->server.data_dir);
	for (i = 0; i < c->auth.n_api_keys; i++)
		free(c->auth.api_keys[i]);
	free(c->auth.api_keys);
	free(c->auth.jwt_secret);
	free(c->backends.qemu.binary);
	free(c->backends.rehost.binary);
	free(c->backends.renode.binary);
	free(c->backends.openocd.binary);
	memset(c, 0, sizeof(*c));
}

/* ---- the schema ---- */

enum kind {
	K_SECTION, /* a mapping of sub-fields */
	K_BOOL,
	K_INT, /* int within [min, max] */
	K_UINT, /* unsigned within [min, max] */
	K_SIZE, /* uint64_t bytes, >= min */
	K_STR, /* non-empty string, required when present */
	K_OPT_STR, /* string or null */
	K_MODE, /* "debug" or "release" */
	K_KEYS, /* list of API keys */
	K_SECRET, /* JWT secret: null or at least MIN_JWT_SECRET bytes */
};

struct field {
	const char *key;
	enum kind kind;
	size_t off; /* offset in struct ms_config */
	long long min, max;
	const struct field *sub; /* K_SECTION: NULL-terminated table */
};

#define F(k, kind, member, lo, hi)                                                                 \
	{                                                                                          \
		k, kind, offsetof(struct ms_config, member), lo, hi, NULL                          \
	}
#define END                                                                                        \
	{                                                                                          \
		NULL, 0, 0, 0, 0, NULL                                                             \
	}

static const struct field server_fields[] = {
    F("port", K_INT, server.port, 1, 65535),       F("mode", K_MODE, server.mode, 0, 0),
    F("bind", K_STR, server.bind, 0, 0),           F("data_dir", K_STR, server.data_dir, 0, 0),
    F("threads", K_UINT, server.threads, 1, 1024), END,
};

static const struct field auth_fields[] = {
    F("enabled", K_BOOL, auth.enabled, 0, 0),
    F("api_keys", K_KEYS, auth.api_keys, 0, 0),
    F("jwt_secret", K_SECRET, auth.jwt_secret, 0, 0),
    END,
};

#define BACKEND_FIELDS(name)                                                                       \
	static const struct field name##_fields[] = {                                              \
	    F("enabled", K_BOOL, backends.name.enabled, 0, 0),                                     \
	    F("binary", K_OPT_STR, backends.name.binary, 0, 0),                                    \
	    END,                                                                                   \
	}
BACKEND_FIELDS(qemu);
BACKEND_FIELDS(rehost);
BACKEND_FIELDS(renode);
BACKEND_FIELDS(openocd);

static const struct field backends_fields[] = {
    {"qemu", K_SECTION, 0, 0, 0, qemu_fields},
    {"rehost", K_SECTION, 0, 0, 0, rehost_fields},
    {"renode", K_SECTION, 0, 0, 0, renode_fields},
    {"openocd", K_SECTION, 0, 0, 0, openocd_fields},
    END,
};

static const struct field resources_fields[] = {
    F("max_sessions", K_UINT, resources.max_sessions, 1, 100000),
    F("session_timeout", K_UINT, resources.session_timeout, 0, INT_MAX),
    F("gdb_port_min", K_INT, resources.gdb_port_min, 1, 65535),
    F("gdb_port_max", K_INT, resources.gdb_port_max, 1, 65535),
    F("max_upload_bytes", K_SIZE, resources.max_upload_bytes, 1, 0),
    F("max_snapshot_bytes", K_SIZE, resources.max_snapshot_bytes, 1, 0),
    END,
};

static const struct field monitoring_fields[] = {
    F("enabled", K_BOOL, monitoring.enabled, 0, 0),
    END,
};

static const struct field root_fields[] = {
    {"server", K_SECTION, 0, 0, 0, server_fields},
    {"auth", K_SECTION, 0, 0, 0, auth_fields},
    {"backends", K_SECTION, 0, 0, 0, backends_fields},
    {"resources", K_SECTION, 0, 0, 0, resources_fields},
    {"monitoring", K_SECTION, 0, 0, 0, monitoring_fields},
    END,
};

#undef F
#undef END

/* ---- walking the document ---- */

struct ctx {
	const char *name;
	yaml_document_t *doc;
	struct ms_config *c;
	struct ms_err *e;
};

static int fail_at(struct ctx *x, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct ctx *x, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ms_fail(x->e, 400, "bad_config", "%s:%zu:%zu: %s", x->name, m->line + 1,
	               m->column + 1, msg);
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a scalar";
	}
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_plain(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (!is_plain(n))
		return false;
	v = sval(n);
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	    strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Short, printable excerpt of a scalar for messages. */
static void excerpt(const yaml_node_t *n, char *buf, size_t size)
{
	size_t i, k = 0;
	const unsigned char *v = n->data.scalar.value;

	for (i = 0; i < n->data.scalar.length && k + 4 < size; i++) {
		if (i == 40) {
			memcpy(buf + k, "...", 3);
			k += 3;
			break;
		}
		buf[k++] = v[i] >= 0x20 && v[i] < 0x7f ? (char)v[i] : '?';
	}
	buf[k] = '\0';
}

/* Plain decimal (or 0x hex) integer, sign allowed so that "-1" gets a clear message. */
static int scalar_int(struct ctx *x, const yaml_node_t *n, const char *path, long long *out)
{
	char ex[48];
	const char *v;
	char *end;
	long long val;

	if (n->type != YAML_SCALAR_NODE)
		return fail_at(x, &n->start_mark, "%s: expected an integer, got %s", path,
		               node_kind(n));
	excerpt(n, ex, sizeof(ex));
	if (is_null(n))
		return fail_at(x, &n->start_mark, "%s: expected an integer, got nothing", path);
	if (!is_plain(n))
		return fail_at(x, &n->start_mark,
		               "%s: expected an integer, got the quoted string \"%s\"", path, ex);
	v = sval(n);
	if (v[0] == '-')
		return fail_at(x, &n->start_mark, "%s: must not be negative (%s)", path, ex);
	if (!((v[0] >= '0' && v[0] <= '9') || (v[0] == '+' && v[1] >= '0' && v[1] <= '9')))
		return fail_at(x, &n->start_mark, "%s: expected an integer, got \"%s\"", path, ex);
	errno = 0;
	val = strtoll(v, &end, 0);
	if (*end != '\0' || end == v)
		return fail_at(x, &n->start_mark, "%s: expected an integer, got \"%s\"", path, ex);
	if (errno == ERANGE)
		return fail_at(x, &n->start_mark, "%s: %s is out of range", path, ex);
	*out = val;
	return 0;
}

static int scalar_size(struct ctx *x, const yaml_node_t *n, const char *path, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {
	    {"", 1},
	    {"B", 1},
	    {"K", UINT64_C(1) << 10},
	    {"KiB", UINT64_C(1) << 10},
	    {"kB", 1000},
	    {"KB", 1000},
	    {"M", UINT64_C(1) << 20},
	    {"MiB", UINT64_C(1) << 20},
	    {"MB", 1000000},
	    {"G", UINT64_C(1) << 30},
	    {"GiB", UINT64_C(1) << 30},
	    {"GB", 1000000000},
	    {"T", UINT64_C(1) << 40},
	    {"TiB", UINT64_C(1) << 40},
	    {"TB", 1000000000000},
	};
	char ex[48];
	const char *v;
	char *end;
	unsigned long long num;
	size_t i;

	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return fail_at(x, &n->start_mark,
		               "%s: expected a size in bytes (e.g. 67108864 or \"64MiB\"), got %s",
		               path, n->type == YAML_SCALAR_NODE ? "nothing" : node_kind(n));
	excerpt(n, ex, sizeof(ex));
	v = sval(n);
	if (v[0] == '-')
		return fail_at(x, &n->start_mark, "%s: must not be negative (%s)", path, ex);
	if (v[0] < '0' || v[0] > '9')
		return fail_at(x, &n->start_mark, "%s: expected a size, got \"%s\"", path, ex);
	errno = 0;
	num = strtoull(v, &end, 10);
	if (errno == ERANGE)
		return fail_at(x, &n->start_mark, "%s: %s is out of range", path, ex);
	while (*end == ' ')
		end++;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0)
			break;
	}
	if (i == sizeof(units) / sizeof(units[0]))
		return fail_at(x, &n->start_mark,
		               "%s: unknown size unit in \"%s\" (use bytes, K, M, G, T, KiB ... "
		               "TiB or kB ... TB)",
		               path, ex);
	if (num > UINT64_MAX / units[i].mult)
		return fail_at(x, &n->start_mark, "%s: %s is out of range", path, ex);
	*out = num * units[i].mult;
	return 0;
}

/* A string scalar; plain scalars count too (a key like 12345 is text). */
static int scalar_str(struct ctx *x, const yaml_node_t *n, const char *path, bool nullable,
                      char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return fail_at(x, &n->start_mark, "%s: expected a string, got %s", path,
		               node_kind(n));
	if (is_null(n)) {
		if (!nullable)
			return fail_at(x, &n->start_mark, "%s: expected a string, got nothing",
			               path);
		free(*out);
		*out = NULL;
		return 0;
	}
	if (strlen(sval(n)) != n->data.scalar.length)
		return fail_at(x, &n->start_mark, "%s: contains a NUL byte", path);
	if (n->data.scalar.length == 0)
		return fail_at(x, &n->start_mark, "%s: must not be empty", path);
	free(*out);
	*out = xstrdup(sval(n));
	return 0;
}

/* An API key travels in an HTTP header: printable, no spaces, bounded. */
static const char *api_key_problem(const char *k)
{
	size_t i, n = strlen(k);

	if (n == 0)
		return "is empty";
	if (n > MAX_API_KEY)
		return "is longer than 512 bytes";
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)k[i];

		if (ch <= 0x20 || ch >= 0x7f)
			return "contains a space, control or non-ASCII character";
	}
	return NULL;
}

static int load_keys(struct ctx *x, const yaml_node_t *n, const char *path)
{
	struct ms_config *c = x->c;
	yaml_node_item_t *it;
	size_t i, count;
	char **keys;
	int rc;

	if (is_null(n))
		count = 0;
	else if (n->type != YAML_SEQUENCE_NODE)
		return fail_at(x, &n->start_mark, "%s: expected a list of strings, got %s", path,
		               node_kind(n));
	else
		count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	keys = calloc(count ? count : 1, sizeof(*keys));
	if (keys == NULL)
		return ms_fail(x->e, 500, "out_of_memory", "config: out of memory");
	for (i = 0; i < count; i++) {
		const yaml_node_t *k;
		const char *why;
		char sub[160];

		it = n->data.sequence.items.start + i;
		k = yaml_document_get_node(x->doc, *it);
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (k == NULL)
			rc = ms_fail(x->e, 400, "bad_config", "%s: malformed document", x->name);
		else
			rc = scalar_str(x, k, sub, false, &keys[i]);
		if (rc == 0 && (why = api_key_problem(keys[i])) != NULL)
			rc = fail_at(x, &k->start_mark, "%s: api key %s", sub, why);
		if (rc != 0) {
			for (i = 0; i < count; i++)
				free(keys[i]);
			free(keys);
			return rc;
		}
	}
	for (i = 0; i < c->auth.n_api_keys; i++)
		free(c->auth.api_keys[i]);
	free(c->auth.api_keys);
	c->auth.api_keys = keys;
	c->auth.n_api_keys = count;
	return 0;
}

static int load_value(struct ctx *x, const struct field *f, const yaml_node_t *n, const char *path)
{
	char *base = (char *)x->c + f->off;
	long long v = 0;
	char ex[48];
	int rc;

	switch (f->kind) {
	case K_BOOL:
		if (n->type == YAML_SCALAR_NODE)
			excerpt(n, ex, sizeof(ex));
		if (is_plain(n) &&
		    (strcmp(sval(n), "true") == 0 || strcmp(sval(n), "True") == 0 ||
		     strcmp(sval(n), "TRUE") == 0)) {
			*(bool *)base = true;
			return 0;
		}
		if (is_plain(n) &&
		    (strcmp(sval(n), "false") == 0 || strcmp(sval(n), "False") == 0 ||
		     strcmp(sval(n), "FALSE") == 0)) {
			*(bool *)base = false;
			return 0;
		}
		if (n->type != YAML_SCALAR_NODE)
			return fail_at(x, &n->start_mark, "%s: expected true or false, got %s",
			               path, node_kind(n));
		return fail_at(x, &n->start_mark, "%s: expected true or false, got %s\"%s\"", path,
		               is_plain(n) ? "" : "the string ", ex);
	case K_INT:
	case K_UINT:
		rc = scalar_int(x, n, path, &v);
		if (rc != 0)
			return rc;
		if (v < f->min || v > f->max)
			return fail_at(x, &n->start_mark, "%s: %lld is out of range %lld..%lld",
			               path, v, f->min, f->max);
		if (f->kind == K_INT)
			*(int *)base = (int)v;
		else
			*(unsigned *)base = (unsigned)v;
		return 0;
	case K_SIZE:
		rc = scalar_size(x, n, path, (uint64_t *)base);
		if (rc == 0 && *(uint64_t *)base < (uint64_t)f->min)
			return fail_at(x, &n->start_mark, "%s: must be at least %lld byte", path,
			               f->min);
		return rc;
	case K_STR:
		return scalar_str(x, n, path, false, (char **)base);
	case K_OPT_STR:
		return scalar_str(x, n, path, true, (char **)base);
	case K_MODE:
		rc = scalar_str(x, n, path, false, (char **)base);
		if (rc == 0 && strcmp(*(char **)base, "debug") != 0 &&
		    strcmp(*(char **)base, "release") != 0) {
			excerpt(n, ex, sizeof(ex));
			return fail_at(x, &n->start_mark,
			               "%s: expected debug or release, got \"%s\"", path, ex);
		}
		return rc;
	case K_SECRET:
		rc = scalar_str(x, n, path, true, (char **)base);
		if (rc == 0 && *(char **)base != NULL && strlen(*(char **)base) < MIN_JWT_SECRET)
			return fail_at(x, &n->start_mark,
			               "%s: a jwt secret needs at least %d bytes, got %zu", path,
			               MIN_JWT_SECRET, strlen(*(char **)base));
		return rc;
	case K_KEYS:
		return load_keys(x, n, path);
	case K_SECTION:
		break;
	}
	return ms_fail(x->e, 500, "internal", "config: bad schema entry %s", path);
}

/* Walk a mapping against a field table; prefix is the dotted path so far. */
static int load_section(struct ctx *x, const struct field *fields, const yaml_node_t *n,
                        const char *prefix)
{
	yaml_node_pair_t *p;
	uint64_t seen = 0;
	char path[128];
	int rc;

	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return fail_at(x, &n->start_mark, "%s: expected a mapping, got %s",
		               prefix[0] ? prefix : "top level", node_kind(n));
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
		const struct field *f;
		char ex[48];
		size_t i;

		if (k == NULL || v == NULL)
			return ms_fail(x->e, 400, "bad_config", "%s: malformed document", x->name);
		if (k->type != YAML_SCALAR_NODE)
			return fail_at(x, &k->start_mark, "%s: keys must be plain names, got %s",
			               prefix[0] ? prefix : "top level", node_kind(k));
		excerpt(k, ex, sizeof(ex));
		for (i = 0; fields[i].key != NULL; i++) {
			if (strcmp(fields[i].key, sval(k)) == 0 &&
			    strlen(sval(k)) == k->data.scalar.length)
				break;
		}
		f = &fields[i];
		if (f->key == NULL)
			return fail_at(x, &k->start_mark, "unknown key '%s'%s%s", ex,
			               prefix[0] ? " in " : "", prefix);
		if (seen & (UINT64_C(1) << i))
			return fail_at(x, &k->start_mark, "duplicate key '%s'%s%s", ex,
			               prefix[0] ? " in " : "", prefix);
		seen |= UINT64_C(1) << i;
		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", f->key);
		if (f->kind == K_SECTION)
			rc = load_section(x, f->sub, v, path);
		else
			rc = load_value(x, f, v, path);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * Make path absolute against the working directory and normalise it
 * lexically (".", "..", repeated slashes). Returns a new string or NULL.
 */
static char *absolute_path(const char *path)
{
	char cwd[PATH_MAX];
	char *joined, *out, *tok, *save;
	size_t len;
	int n;

	if (path[0] == '/') {
		joined = xstrdup(path);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return NULL;
		n = asprintf(&joined, "%s/%s", cwd, path);
		if (n < 0)
			return NULL;
	}
	len = strlen(joined);
	out = malloc(len + 2);
	if (out == NULL) {
		free(joined);
		return NULL;
	}
	out[0] = '\0';
	len = 0;
	for (tok = strtok_r(joined, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			out[len] = '\0';
			continue;
		}
		out[len++] = '/';
		strcpy(out + len, tok);
		len += strlen(tok);
	}
	if (len == 0)
		strcpy(out, "/");
	free(joined);
	return out;
}

int ms_config_load_string(const char *yaml, size_t len, const char *name, struct ms_config *c,
                          struct ms_err *e)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct ctx x = {.name = name ? name : "config", .doc = &doc, .c = c, .e = e};
	yaml_node_t *root;
	size_t i, flow;
	char *abs;
	int rc = 0;

	ms_config_defaults(c);
	if (len > MAX_CONFIG_BYTES) {
		ms_config_free(c);
		return ms_fail(e, 413, "bad_config", "%s: larger than %u bytes", x.name,
		               MAX_CONFIG_BYTES);
	}
	/*
	 * libyaml's scanner is quadratic in the flow nesting depth (a megabyte
	 * of '[' takes minutes); no sane config has thousands of flow openers.
	 */
	for (i = 0, flow = 0; i < len; i++)
		flow += yaml[i] == '[' || yaml[i] == '{';
	if (flow > MAX_FLOW_OPENERS) {
		ms_config_free(c);
		return ms_fail(e, 400, "bad_config", "%s: more than %d '[' and '{': not a config",
		               x.name, MAX_FLOW_OPENERS);
	}
	if (!yaml_parser_initialize(&parser)) {
		ms_config_free(c);
		return ms_fail(e, 500, "out_of_memory", "%s: cannot start the yaml parser", x.name);
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = ms_fail(e, 400, "bad_config", "%s:%zu:%zu: yaml syntax error: %s%s%s", x.name,
		             parser.problem_mark.line + 1, parser.problem_mark.column + 1,
		             parser.problem ? parser.problem : "unknown problem",
		             parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		ms_config_free(c);
		return rc;
	}
	root = yaml_document_get_root_node(&doc);
	if (root != NULL)
		rc = load_section(&x, root_fields, root, "");
	yaml_document_delete(&doc);

	/* A second document in the stream is a mistake, not something to ignore. */
	if (rc == 0 && root != NULL) {
		if (!yaml_parser_load(&parser, &doc)) {
			rc = ms_fail(e, 400, "bad_config", "%s:%zu:%zu: yaml syntax error: %s",
			             x.name, parser.problem_mark.line + 1,
			             parser.problem_mark.column + 1,
			             parser.problem ? parser.problem : "unknown problem");
		} else {
			root = yaml_document_get_root_node(&doc);
			if (root != NULL)
				rc = fail_at(&x, &root->start_mark,
				             "only one yaml document is allowed");
			yaml_document_delete(&doc);
		}
	}
	yaml_parser_delete(&parser);
	if (rc == 0) {
		abs = absolute_path(c->server.data_dir);
		if (abs == NULL) {
			rc = ms_fail(e, 500, "bad_config", "%s: cannot make data_dir absolute: %s",
			             x.name, strerror(errno));
		} else {
			free(c->server.data_dir);
			c->server.data_dir = abs;
		}
	}
	if (rc != 0)
		ms_config_free(c);
	return rc;
}

int ms_config_load(const char *path, struct ms_config *c, struct ms_err *e)
{
	FILE *f;
	char *buf;
	size_t n;
	int rc;

	memset(c, 0, sizeof(*c));
	f = fopen(path, "rb");
	if (f == NULL) {
		rc = -errno;
		ms_fail(e, 500, "config_unreadable", "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	buf = malloc(MAX_CONFIG_BYTES + 1);
	if (buf == NULL) {
		fclose(f);
		return ms_fail(e, 500, "out_of_memory", "cannot read %s: out of memory", path);
	}
	n = fread(buf, 1, MAX_CONFIG_BYTES + 1, f);
	if (ferror(f)) {
		rc = -EIO;
		ms_fail(e, 500, "config_unreadable", "cannot read %s: %s", path, strerror(EIO));
		fclose(f);
		free(buf);
		return rc;
	}
	fclose(f);
	rc = ms_config_load_string(buf, n, path, c, e);
	free(buf);
	return rc;
}

/* ---- cross-field validation ---- */

static bool is_loopback(const char *bind)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(bind, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, bind, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, bind, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
	}
	return false;
}

static bool is_address(const char *bind)
{
	struct in_addr a4;
	struct in6_addr a6;

	return strcasecmp(bind, "localhost") == 0 || inet_pton(AF_INET, bind, &a4) == 1 ||
	    inet_pton(AF_INET6, bind, &a6) == 1;
}

static int invalid(struct ms_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int invalid(struct ms_err *e, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ms_fail(e, 400, "bad_config", "invalid config: %s", msg);
}

int ms_config_validate(const struct ms_config *c, struct ms_err *e)
{
	const struct ms_config_backend *b[] = {&c->backends.qemu, &c->backends.rehost,
	                                       &c->backends.renode, &c->backends.openocd};
	size_t i;

	if (c->server.port < 1 || c->server.port > 65535)
		return invalid(e, "server.port %d is out of range 1..65535", c->server.port);
	if (c->server.mode == NULL ||
	    (strcmp(c->server.mode, "debug") != 0 && strcmp(c->server.mode, "release") != 0))
		return invalid(e, "server.mode must be debug or release");
	if (c->server.bind == NULL || !is_address(c->server.bind))
		return invalid(e, "server.bind must be an ip address or localhost, got '%s'",
		               c->server.bind ? c->server.bind : "");
	if (c->server.data_dir == NULL || c->server.data_dir[0] != '/')
		return invalid(e, "server.data_dir must be an absolute path");
	if (c->server.threads < 1 || c->server.threads > 1024)
		return invalid(e, "server.threads %u is out of range 1..1024", c->server.threads);
	if (c->resources.gdb_port_min < 1 || c->resources.gdb_port_min > 65535 ||
	    c->resources.gdb_port_max < 1 || c->resources.gdb_port_max > 65535)
		return invalid(e, "resources.gdb_port_min/max must be in 1..65535");
	if (c->resources.gdb_port_min > c->resources.gdb_port_max)
		return invalid(e, "resources.gdb_port_min %d is above gdb_port_max %d",
		               c->resources.gdb_port_min, c->resources.gdb_port_max);
	if (c->server.port >= c->resources.gdb_port_min &&
	    c->server.port <= c->resources.gdb_port_max)
		return invalid(e, "server.port %d lies inside the gdb port range %d..%d",
		               c->server.port, c->resources.gdb_port_min,
		               c->resources.gdb_port_max);
	if (c->resources.max_sessions < 1)
		return invalid(e, "resources.max_sessions must be at least 1");
	if (c->resources.max_upload_bytes < 1 || c->resources.max_snapshot_bytes < 1)
		return invalid(e,
		               "resources.max_upload_bytes and max_snapshot_bytes must be at "
		               "least 1 byte");
	for (i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		if (b[i]->binary != NULL && b[i]->binary[0] == '\0')
			return invalid(e, "a backend binary must not be empty");
	}
	for (i = 0; i < c->auth.n_api_keys; i++) {
		const char *why = api_key_problem(c->auth.api_keys[i]);

		if (why != NULL)
			return invalid(e, "auth.api_keys[%zu]: api key %s", i, why);
	}
	if (c->auth.jwt_secret != NULL && strlen(c->auth.jwt_secret) < MIN_JWT_SECRET)
		return invalid(e, "auth.jwt_secret needs at least %d bytes", MIN_JWT_SECRET);
	if (c->auth.enabled && c->auth.n_api_keys == 0 && c->auth.jwt_secret == NULL)
		return invalid(e, "auth is enabled but there is no api key and no jwt_secret");
	if (!c->auth.enabled && !is_loopback(c->server.bind))
		return invalid(e,
		               "refusing to listen on %s with auth disabled: bind a loopback "
		               "address (127.0.0.1, ::1, localhost) or enable auth",
		               c->server.bind);
	return 0;
}
