/*
 * image: firmware image parsing — ELF32/ELF64 of either byte order, Intel HEX
 * and raw binary. See image.h for the contract.
 *
 * The ELF reader is our own rather than libelf: libelf maps whatever the
 * header claims and leaves the bounds checks to the caller, while here every
 * field is read through one bounds-checked accessor and every offset/size
 * pair is checked against the real file length with overflow-safe
 * arithmetic before it is used. A file that starts with the ELF magic is
 * always parsed as ELF and rejected when it lies; it never falls back to raw
 * binary. Likewise text that starts with ':' is parsed as Intel HEX and
 * rejected when it is not valid HEX.
 *
 * Threads: pure functions on caller memory, no globals; any thread.
 */
#include "core/image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEGS 256
#define MAX_TOTAL_MEMSZ (UINT64_C(4) << 30)

/* ELF constants we need; written out so the parser does not depend on <elf.h>. */
enum {
	ELFCLASS32 = 1,
	ELFCLASS64 = 2,
	ELFDATA2LSB = 1,
	ELFDATA2MSB = 2,
	ET_EXEC = 2,
	ET_DYN = 3,
	PT_LOAD = 1,
	SHT_NULL = 0,
	SHT_NOBITS = 8,
	PN_XNUM = 0xffff,
	SHN_XINDEX = 0xffff,
	EM_386 = 3,
	EM_ARM = 40,
	EM_X86_64 = 62,
	EM_AARCH64 = 183,
	EM_RISCV = 243,
};

const char *ms_image_format_name(enum ms_image_format f)
{
	switch (f) {
	case MS_IMAGE_ELF:
		return "elf";
	case MS_IMAGE_IHEX:
		return "ihex";
	case MS_IMAGE_BIN:
		return "bin";
	default:
		return "unknown";
	}
}

static int bad(struct ms_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct ms_err *e, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ms_fail(e, 400, "bad_image", "%s", msg);
}

void ms_image_free(struct ms_image *img)
{
	size_t i;

	if (img == NULL)
		return;
	for (i = 0; i < img->n_segs; i++)
		free(img->segs[i].data);
	free(img->segs);
	memset(img, 0, sizeof(*img));
}

/* True when [off, off+size) lies inside a buffer of len bytes, without overflow. */
static bool in_bounds(uint64_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

/* ---- detection ---- */

static bool is_text_byte(uint8_t c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\r' || c == '\n';
}

static bool is_hex_digit(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * Intel HEX when the first non-blank byte is ':' and either the whole file is
 * text, or the first record is made of hex digits (so a HEX file with binary
 * garbage further down gets a HEX error pointing at the line rather than
 * being accepted as raw binary). A raw binary whose first byte happens to be
 * 0x3a is not text and has no hex-digit first line, so it stays binary.
 */
static bool looks_like_ihex(const uint8_t *d, size_t len)
{
	size_t i = 0;
	size_t j;

	while (i < len && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n'))
		i++;
	if (i == len || d[i] != ':')
		return false;
	for (j = 0; j < len; j++) {
		if (!is_text_byte(d[j]))
			break;
	}
	if (j == len)
		return true;
	for (j = i + 1; j < len && is_hex_digit(d[j]); j++)
		;
	return j > i + 1 && j < len && (d[j] == '\r' || d[j] == '\n');
}

enum ms_image_format ms_image_detect(const uint8_t *data, size_t len)
{
	if (data == NULL || len == 0)
		return MS_IMAGE_UNKNOWN;
	if (len >= 4 &&
	    memcmp(data,
	           "\x7f"
	           "ELF",
	           4) == 0)
		return MS_IMAGE_ELF;
	if (looks_like_ihex(data, len))
		return MS_IMAGE_IHEX;
	return MS_IMAGE_BIN;
}

/* ---- ELF ---- */

struct elf {
	const uint8_t *d;
	uint64_t len;
	bool be;
	bool is64;
};

/* Readers; callers have checked [off, off+n) with in_bounds. */
static uint64_t rd(const struct elf *f, uint64_t off, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		unsigned k = f->be ? i : n - 1 - i;

		v = (v << 8) | f->d[off + k];
	}
	return v;
}

/* A field that is 4 bytes in ELF32 and 8 in ELF64. */
static uint64_t rd_word(const struct elf *f, uint64_t off32, uint64_t off64, uint64_t base)
{
	return f->is64 ? rd(f, base + off64, 8) : rd(f, base + off32, 4);
}

static const char *elf_arch(unsigned machine, bool is64)
{
	switch (machine) {
	case EM_ARM:
		return "arm";
	case EM_AARCH64:
		return "aarch64";
	case EM_RISCV:
		return is64 ? "riscv64" : "riscv32";
	case EM_386:
		return "i386";
	case EM_X86_64:
		return "x86_64";
	default:
		return "unknown";
	}
}

/*
 * Check the section header table: it must lie inside the file, and every
 * section that claims file bytes must lie inside the file too. This is what
 * catches a truncated ELF whose program headers are still intact (the
 * section table usually sits at the very end of the file).
 */
static int elf_check_sections(const struct elf *f, uint64_t shoff, unsigned shentsize,
                              uint64_t shnum, unsigned shstrndx, struct ms_err *e)
{
	unsigned need = f->is64 ? 64 : 40;
	uint64_t i;

	if (shoff == 0 && shnum == 0)
		return 0;
	if (shoff == 0)
		return bad(e, "elf: %" PRIu64 " section headers but e_shoff is 0", shnum);
	if (shentsize < need)
		return bad(e, "elf: e_shentsize %u is smaller than a section header (%u)",
		           shentsize, need);
	if (!in_bounds(f->len, shoff, 0) || shnum > (f->len - shoff) / shentsize)
		return bad(e,
		           "elf: section header table (offset 0x%" PRIx64 ", %" PRIu64
		           " entries of %u bytes) extends past the end of the file (%" PRIu64
		           " bytes): truncated or corrupt",
		           shoff, shnum, shentsize, f->len);
	if (shstrndx != 0 && shstrndx >= shnum)
		return bad(e, "elf: e_shstrndx %u out of range (%" PRIu64 " sections)", shstrndx,
		           shnum);
	for (i = 0; i < shnum; i++) {
		uint64_t sh = shoff + i * shentsize;
		uint32_t type = (uint32_t)rd(f, sh + 4, 4);
		uint64_t off = rd_word(f, 16, 24, sh);
		uint64_t size = rd_word(f, 20, 32, sh);

		if (type == SHT_NULL || type == SHT_NOBITS || size == 0)
			continue;
		if (!in_bounds(f->len, off, size))
			return bad(e,
			           "elf: section %" PRIu64 " (offset 0x%" PRIx64 ", size 0x%" PRIx64
			           ") extends past the end of the file (%" PRIu64
			           " bytes): truncated or corrupt",
			           i, off, size, f->len);
	}
	return 0;
}

/*
 * ARM build attributes (ARM IHI 0045, "Addenda to the ARM ELF ABI"): the
 * toolchain records the CPU a file was built for. We use them to pick the
 * rehost CPU when the user names neither a board nor a CPU. Advisory only:
 * a malformed attributes section is ignored (cpu stays ""), never an error,
 * and every read is bounds-checked.
 */
static bool uleb(const uint8_t *p, uint64_t end, uint64_t *at, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*at < end && shift < 64) {
		uint8_t b = p[(*at)++];

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
		shift += 7;
	}
	return false;
}

static bool ntbs(const uint8_t *p, uint64_t end, uint64_t *at, const char **str)
{
	const uint8_t *z = memchr(p + *at, 0, end - *at);

	if (z == NULL)
		return false;
	*str = (const char *)p + *at;
	*at = (uint64_t)(z - p) + 1;
	return true;
}

/* The rehost CPU for a Tag_CPU_name / Tag_CPU_arch / Tag_FP_arch triple. */
static const char *arm_cpu_for(const char *name, uint64_t arch, uint64_t fp)
{
	/* clang-format off */
	static const char *const by_name[][2] = {
		{"cortex-m0+", "cortex-m0plus"}, {"cortex-m0plus", "cortex-m0plus"},
		{"cortex-m0", "cortex-m0"}, {"cortex-m1", "cortex-m0"},
		{"cortex-m3", "cortex-m3"}, {"cortex-m4", "cortex-m4"},
		{"cortex-m7", "cortex-m7"}, {"cortex-m33", "cortex-m33"},
	};
	/* clang-format on */
	size_t i;

	for (i = 0; name != NULL && i < sizeof(by_name) / sizeof(by_name[0]); i++)
		if (strcasecmp(name, by_name[i][0]) == 0)
			return by_name[i][1];
	switch (arch) {
	case 11: /* v6-M */
	case 12: /* v6S-M: M0 and M0+ both; M0+ is the superset (VTOR) */
		return "cortex-m0plus";
	case 10: /* v7 with profile M (checked by the caller) */
		return "cortex-m3";
	case 13: /* v7E-M: M7 when the FPU does double precision (FPv5) */
		return fp >= 7 ? "cortex-m7" : "cortex-m4";
	case 16: /* v8-M.baseline */
	case 17: /* v8-M.mainline */
	case 21: /* v8.1-M.mainline: closest we emulate */
		return "cortex-m33";
	default:
		return NULL;
	}
}

static void elf_arm_cpu(const struct elf *f, uint64_t off, uint64_t size, char *out, size_t cap)
{
	const uint8_t *p = f->d;
	uint64_t end = off + size, at = off + 1;
	const char *name = NULL, *cpu;
	uint64_t arch = 0, profile = 0, fp = 0;

	if (size < 1 || p[off] != 'A')
		return;
	/* Subsections: length (u32, including itself), vendor name, data. */
	while (at + 4 <= end) {
		uint64_t len = rd(f, at, 4), sub_end = at + len, q = at + 4;
		const char *vendor;

		if (len < 5 || len > end - at)
			return;
		at = sub_end;
		if (!ntbs(p, sub_end, &q, &vendor) || strcmp(vendor, "aeabi") != 0)
			continue;
		/* Only the file-scope part: tag 1, size (u32, including tag and size). */
		if (q + 5 > sub_end || p[q] != 1)
			continue;
		len = rd(f, q + 1, 4);
		if (len < 5 || len > sub_end - q)
			return;
		sub_end = q + len;
		q += 5;
		while (q < sub_end) {
			uint64_t tag, v;
			const char *str;

			if (!uleb(p, sub_end, &q, &tag))
				return;
			/* Strings: 4, 5, 67, and odd tags above 32 (tag 32 is a pair). */
			if (tag == 4 || tag == 5 || tag == 67 || (tag > 32 && (tag & 1))) {
				if (!ntbs(p, sub_end, &q, &str))
					return;
				if (tag == 5)
					name = str;
				continue;
			}
			if (!uleb(p, sub_end, &q, &v))
				return;
			if (tag == 32 && !ntbs(p, sub_end, &q, &str))
				return;
			if (tag == 6)
				arch = v;
			else if (tag == 7)
				profile = v;
			else if (tag == 10)
				fp = v;
		}
	}
	if (arch == 10 && profile != 'M')
		return;
	cpu = arm_cpu_for(name, arch, fp);
	if (cpu != NULL)
		snprintf(out, cap, "%s", cpu);
}

static int parse_elf(const uint8_t *d, size_t len, struct ms_image *img, struct ms_err *e)
{
	struct elf f = {.d = d, .len = len};
	unsigned ehsize, phentsize, shentsize, need_ph;
	uint64_t phoff, shoff, phnum, shnum, i, total = 0;
	unsigned type, machine, shstrndx;
	size_t n_load = 0;
	int rc;

	if (len < 16)
		return bad(e, "elf: truncated identification (%zu bytes)", len);
	if (d[4] != ELFCLASS32 && d[4] != ELFCLASS64)
		return bad(e, "elf: bad class %u (expected 1 for ELF32 or 2 for ELF64)", d[4]);
	if (d[5] != ELFDATA2LSB && d[5] != ELFDATA2MSB)
		return bad(e, "elf: bad data encoding %u (expected 1 little or 2 big endian)",
		           d[5]);
	if (d[6] != 1)
		return bad(e, "elf: bad identification version %u", d[6]);
	f.is64 = d[4] == ELFCLASS64;
	f.be = d[5] == ELFDATA2MSB;
	ehsize = f.is64 ? 64 : 52;
	if (len < ehsize)
		return bad(e, "elf: truncated header (%zu of %u bytes)", len, ehsize);

	type = (unsigned)rd(&f, 16, 2);
	machine = (unsigned)rd(&f, 18, 2);
	if (rd(&f, 20, 4) != 1)
		return bad(e, "elf: bad e_version %" PRIu64, rd(&f, 20, 4));
	if (type != ET_EXEC && type != ET_DYN)
		return bad(e,
		           "elf: e_type %u is not an executable (relocatable objects and core "
		           "files cannot be loaded)",
		           type);
	img->entry = rd_word(&f, 24, 24, 0);
	phoff = rd_word(&f, 28, 32, 0);
	shoff = rd_word(&f, 32, 40, 0);
	phentsize = (unsigned)rd(&f, f.is64 ? 54 : 42, 2);
	phnum = rd(&f, f.is64 ? 56 : 44, 2);
	shentsize = (unsigned)rd(&f, f.is64 ? 58 : 46, 2);
	shnum = rd(&f, f.is64 ? 60 : 48, 2);
	shstrndx = (unsigned)rd(&f, f.is64 ? 62 : 50, 2);

	/* Extended numbering keeps the real counts in section header 0. */
	if ((shnum == 0 && shoff != 0) || shstrndx == SHN_XINDEX || phnum == PN_XNUM) {
		unsigned need = f.is64 ? 64 : 40;

		if (shoff == 0 || shentsize < need || !in_bounds(len, shoff, need))
			return bad(e,
			           "elf: extended section numbering but section header 0 at "
			           "0x%" PRIx64 " is not in the file",
			           shoff);
		if (shnum == 0)
			shnum = rd_word(&f, 20, 32, shoff);
		if (shstrndx == SHN_XINDEX)
			shstrndx = (unsigned)rd(&f, shoff + (f.is64 ? 40 : 24), 4);
		if (phnum == PN_XNUM)
			phnum = rd(&f, shoff + (f.is64 ? 44 : 28), 4);
	}

	need_ph = f.is64 ? 56 : 32;
	if (phnum == 0)
		return bad(e, "elf: no program headers, nothing to load");
	if (phentsize < need_ph)
		return bad(e, "elf: e_phentsize %u is smaller than a program header (%u)",
		           phentsize, need_ph);
	if (phoff < ehsize)
		return bad(e, "elf: program header table at 0x%" PRIx64 " overlaps the elf header",
		           phoff);
	if (!in_bounds(len, phoff, 0) || phnum > (len - phoff) / phentsize)
		return bad(e,
		           "elf: program header table (offset 0x%" PRIx64 ", %" PRIu64
		           " entries of %u bytes) extends past the end of the file (%zu bytes): "
		           "truncated or corrupt",
		           phoff, phnum, phentsize, len);
	rc = elf_check_sections(&f, shoff, shentsize, shnum, shstrndx, e);
	if (rc != 0)
		return rc;

	/* First pass: validate every PT_LOAD and count those that occupy memory. */
	for (i = 0; i < phnum; i++) {
		uint64_t ph = phoff + i * phentsize;
		uint64_t off, paddr, filesz, memsz;

		if (rd(&f, ph, 4) != PT_LOAD)
			continue;
		off = rd_word(&f, 4, 8, ph);
		paddr = rd_word(&f, 12, 24, ph);
		filesz = rd_word(&f, 16, 32, ph);
		memsz = rd_word(&f, 20, 40, ph);
		if (filesz > memsz)
			return bad(e,
			           "elf: segment %" PRIu64 ": p_filesz 0x%" PRIx64
			           " larger than p_memsz 0x%" PRIx64,
			           i, filesz, memsz);
		if (!in_bounds(len, off, filesz))
			return bad(e,
			           "elf: segment %" PRIu64 " (offset 0x%" PRIx64 ", size 0x%" PRIx64
			           ") extends past the end of the file (%zu bytes): truncated or "
			           "corrupt",
			           i, off, filesz, len);
		if (memsz == 0)
			continue;
		if (f.is64 ? memsz - 1 > UINT64_MAX - paddr : paddr + memsz > (UINT64_C(1) << 32))
			return bad(e,
			           "elf: segment %" PRIu64 " at 0x%" PRIx64 " size 0x%" PRIx64
			           " runs past the end of the address space",
			           i, paddr, memsz);
		if (memsz > MAX_TOTAL_MEMSZ || total + memsz > MAX_TOTAL_MEMSZ)
			return bad(e, "elf: loadable segments exceed 4 GiB in total");
		total += memsz;
		if (++n_load > MAX_SEGS)
			return bad(e, "elf: more than %d loadable segments", MAX_SEGS);
	}
	if (n_load == 0)
		return bad(e, "elf: no loadable segment (PT_LOAD with a size)");

	img->segs = calloc(n_load, sizeof(*img->segs));
	if (img->segs == NULL)
		return ms_fail(e, 500, "out_of_memory", "cannot allocate %zu segments", n_load);
	for (i = 0; i < phnum; i++) {
		uint64_t ph = phoff + i * phentsize;
		struct ms_image_segment *s;
		uint64_t off;

		if (rd(&f, ph, 4) != PT_LOAD || rd_word(&f, 20, 40, ph) == 0)
			continue;
		s = &img->segs[img->n_segs];
		off = rd_word(&f, 4, 8, ph);
		s->addr = rd_word(&f, 12, 24, ph);
		s->filesz = rd_word(&f, 16, 32, ph);
		s->memsz = rd_word(&f, 20, 40, ph);
		s->flags = (uint32_t)rd(&f, ph + (f.is64 ? 4 : 24), 4);
		if (s->filesz > 0) {
			s->data = malloc(s->filesz);
			if (s->data == NULL)
				return ms_fail(e, 500, "out_of_memory",
				               "cannot allocate %" PRIu64 " bytes for a segment",
				               s->filesz);
			memcpy(s->data, d + off, s->filesz);
		}
		img->n_segs++;
	}
	img->format = MS_IMAGE_ELF;
	img->elf_class = f.is64 ? 64 : 32;
	img->big_endian = f.be;
	img->has_entry = true;
	snprintf(img->arch, sizeof(img->arch), "%s", elf_arch(machine, f.is64));
	if (machine == EM_ARM && !f.is64) {
		for (i = 0; i < shnum; i++) {
			uint64_t sh = shoff + i * shentsize;

			/* SHT_ARM_ATTRIBUTES; bounds already checked by elf_check_sections. */
			if (rd(&f, sh + 4, 4) == 0x70000003u)
				elf_arm_cpu(&f, rd(&f, sh + 16, 4), rd(&f, sh + 20, 4), img->cpu,
				            sizeof(img->cpu));
		}
	}
	return 0;
}

/* ---- Intel HEX ---- */

struct hex_chunk {
	uint64_t addr;
	size_t off; /* into the decoded byte buffer */
	size_t len;
	size_t order; /* file order, so the sort is stable */
};

struct hex_state {
	uint8_t *bytes; /* decoded data bytes of all data records */
	size_t n_bytes;
	struct hex_chunk *chunks;
	size_t n_chunks, cap_chunks;
};

static int hex_add_chunk(struct hex_state *h, uint64_t addr, const uint8_t *src, size_t n)
{
	struct hex_chunk *c;

	if (h->n_chunks == h->cap_chunks) {
		size_t cap = h->cap_chunks ? h->cap_chunks * 2 : 256;
		struct hex_chunk *p = realloc(h->chunks, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		h->chunks = p;
		h->cap_chunks = cap;
	}
	c = &h->chunks[h->n_chunks];
	c->addr = addr;
	c->off = h->n_bytes;
	c->len = n;
	c->order = h->n_chunks;
	memcpy(h->bytes + h->n_bytes, src, n);
	h->n_bytes += n;
	h->n_chunks++;
	return 0;
}

static int hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

static int chunk_cmp(const void *a, const void *b)
{
	const struct hex_chunk *x = a;
	const struct hex_chunk *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->order < y->order ? -1 : (x->order > y->order);
}

/*
 * Merge the (sorted) chunks into segments of contiguous bytes. Overlapping
 * records are accepted only when they carry the same bytes: a file that
 * says two different things about one address is corrupt.
 */
static int hex_build_segments(struct hex_state *h, struct ms_image *img, struct ms_err *e)
{
	size_t i, n = 0, k;
	uint64_t end = 0, total = 0;

	qsort(h->chunks, h->n_chunks, sizeof(*h->chunks), chunk_cmp);
	for (i = 0; i < h->n_chunks; i++) {
		struct hex_chunk *c = &h->chunks[i];

		if (n == 0 || c->addr > end) {
			if (++n > MAX_SEGS)
				return bad(e, "ihex: more than %d separate data ranges", MAX_SEGS);
			end = c->addr;
		}
		if (c->addr + c->len > end)
			end = c->addr + c->len;
	}
	img->segs = calloc(n, sizeof(*img->segs));
	if (img->segs == NULL)
		return ms_fail(e, 500, "out_of_memory", "cannot allocate %zu segments", n);

	/* Second pass: size each segment, then copy. */
	for (i = 0; i < h->n_chunks; i++) {
		struct hex_chunk *c = &h->chunks[i];
		struct ms_image_segment *s = img->n_segs ? &img->segs[img->n_segs - 1] : NULL;

		if (s == NULL || c->addr > s->addr + s->memsz) {
			s = &img->segs[img->n_segs++];
			s->addr = c->addr;
		}
		if (c->addr + c->len > s->addr + s->memsz)
			s->memsz = c->addr + c->len - s->addr;
	}
	for (k = 0; k < img->n_segs; k++) {
		struct ms_image_segment *s = &img->segs[k];

		s->filesz = s->memsz;
		total += s->memsz;
		if (total > MAX_TOTAL_MEMSZ)
			return bad(e, "ihex: data exceeds 4 GiB in total");
		s->data = malloc(s->memsz);
		if (s->data == NULL)
			return ms_fail(e, 500, "out_of_memory", "cannot allocate a segment");
	}
	k = 0;
	end = 0;
	for (i = 0; i < h->n_chunks; i++) {
		struct hex_chunk *c = &h->chunks[i];
		struct ms_image_segment *s = &img->segs[k];
		uint64_t rel, dup = 0;

		if (c->addr >= s->addr + s->memsz) {
			s = &img->segs[++k];
			end = s->addr;
		}
		rel = c->addr - s->addr;
		/* Bytes below end were written by earlier chunks of this segment. */
		if (c->addr < end) {
			dup = end - c->addr;
			if (dup > c->len)
				dup = c->len;
			if (memcmp(s->data + rel, h->bytes + c->off, dup) != 0)
				return bad(
				    e, "ihex: records overlap with different data at 0x%" PRIx64,
				    c->addr);
		}
		memcpy(s->data + rel + dup, h->bytes + c->off + dup, c->len - dup);
		if (c->addr + c->len > end)
			end = c->addr + c->len;
	}
	return 0;
}

static int parse_ihex(const uint8_t *d, size_t len, struct ms_image *img, struct ms_err *e)
{
	struct hex_state h = {0};
	uint8_t rec[262];
	size_t pos = 0, line = 1;
	bool eof = false, seg_mode = false;
	uint64_t base = 0;
	int rc = 0;

	/* Every data byte takes two hex digits, so len / 2 bounds the decoded size. */
	h.bytes = malloc(len / 2 + 1);
	if (h.bytes == NULL)
		return ms_fail(e, 500, "out_of_memory", "cannot allocate %zu bytes", len / 2);

	while (pos < len) {
		uint8_t c = d[pos];
		size_t start, ndig, nbytes, i;
		unsigned count, type, addr16, sum;

		if (c == '\n' || c == '\r') {
			if (c == '\r' && pos + 1 < len && d[pos + 1] == '\n')
				pos++;
			pos++;
			line++;
			continue;
		}
		if (c == ' ' || c == '\t') {
			pos++;
			continue;
		}
		if (eof) {
			rc = bad(e, "ihex: line %zu: data after the end-of-file record", line);
			goto out;
		}
		if (c != ':') {
			if (is_text_byte(c))
				rc = bad(e,
				         "ihex: line %zu: expected ':' at the start of a record, "
				         "got '%c'",
				         line, c);
			else
				rc = bad(e,
				         "ihex: line %zu: expected ':' at the start of a record, "
				         "got byte 0x%02x",
				         line, c);
			goto out;
		}
		start = ++pos;
		while (pos < len && is_hex_digit(d[pos]))
			pos++;
		ndig = pos - start;
		while (pos < len && (d[pos] == ' ' || d[pos] == '\t'))
			pos++;
		if (pos < len && d[pos] != '\r' && d[pos] != '\n') {
			rc = bad(e, "ihex: line %zu: unexpected byte 0x%02x in a record", line,
			         d[pos]);
			goto out;
		}
		if (ndig % 2 != 0) {
			rc = bad(e, "ihex: line %zu: odd number of hex digits (%zu)", line, ndig);
			goto out;
		}
		nbytes = ndig / 2;
		if (nbytes < 5) {
			rc = bad(e, "ihex: line %zu: record too short (%zu bytes, at least 5)",
			         line, nbytes);
			goto out;
		}
		if (nbytes > sizeof(rec)) {
			rc = bad(e, "ihex: line %zu: record too long (%zu bytes)", line, nbytes);
			goto out;
		}
		sum = 0;
		for (i = 0; i < nbytes; i++) {
			rec[i] = (uint8_t)(hex_digit(d[start + 2 * i]) << 4 |
			                   hex_digit(d[start + 2 * i + 1]));
			sum += rec[i];
		}
		count = rec[0];
		if (nbytes != count + 5u) {
			rc = bad(e,
			         "ihex: line %zu: length byte says %u data bytes but the record "
			         "has %zu",
			         line, count, nbytes - 5);
			goto out;
		}
		if ((sum & 0xff) != 0) {
			rc =
			    bad(e,
			        "ihex: line %zu: bad checksum 0x%02x (the record's bytes want "
			        "0x%02x)",
			        line, rec[nbytes - 1], (unsigned)(-(sum - rec[nbytes - 1])) & 0xff);
			goto out;
		}
		addr16 = (unsigned)rec[1] << 8 | rec[2];
		type = rec[3];
		switch (type) {
		case 0x00:
			if (count == 0)
				break;
			if (seg_mode && addr16 + count > 0x10000) {
				/* Segment addressing wraps inside the 64 KiB segment. */
				size_t first = 0x10000 - addr16;

				rc = hex_add_chunk(&h, base + addr16, rec + 4, first);
				if (rc == 0)
					rc =
					    hex_add_chunk(&h, base, rec + 4 + first, count - first);
			} else {
				if (base + addr16 + count > (UINT64_C(1) << 32)) {
					rc = bad(e, "ihex: line %zu: data runs past 4 GiB", line);
					goto out;
				}
				rc = hex_add_chunk(&h, base + addr16, rec + 4, count);
			}
			if (rc != 0) {
				rc =
				    ms_fail(e, 500, "out_of_memory", "cannot allocate hex records");
				goto out;
			}
			break;
		case 0x01:
			if (count != 0) {
				rc = bad(e, "ihex: line %zu: end-of-file record with data", line);
				goto out;
			}
			eof = true;
			break;
		case 0x02:
		case 0x04:
			if (count != 2) {
				rc = bad(
				    e,
				    "ihex: line %zu: extended address record (type %02x) needs 2 "
				    "data bytes, has %u",
				    line, type, count);
				goto out;
			}
			seg_mode = type == 0x02;
			base = ((uint64_t)rec[4] << 8 | rec[5]) << (seg_mode ? 4 : 16);
			break;
		case 0x03:
		case 0x05:
			if (count != 4) {
				rc = bad(e,
				         "ihex: line %zu: start address record (type %02x) needs 4 "
				         "data bytes, has %u",
				         line, type, count);
				goto out;
			}
			if (type == 0x03)
				img->entry = ((uint64_t)rec[4] << 8 | rec[5]) * 16 +
				    ((uint64_t)rec[6] << 8 | rec[7]);
			else
				img->entry = (uint64_t)rec[4] << 24 | (uint64_t)rec[5] << 16 |
				    (uint64_t)rec[6] << 8 | rec[7];
			img->has_entry = true;
			break;
		default:
			rc = bad(e, "ihex: line %zu: unknown record type 0x%02x", line, type);
			goto out;
		}
	}
	if (!eof) {
		rc = bad(e, "ihex: missing end-of-file record (:00000001FF)");
		goto out;
	}
	if (h.n_chunks == 0) {
		rc = bad(e, "ihex: no data records");
		goto out;
	}
	rc = hex_build_segments(&h, img, e);
	if (rc == 0)
		img->format = MS_IMAGE_IHEX;
out:
	free(h.bytes);
	free(h.chunks);
	return rc;
}

/* ---- raw binary ---- */

static int parse_bin(const uint8_t *d, size_t len, uint64_t base, struct ms_image *img,
                     struct ms_err *e)
{
	if ((uint64_t)len > MAX_TOTAL_MEMSZ)
		return bad(e, "bin: larger than 4 GiB");
	if ((uint64_t)len - 1 > UINT64_MAX - base)
		return bad(e, "bin: %zu bytes at 0x%" PRIx64 " run past the address space", len,
		           base);
	img->segs = calloc(1, sizeof(*img->segs));
	if (img->segs == NULL)
		return ms_fail(e, 500, "out_of_memory", "cannot allocate a segment");
	img->segs[0].data = malloc(len);
	if (img->segs[0].data == NULL)
		return ms_fail(e, 500, "out_of_memory", "cannot allocate %zu bytes", len);
	memcpy(img->segs[0].data, d, len);
	img->segs[0].addr = base;
	img->segs[0].filesz = len;
	img->segs[0].memsz = len;
	img->n_segs = 1;
	img->format = MS_IMAGE_BIN;
	return 0;
}

int ms_image_parse(const uint8_t *data, size_t len, uint64_t bin_base, struct ms_image *img,
                   struct ms_err *e)
{
	int rc;

	memset(img, 0, sizeof(*img));
	switch (ms_image_detect(data, len)) {
	case MS_IMAGE_ELF:
		rc = parse_elf(data, len, img, e);
		break;
	case MS_IMAGE_IHEX:
		rc = parse_ihex(data, len, img, e);
		break;
	case MS_IMAGE_BIN:
		rc = parse_bin(data, len, bin_base, img, e);
		break;
	default:
		rc = bad(e, "empty image");
		break;
	}
	if (rc != 0)
		ms_image_free(img);
	return rc;
}

int ms_image_load_file(const char *path, uint64_t bin_base, size_t max_len, struct ms_image *img,
                       struct ms_err *e)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t cap, n = 0;
	int fd, rc;

	memset(img, 0, sizeof(*img));
	if (max_len == 0 || max_len > MAX_TOTAL_MEMSZ * 2)
		max_len = MAX_TOTAL_MEMSZ * 2;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return ms_fail(e, 404, "file_not_found", "cannot open %s: %s", path,
			               strerror(-rc));
		return ms_fail(e, rc == -EACCES ? 403 : 500, "file_unreadable",
		               "cannot open %s: %s", path, strerror(-rc));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return bad(e, "%s is not a regular file", path);
	}
	if ((uint64_t)st.st_size > max_len) {
		close(fd);
		return ms_fail(e, 413, "too_large", "%s is %jd bytes, the limit is %zu", path,
		               (intmax_t)st.st_size, max_len);
	}
	/* Read one byte past st_size so a file that grew meanwhile is still bounded. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		return ms_fail(e, 500, "out_of_memory", "cannot allocate %zu bytes", cap);
	}
	for (;;) {
		ssize_t k = read(fd, buf + n, cap - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = -errno;
			close(fd);
			free(buf);
			return ms_fail(e, 500, "file_unreadable", "cannot read %s: %s", path,
			               strerror(-rc));
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == cap)
			break;
	}
	close(fd);
	if (n > (size_t)st.st_size) {
		free(buf);
		return ms_fail(e, 409, "file_changed", "%s changed while being read", path);
	}
	rc = ms_image_parse(buf, n, bin_base, img, e);
	free(buf);
	return rc;
}
