/*
 * svd: CMSIS-SVD reader on libxml2's tree API (see svd.h).
 *
 * The document is parsed without network access and without entity
 * substitution (XML_PARSE_NONET, no XML_PARSE_NOENT, no XML_PARSE_HUGE), so
 * entity expansion bombs and external references are refused by libxml2
 * itself; our own limits bound what a valid but enormous file can make us
 * allocate.
 *
 * Threads: loading is reentrant (libxml2 is initialised once through
 * pthread_once); a loaded struct ms__svd is read-only.
 */
#include "infer/svd.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "core/err.h"

#define MAX_FILE (64u * 1024 * 1024)
#define MAX_PERIPHS 4096
#define MAX_REGS 100000
#define MAX_FIELDS 64
#define MAX_DIM 1024
#define MAX_DEPTH 8

struct ctx {
	char *err;
	size_t cap;
	long total_regs;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_xml(void)
{
	xmlInitParser();
}

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, c->cap, fmt, ap);
	va_end(ap);
	return MS_EBADINPUT;
}

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNode *child(const xmlNode *n, const char *name)
{
	for (xmlNode *c = n->children; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* Text of child element name into buf (trimmed); false when absent. */
static bool text(const xmlNode *n, const char *name, char *buf, size_t cap)
{
	xmlNode *c = child(n, name);
	if (!c)
		return false;
	xmlChar *t = xmlNodeGetContent(c);
	if (!t)
		return false;
	const char *s = (const char *)t;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	snprintf(buf, cap, "%s", s);
	size_t l = strlen(buf);
	while (
	    l &&
	    (buf[l - 1] == ' ' || buf[l - 1] == '\t' || buf[l - 1] == '\n' || buf[l - 1] == '\r'))
		buf[--l] = 0;
	xmlFree(t);
	return true;
}

/* SVD scaledNonNegativeInteger: decimal, 0x hex, #binary; false when malformed. */
static bool parse_num(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (s[0] == '#') {
		uint64_t v = 0;
		const char *p = s + 1;
		if (!*p)
			return false;
		for (; *p; p++) {
			if (*p != '0' && *p != '1' && *p != 'x' && *p != 'X')
				return false;
			v = (v << 1) | (*p == '1');
		}
		*out = v;
		return true;
	}
	if (!*s || *s == '-')
		return false;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	if (*end == 'k' || *end == 'K')
		v *= 1024, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024, end++;
	if (*end)
		return false;
	*out = v;
	return true;
}

static bool num(const xmlNode *n, const char *name, uint64_t *out, bool *bad)
{
	char b[64];
	if (!text(n, name, b, sizeof(b)))
		return false;
	if (!parse_num(b, out)) {
		*bad = true;
		return false;
	}
	return true;
}

static uint8_t parse_access(const char *s)
{
	if (strcmp(s, "read-only") == 0)
		return MS__SVD_RO;
	if (strcmp(s, "write-only") == 0 || strcmp(s, "writeOnce") == 0)
		return MS__SVD_WO;
	return MS__SVD_RW;
}

struct props {
	uint32_t size, reset;
	uint8_t access;
};

static void read_props(const xmlNode *n, struct props *p, bool *bad)
{
	uint64_t v;
	char b[32];
	if (num(n, "size", &v, bad) && v > 0 && v <= 64)
		p->size = (uint32_t)v;
	if (num(n, "resetValue", &v, bad))
		p->reset = (uint32_t)v;
	if (text(n, "access", b, sizeof(b)))
		p->access = parse_access(b);
}

static int parse_fields(struct ctx *c, const xmlNode *rn, struct ms__svd_reg *r)
{
	xmlNode *fs = child(rn, "fields");
	if (!fs)
		return 0;
	for (xmlNode *f = fs->children; f; f = f->next) {
		if (!is(f, "field"))
			continue;
		if (r->nfields >= MAX_FIELDS)
			break;
		struct ms__svd_field fd;
		memset(&fd, 0, sizeof(fd));
		fd.access = r->access;
		bool bad = false;
		uint64_t off = 0, w = 1, lsb, msb;
		char b[64];
		text(f, "name", fd.name, sizeof(fd.name));
		if (num(f, "bitOffset", &off, &bad)) {
			if (!num(f, "bitWidth", &w, &bad))
				w = 1;
		} else if (num(f, "lsb", &lsb, &bad) && num(f, "msb", &msb, &bad)) {
			off = lsb;
			w = msb >= lsb ? msb - lsb + 1 : 0;
		} else if (text(f, "bitRange", b, sizeof(b))) {
			unsigned hi, lo;
			if (sscanf(b, "[%u:%u]", &hi, &lo) != 2 || hi < lo)
				return fail(c, "register %s field %s: bad bitRange", r->name,
				            fd.name);
			off = lo;
			w = hi - lo + 1;
		}
		if (bad || off > 31 || w == 0 || off + w > 32)
			return fail(c, "register %s field %s: bit range outside 32 bits", r->name,
			            fd.name);
		fd.lsb = (uint8_t)off;
		fd.width = (uint8_t)w;
		if (text(f, "access", b, sizeof(b)))
			fd.access = parse_access(b);
		if (text(f, "modifiedWriteValues", b, sizeof(b)) && strcmp(b, "oneToClear") == 0)
			fd.w1c = true;
		if (!r->fields) {
			int nf = 0;
			for (xmlNode *g = fs->children; g; g = g->next)
				nf += is(g, "field");
			r->fields =
			    calloc((size_t)(nf < MAX_FIELDS ? nf : MAX_FIELDS), sizeof(*r->fields));
			if (!r->fields)
				return fail(c, "out of memory");
		}
		r->fields[r->nfields++] = fd;
	}
	return 0;
}

static int add_reg(struct ctx *c, struct ms__svd_periph *p, const struct ms__svd_reg *r)
{
	if (++c->total_regs > MAX_REGS)
		return fail(c, "more than %d registers", MAX_REGS);
	if (p->nregs % 64 == 0) {
		struct ms__svd_reg *n = realloc(p->regs, (size_t)(p->nregs + 64) * sizeof(*n));
		if (!n)
			return fail(c, "out of memory");
		p->regs = n;
	}
	p->regs[p->nregs++] = *r;
	return 0;
}

/* "%s" in a dim name replaced by the index text. */
static void dim_name(char *out, size_t cap, const char *pattern, const char *idx)
{
	const char *s = strstr(pattern, "%s");
	if (!s) {
		snprintf(out, cap, "%s%s", pattern, idx);
		return;
	}
	char pre[64];
	size_t n = (size_t)(s - pattern);
	if (n >= sizeof(pre))
		n = sizeof(pre) - 1;
	memcpy(pre, pattern, n);
	pre[n] = 0;
	/* Drop the brackets of "NAME[%s]". */
	size_t pl = strlen(pre);
	const char *post = s + 2;
	if (pl && pre[pl - 1] == '[' && *post == ']') {
		pre[pl - 1] = 0;
		post++;
	}
	snprintf(out, cap, "%s%s%s", pre, idx, post);
}

static int parse_block(struct ctx *c, const xmlNode *n, struct ms__svd_periph *p, uint32_t base_off,
                       struct props inherited, int depth, const char *prefix);

static int parse_one(struct ctx *c, const xmlNode *rn, struct ms__svd_periph *p, uint32_t base_off,
                     struct props pr, int depth, const char *prefix)
{
	bool bad = false;
	uint64_t off = 0, dim = 1, inc = 0;
	char name[48] = "", idxs[256] = "";
	text(rn, "name", name, sizeof(name));
	if (!num(rn, "addressOffset", &off, &bad) || bad)
		return fail(c, "%s %s: missing or bad addressOffset", p->name, name);
	if (num(rn, "dim", &dim, &bad)) {
		if (dim == 0 || dim > MAX_DIM || !num(rn, "dimIncrement", &inc, &bad))
			return fail(c, "%s %s: bad dim/dimIncrement", p->name, name);
	}
	if (bad)
		return fail(c, "%s %s: malformed number", p->name, name);
	text(rn, "dimIndex", idxs, sizeof(idxs));
	read_props(rn, &pr, &bad);
	if (bad)
		return fail(c, "%s %s: malformed size/resetValue", p->name, name);
	char *save = NULL;
	char *tok = idxs[0] ? strtok_r(idxs, ",", &save) : NULL;
	for (uint64_t i = 0; i < dim; i++) {
		char idx[32], nm[64];
		if (tok) {
			snprintf(idx, sizeof(idx), "%s", tok);
			tok = strtok_r(NULL, ",", &save);
		} else {
			snprintf(idx, sizeof(idx), "%llu", (unsigned long long)i);
		}
		if (dim > 1)
			dim_name(nm, sizeof(nm), name, idx);
		else
			snprintf(nm, sizeof(nm), "%s", name);
		uint64_t a = base_off + off + i * inc;
		if (a > 0xffffffffull)
			return fail(c, "%s %s: offset beyond 32 bits", p->name, nm);
		if (is(rn, "cluster")) {
			char pf[64];
			snprintf(pf, sizeof(pf), "%s%s_", prefix, nm);
			int rc = parse_block(c, rn, p, (uint32_t)a, pr, depth + 1, pf);
			if (rc < 0)
				return rc;
			continue;
		}
		struct ms__svd_reg r;
		memset(&r, 0, sizeof(r));
		snprintf(r.name, sizeof(r.name), "%s%s", prefix, nm);
		r.off = (uint32_t)a;
		r.size = (uint8_t)pr.size;
		r.reset = pr.reset;
		r.access = pr.access;
		if (i == 0) {
			int rc = parse_fields(c, rn, &r);
			if (rc < 0) {
				free(r.fields);
				return rc;
			}
		} else if (p->nregs && p->regs[p->nregs - 1].fields) {
			/* Copies of the same register share the layout of the first. */
			const struct ms__svd_reg *f0 = &p->regs[p->nregs - 1];
			r.fields = calloc((size_t)f0->nfields, sizeof(*r.fields));
			if (!r.fields)
				return fail(c, "out of memory");
			memcpy(r.fields, f0->fields, sizeof(*r.fields) * (size_t)f0->nfields);
			r.nfields = f0->nfields;
		}
		int rc = add_reg(c, p, &r);
		if (rc < 0) {
			free(r.fields);
			return rc;
		}
	}
	return 0;
}

static int parse_block(struct ctx *c, const xmlNode *n, struct ms__svd_periph *p, uint32_t base_off,
                       struct props inherited, int depth, const char *prefix)
{
	if (depth > MAX_DEPTH)
		return fail(c, "%s: clusters nested deeper than %d", p->name, MAX_DEPTH);
	for (xmlNode *r = n->children; r; r = r->next) {
		if (!is(r, "register") && !is(r, "cluster"))
			continue;
		int rc = parse_one(c, r, p, base_off, inherited, depth, prefix);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void periph_clear(struct ms__svd_periph *p)
{
	for (int i = 0; i < p->nregs; i++)
		free(p->regs[i].fields);
	free(p->regs);
	p->regs = NULL;
	p->nregs = 0;
}

void ms__svd_free(struct ms__svd *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->np; i++)
		periph_clear(&s->p[i]);
	free(s->p);
	free(s);
}

static int copy_regs(struct ctx *c, struct ms__svd_periph *dst, const struct ms__svd_periph *src)
{
	for (int i = 0; i < src->nregs; i++) {
		struct ms__svd_reg r = src->regs[i];
		if (r.fields) {
			r.fields = calloc((size_t)r.nfields, sizeof(*r.fields));
			if (!r.fields)
				return fail(c, "out of memory");
			memcpy(r.fields, src->regs[i].fields,
			       sizeof(*r.fields) * (size_t)r.nfields);
		}
		int rc = add_reg(c, dst, &r);
		if (rc < 0) {
			free(r.fields);
			return rc;
		}
	}
	return 0;
}

static int parse_doc(struct ctx *c, xmlDoc *doc, struct ms__svd **out)
{
	xmlNode *root = xmlDocGetRootElement(doc);
	if (!root || !is(root, "device"))
		return fail(c, "not an svd file: root element is not <device>");
	struct ms__svd *s = calloc(1, sizeof(*s));
	if (!s)
		return fail(c, "out of memory");
	text(root, "name", s->device, sizeof(s->device));
	struct props dp = {32, 0, MS__SVD_RW};
	bool bad = false;
	read_props(root, &dp, &bad);
	xmlNode *ps = child(root, "peripherals");
	if (!ps) {
		ms__svd_free(s);
		return fail(c, "svd has no <peripherals>");
	}
	int n = 0;
	for (xmlNode *x = ps->children; x; x = x->next)
		if (is(x, "peripheral"))
			n++;
	if (n == 0 || n > MAX_PERIPHS) {
		ms__svd_free(s);
		return fail(c, "svd has %d peripherals (1..%d accepted)", n, MAX_PERIPHS);
	}
	s->p = calloc((size_t)n, sizeof(*s->p));
	char(*derived)[32] = calloc((size_t)n, 32);
	if (!s->p || !derived) {
		free(derived);
		ms__svd_free(s);
		return fail(c, "out of memory");
	}
	int rc = 0;
	for (xmlNode *x = ps->children; x && rc == 0; x = x->next) {
		if (!is(x, "peripheral"))
			continue;
		struct ms__svd_periph *p = &s->p[s->np];
		text(x, "name", p->name, sizeof(p->name));
		text(x, "groupName", p->group, sizeof(p->group));
		xmlChar *df = xmlGetProp(x, (const xmlChar *)"derivedFrom");
		if (df) {
			snprintf(derived[s->np], 32, "%s", (const char *)df);
			xmlFree(df);
		}
		uint64_t base;
		bad = false;
		if (!num(x, "baseAddress", &base, &bad) || bad || base > 0xffffffffull) {
			rc = fail(c, "peripheral %s: missing or bad baseAddress", p->name);
			break;
		}
		p->base = (uint32_t)base;
		xmlNode *ab = child(x, "addressBlock");
		uint64_t v;
		if (ab && num(ab, "size", &v, &bad) && v <= 0x10000000ull)
			p->size = (uint32_t)v;
		if (ab && num(ab, "offset", &v, &bad) && v < 0x10000000ull && p->size)
			p->size += (uint32_t)v;
		for (xmlNode *it = x->children; it; it = it->next) {
			if (!is(it, "interrupt") || p->nirq >= 4)
				continue;
			if (num(it, "value", &v, &bad) && v < 512)
				p->irq[p->nirq++] = (int)v;
		}
		struct props pp = dp;
		read_props(x, &pp, &bad);
		xmlNode *regs = child(x, "registers");
		s->np++;
		if (regs)
			rc = parse_block(c, regs, p, 0, pp, 0, "");
	}
	/* derivedFrom: a peripheral without registers takes those of the one it names. */
	for (int i = 0; i < s->np && rc == 0; i++) {
		if (!derived[i][0] || s->p[i].nregs)
			continue;
		for (int j = 0; j < s->np; j++)
			if (j != i && strcmp(s->p[j].name, derived[i]) == 0 && !derived[j][0]) {
				rc = copy_regs(c, &s->p[i], &s->p[j]);
				if (!s->p[i].size)
					s->p[i].size = s->p[j].size;
				break;
			}
	}
	free(derived);
	if (rc < 0) {
		ms__svd_free(s);
		return rc;
	}
	for (int i = 0; i < s->np; i++) {
		struct ms__svd_periph *p = &s->p[i];
		uint32_t end = 0;
		for (int k = 0; k < p->nregs; k++)
			if (p->regs[k].off + 4 > end)
				end = p->regs[k].off + 4;
		if (p->size < end)
			p->size = end;
		if (!p->size)
			p->size = 0x400;
	}
	*out = s;
	return 0;
}

int ms__svd_parse(const char *buf, size_t len, struct ms__svd **out, char *err, size_t errcap)
{
	struct ctx c = {err, errcap, 0};
	pthread_once(&once, init_xml);
	if (len > MAX_FILE)
		return fail(&c, "svd larger than %u bytes", MAX_FILE);
	if (len > 0x7fffffff)
		return fail(&c, "svd too large");
	xmlDoc *doc = xmlReadMemory(buf, (int)len, "svd.xml", NULL,
	                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *x = xmlGetLastError();
		return fail(&c, "malformed xml%s%s (line %d)", x && x->message ? ": " : "",
		            x && x->message ? x->message : "", x ? x->line : 0);
	}
	int rc = parse_doc(&c, doc, out);
	xmlFreeDoc(doc);
	if (rc == 0)
		err[0] = 0;
	else {
		/* Strip the newline libxml2 messages end with. */
		size_t l = strlen(err);
		while (l && err[l - 1] == '\n')
			err[--l] = 0;
	}
	return rc;
}

int ms__svd_load(const char *path, struct ms__svd **out, char *err, size_t errcap)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		snprintf(err, errcap, "cannot open: %s", strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errcap, "not a regular file");
		return MS_EBADINPUT;
	}
	if ((uint64_t)st.st_size > MAX_FILE) {
		snprintf(err, errcap, "svd larger than %u bytes", MAX_FILE);
		return MS_ETOOBIG;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errcap, "cannot open: %s", strerror(errno));
		return -errno;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errcap, "out of memory");
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	int rc = ms__svd_parse(buf, n, out, err, errcap);
	free(buf);
	return rc;
}

const struct ms__svd_periph *ms__svd_find(const struct ms__svd *s, uint32_t addr)
{
	for (int i = 0; i < s->np; i++)
		if (addr >= s->p[i].base && addr - s->p[i].base < s->p[i].size)
			return &s->p[i];
	return NULL;
}

const struct ms__svd_reg *ms__svd_reg_at(const struct ms__svd_periph *p, uint32_t off)
{
	for (int i = 0; i < p->nregs; i++) {
		uint32_t bytes = p->regs[i].size ? (p->regs[i].size + 7u) / 8u : 4;
		if (off >= p->regs[i].off && off < p->regs[i].off + bytes)
			return &p->regs[i];
	}
	return NULL;
}
