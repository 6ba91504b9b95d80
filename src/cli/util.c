/*
 * util: mctl's pure helpers — escapes in --expect / --input-text, the
 * option parser, number and URL parsing, and the stream matcher that finds
 * expected text across chunk boundaries. No I/O, no globals, so the unit
 * test includes this file directly.
 *
 * Threads: mctl is single-threaded; these functions keep no state.
 */
#include "cli/mctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct mctl_optdef *find_long(const struct mctl_optdef *defs, const char *name,
                                           size_t n)
{
	for (; defs->name != NULL; defs++) {
		if (strlen(defs->name) == n && strncmp(defs->name, name, n) == 0)
			return defs;
	}
	return NULL;
}

static const struct mctl_optdef *find_short(const struct mctl_optdef *defs, char c)
{
	for (; defs->name != NULL; defs++) {
		if (defs->short_name != 0 && defs->short_name == c)
			return defs;
	}
	return NULL;
}

int mctl_parse_args(int argc, char **argv, const struct mctl_optdef *defs, struct mctl_args *a,
                    char *err, size_t cap)
{
	bool only_pos = false;

	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const struct mctl_optdef *d;
		const char *value = NULL;

		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			if (a->npos == MCTL_MAX_POS) {
				snprintf(err, cap, "too many arguments (at \"%s\")", arg);
				return -1;
			}
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (arg[1] == '-') {
			const char *eq = strchr(arg + 2, '=');
			size_t n = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);

			d = find_long(defs, arg + 2, n);
			if (d == NULL) {
				snprintf(err, cap, "unknown option --%.*s", (int)n, arg + 2);
				return -1;
			}
			if (eq != NULL) {
				if (!d->value) {
					snprintf(err, cap, "option --%s takes no value", d->name);
					return -1;
				}
				value = eq + 1;
			}
		} else {
			d = find_short(defs, arg[1]);
			if (d == NULL) {
				snprintf(err, cap, "unknown option -%c", arg[1]);
				return -1;
			}
			if (arg[2] != '\0') {
				if (!d->value) {
					snprintf(err, cap, "option -%c takes no value", arg[1]);
					return -1;
				}
				value = arg + 2;
			}
		}
		if (d->value && value == NULL) {
			if (i + 1 >= argc) {
				snprintf(err, cap, "option --%s needs a value", d->name);
				return -1;
			}
			value = argv[++i];
		}
		if (a->set[d->id]) {
			snprintf(err, cap, "option --%s given twice", d->name);
			return -1;
		}
		a->set[d->id] = true;
		a->val[d->id] = value;
	}
	return 0;
}

long long mctl_parse_seconds(const char *s)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v > 0) || v > 1e7)
		return -1;
	return (long long)(v * 1000 + 0.5);
}

bool mctl_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

bool mctl_valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

int mctl_parse_url(const char *url, struct mctl_url *u, char *err, size_t cap)
{
	const char *p;
	const char *host_end;
	const char *path;
	size_t hl;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, "https://", 8) == 0) {
		snprintf(err, cap,
		         "https server URLs are not supported for the console (use http://)");
		return -1;
	}
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, cap, "server URL must start with http:// (got \"%.100s\")", url);
		return -1;
	}
	p = url + 7;
	path = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(path - p)) != NULL) {
		snprintf(err, cap, "user names in the server URL are not supported");
		return -1;
	}
	if (*p == '[') {
		host_end = memchr(p, ']', (size_t)(path - p));
		if (host_end == NULL) {
			snprintf(err, cap, "unterminated [ in server URL");
			return -1;
		}
		hl = (size_t)(host_end - p - 1);
		if (hl == 0 || hl >= sizeof(u->host)) {
			snprintf(err, cap, "bad host in server URL");
			return -1;
		}
		memcpy(u->host, p + 1, hl);
		p = host_end + 1;
	} else {
		host_end = p + strcspn(p, ":/?#");
		hl = (size_t)(host_end - p);
		if (hl == 0 || hl >= sizeof(u->host)) {
			snprintf(err, cap, "no host in server URL");
			return -1;
		}
		memcpy(u->host, p, hl);
		p = host_end;
	}
	if (*p == ':') {
		size_t pl = (size_t)(path - p - 1);
		char *end;
		long port;
		char num[8];

		if (pl == 0 || pl > 5) {
			snprintf(err, cap, "bad port in server URL");
			return -1;
		}
		memcpy(num, p + 1, pl);
		num[pl] = '\0';
		port = strtol(num, &end, 10);
		if (*end != '\0' || port < 1 || port > 65535) {
			snprintf(err, cap, "bad port in server URL");
			return -1;
		}
		snprintf(u->port, sizeof(u->port), "%ld", port);
	} else if (p != path) {
		snprintf(err, cap, "bad server URL");
		return -1;
	} else {
		snprintf(u->port, sizeof(u->port), "80");
	}
	if (*path == '?' || *path == '#') {
		snprintf(err, cap, "query strings in the server URL are not supported");
		return -1;
	}
	hl = strcspn(path, "?#");
	if (path[hl] != '\0') {
		snprintf(err, cap, "query strings in the server URL are not supported");
		return -1;
	}
	while (hl > 0 && path[hl - 1] == '/')
		hl--;
	if (hl >= sizeof(u->prefix)) {
		snprintf(err, cap, "server URL path is too long");
		return -1;
	}
	memcpy(u->prefix, path, hl);
	u->prefix[hl] = '\0';
	return 0;
}

int mctl_matcher_init(struct mctl_matcher *m, const uint8_t *a, size_t alen, const uint8_t *b,
                      size_t blen)
{
	size_t longest = alen > blen ? alen : blen;

	memset(m, 0, sizeof(*m));
	m->pat[0] = a;
	m->len[0] = a != NULL ? alen : 0;
	m->pat[1] = b;
	m->len[1] = b != NULL ? blen : 0;
	m->tail_cap = longest > 0 ? longest - 1 : 0;
	if (m->tail_cap > 0) {
		m->tail = malloc(m->tail_cap);
		if (m->tail == NULL)
			return -1;
	}
	return 0;
}

/* End offset (exclusive) of the first occurrence of pat in hay, or SIZE_MAX. */
static size_t first_end(const uint8_t *hay, size_t n, const uint8_t *pat, size_t pl)
{
	const uint8_t *hit;

	if (pl == 0 || pl > n)
		return SIZE_MAX;
	hit = memmem(hay, n, pat, pl);
	return hit != NULL ? (size_t)(hit - hay) + pl : SIZE_MAX;
}

int mctl_matcher_feed(struct mctl_matcher *m, const uint8_t *data, size_t len)
{
	size_t n = m->tail_len + len;
	uint8_t *win;
	size_t e0, e1;
	int found = -1;

	if (m->len[0] == 0 && m->len[1] == 0)
		return -1;
	win = malloc(n > 0 ? n : 1);
	if (win == NULL)
		return -1;
	if (m->tail_len > 0)
		memcpy(win, m->tail, m->tail_len);
	if (len > 0)
		memcpy(win + m->tail_len, data, len);
	e0 = first_end(win, n, m->pat[0], m->len[0]);
	e1 = first_end(win, n, m->pat[1], m->len[1]);
	if (e0 != SIZE_MAX || e1 != SIZE_MAX)
		found = e0 <= e1 ? 0 : 1;
	/* Keep only what could start a match completed by the next chunk. */
	m->tail_len = n < m->tail_cap ? n : m->tail_cap;
	if (m->tail_len > 0)
		memcpy(m->tail, win + n - m->tail_len, m->tail_len);
	free(win);
	return found;
}

void mctl_matcher_free(struct mctl_matcher *m)
{
	free(m->tail);
	m->tail = NULL;
	m->tail_len = 0;
}
