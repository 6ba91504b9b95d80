/*
 * coverage: basic-block coverage and LCOV reports (see coverage.h).
 *
 * Threads: the machine's owner thread only; no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dwarf.h>
#include <elfutils/libdw.h>

#include "rehost/coverage.h"

struct cov_ent {
	uint32_t addr; /* 0 is a valid address: used marks the slot */
	uint32_t size;
	uint64_t hits;
	uint32_t order;
	uint8_t used;
};

struct ms_rh_cov {
	struct cov_ent *tab;
	size_t cap; /* power of two */
	size_t n;
	uint32_t *seq; /* addresses in order of first execution */
	size_t seq_cap;
};

struct ms_rh_cov *ms_rh_cov_new(void)
{
	struct ms_rh_cov *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->cap = 4096;
	c->tab = calloc(c->cap, sizeof(*c->tab));
	if (c->tab == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void ms_rh_cov_free(struct ms_rh_cov *c)
{
	if (c == NULL)
		return;
	free(c->tab);
	free(c->seq);
	free(c);
}

void ms_rh_cov_reset(struct ms_rh_cov *c)
{
	memset(c->tab, 0, c->cap * sizeof(*c->tab));
	c->n = 0;
}

static size_t slot(uint32_t a, size_t mask)
{
	return ((a >> 1) * 2654435761u) & mask;
}

static void grow(struct ms_rh_cov *c)
{
	size_t ncap = c->cap * 2, i;
	struct cov_ent *nt = calloc(ncap, sizeof(*nt));

	if (nt == NULL)
		return;
	for (i = 0; i < c->cap; i++) {
		size_t j;

		if (!c->tab[i].used)
			continue;
		j = slot(c->tab[i].addr, ncap - 1);
		while (nt[j].used)
			j = (j + 1) & (ncap - 1);
		nt[j] = c->tab[i];
	}
	free(c->tab);
	c->tab = nt;
	c->cap = ncap;
}

void ms_rh_cov_block_sized(struct ms_rh_cov *c, uint32_t addr, uint32_t size)
{
	size_t j = slot(addr, c->cap - 1);

	while (c->tab[j].used) {
		if (c->tab[j].addr == addr) {
			c->tab[j].hits++;
			if (size > c->tab[j].size)
				c->tab[j].size = size;
			return;
		}
		j = (j + 1) & (c->cap - 1);
	}
	if (c->n + 1 > c->seq_cap) {
		size_t nc = c->seq_cap ? c->seq_cap * 2 : 1024;
		uint32_t *ns = realloc(c->seq, nc * sizeof(*ns));

		if (ns == NULL)
			return;
		c->seq = ns;
		c->seq_cap = nc;
	}
	c->tab[j].used = 1;
	c->tab[j].addr = addr;
	c->tab[j].size = size;
	c->tab[j].hits = 1;
	c->tab[j].order = (uint32_t)c->n;
	c->seq[c->n++] = addr;
	if (c->n * 2 > c->cap)
		grow(c);
}

size_t ms_rh_cov_count(const struct ms_rh_cov *c)
{
	return c->n;
}

int ms_rh_cov_write_bb(const struct ms_rh_cov *c, const char *path, struct ms_err *e)
{
	FILE *f = fopen(path, "w");
	size_t i;

	if (f == NULL)
		return ms_fail(e, 400, "bad_path", "cannot write %s: %s", path, strerror(errno));
	for (i = 0; i < c->n; i++)
		fprintf(f, "0x%08x\n", c->seq[i] & ~1u);
	if (fclose(f) != 0)
		return ms_fail(e, 500, "io_error", "cannot write %s: %s", path, strerror(errno));
	return 0;
}

json_t *ms_rh_cov_json(const struct ms_rh_cov *c, size_t max)
{
	json_t *arr = json_array();
	size_t i;
	char buf[16];

	for (i = 0; i < c->n && i < max; i++) {
		snprintf(buf, sizeof(buf), "0x%08x", c->seq[i] & ~1u);
		json_array_append_new(arr, json_string(buf));
	}
	return json_pack("{s:I, s:o}", "blocks", (json_int_t)c->n, "addresses", arr);
}

/* ---- LCOV ---- */

struct range {
	uint32_t start, end;
	uint64_t hits;
};

struct line_ent {
	const char *file; /* owned by libdw until dwarf_end, or by the path pool */
	int line;
	uint64_t hits;
};

/* Joined "dir/name" strings, interned so each distinct path is allocated once. */
struct path_pool {
	char **s;
	size_t n, cap;
};

static const char *pool_path(struct path_pool *p, const char *dir, const char *name)
{
	char buf[4096];
	size_t i;

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	for (i = p->n; i > 0; i--)
		if (strcmp(p->s[i - 1], buf) == 0)
			return p->s[i - 1];
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 16;
		char **ns = realloc(p->s, nc * sizeof(*ns));

		if (ns == NULL)
			return NULL;
		p->s = ns;
		p->cap = nc;
	}
	p->s[p->n] = strdup(buf);
	return p->s[p->n] != NULL ? p->s[p->n++] : NULL;
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_line(const void *a, const void *b)
{
	const struct line_ent *x = a, *y = b;
	int r = strcmp(x->file, y->file);

	if (r != 0)
		return r;
	return x->line - y->line;
}

static uint64_t hits_at(const struct range *r, size_t n, uint32_t a)
{
	size_t lo = 0, hi = n;
	uint64_t best = 0;
	size_t k;

	/* Last range starting at or before a. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (r[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Blocks may overlap (a branch into the middle of another): look back a little. */
	for (k = lo; k > 0 && lo - k < 8; k--)
		if (a >= r[k - 1].start && a < r[k - 1].end && r[k - 1].hits > best)
			best = r[k - 1].hits;
	return best;
}

int ms_rh_cov_write_lcov(const struct ms_rh_cov *c, const char *elf_path, const char *path,
                         struct ms_err *e)
{
	struct range *rs = NULL;
	struct line_ent *ls = NULL;
	struct path_pool pool = {0};
	size_t nr = 0, nl = 0, lcap = 0, i;
	Dwarf_Off off = 0, next;
	size_t hsize;
	Dwarf *dw;
	FILE *f;
	int fd, rc = 0;

	fd = open(elf_path, O_RDONLY);
	if (fd < 0)
		return ms_fail(e, 400, "bad_path", "cannot open %s: %s", elf_path, strerror(errno));
	dw = dwarf_begin(fd, DWARF_C_READ);
	if (dw == NULL) {
		close(fd);
		return ms_fail(e, 400, "no_debug_info", "%s has no DWARF line tables: %s", elf_path,
		               dwarf_errmsg(-1));
	}
	rs = calloc(c->n ? c->n : 1, sizeof(*rs));
	if (rs == NULL) {
		rc = ms_fail(e, 500, "internal", "out of memory");
		goto out;
	}
	for (i = 0; i < c->cap; i++)
		if (c->tab[i].used) {
			rs[nr].start = c->tab[i].addr & ~1u;
			rs[nr].end = rs[nr].start + (c->tab[i].size ? c->tab[i].size : 2);
			rs[nr].hits = c->tab[i].hits;
			nr++;
		}
	qsort(rs, nr, sizeof(*rs), cmp_range);
	while (dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		Dwarf_Lines *lines;
		Dwarf_Attribute at;
		const char *comp_dir = NULL;
		size_t n, k;

		if (dwarf_offdie(dw, off + hsize, &cu) != NULL &&
		    dwarf_getsrclines(&cu, &lines, &n) == 0) {
			if (dwarf_attr(&cu, DW_AT_comp_dir, &at) != NULL)
				comp_dir = dwarf_formstring(&at);
			for (k = 0; k < n; k++) {
				Dwarf_Line *l = dwarf_onesrcline(lines, k);
				Dwarf_Addr a;
				int ln;
				bool end = false;
				const char *src;

				if (l == NULL || dwarf_lineaddr(l, &a) != 0 ||
				    dwarf_lineno(l, &ln) != 0)
					continue;
				dwarf_lineendsequence(l, &end);
				src = dwarf_linesrc(l, NULL, NULL);
				if (end || src == NULL || ln <= 0)
					continue;
				/* genhtml needs absolute paths: relative names are under comp_dir. */
				if (src[0] != '/' && comp_dir != NULL) {
					src = pool_path(&pool, comp_dir, src);
					if (src == NULL) {
						rc = ms_fail(e, 500, "internal", "out of memory");
						goto out;
					}
				}
				if (nl == lcap) {
					size_t ncap = lcap ? lcap * 2 : 1024;
					struct line_ent *nls = realloc(ls, ncap * sizeof(*nls));

					if (nls == NULL) {
						rc = ms_fail(e, 500, "internal", "out of memory");
						goto out;
					}
					ls = nls;
					lcap = ncap;
				}
				ls[nl].file = src;
				ls[nl].line = ln;
				ls[nl].hits = hits_at(rs, nr, (uint32_t)a);
				nl++;
			}
		}
		off = next;
	}
	if (nl == 0) {
		rc = ms_fail(e, 400, "no_debug_info", "%s has no DWARF line tables", elf_path);
		goto out;
	}
	qsort(ls, nl, sizeof(*ls), cmp_line);
	f = fopen(path, "w");
	if (f == NULL) {
		rc = ms_fail(e, 400, "bad_path", "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	fprintf(f, "TN:rehost\n");
	for (i = 0; i < nl;) {
		const char *file = ls[i].file;
		unsigned lf = 0, lh = 0;

		fprintf(f, "SF:%s\n", file);
		while (i < nl && strcmp(ls[i].file, file) == 0) {
			int line = ls[i].line;
			uint64_t h = 0;

			while (i < nl && strcmp(ls[i].file, file) == 0 && ls[i].line == line) {
				if (ls[i].hits > h)
					h = ls[i].hits;
				i++;
			}
			fprintf(f, "DA:%d,%llu\n", line, (unsigned long long)h);
			lf++;
			lh += h > 0;
		}
		fprintf(f, "LF:%u\nLH:%u\nend_of_record\n", lf, lh);
	}
	if (fclose(f) != 0)
		rc = ms_fail(e, 500, "io_error", "cannot write %s", path);
out:
	free(rs);
	free(ls);
	for (i = 0; i < pool.n; i++)
		free(pool.s[i]);
	free(pool.s);
	dwarf_end(dw);
	close(fd);
	return rc;
}
