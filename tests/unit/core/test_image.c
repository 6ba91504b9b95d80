/*
 * Unit tests for src/core/image.c: ELF32/ELF64 in both byte orders built in
 * the test, Intel HEX built in the test, raw binary, Debian's real u-boot ELF
 * and micro:bit MicroPython HEX, ARM build attributes of ELFs built by
 * arm-none-eabi-gcc and Debian's firmware-tomu, and hostile input: every truncation of the
 * built files, flipped bytes, lying offsets and sizes, overflowing sums.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "core/image.h"

#define UBOOT "/usr/lib/u-boot/qemu_arm64/uboot.elf"
#define MBHEX "/usr/share/firmware-microbit-micropython/firmware.hex"

/* ---- ELF builder ---- */

struct tphdr {
	uint32_t type, flags;
	uint64_t off, vaddr, paddr, filesz, memsz;
};

struct elf_spec {
	int cls; /* 32 or 64 */
	int be;
	uint16_t machine;
	uint16_t type;
	uint64_t entry;
	int nph;
	struct tphdr ph[4];
};

#define PAYLOAD_OFF 0x200
#define PAYLOAD_LEN 0x100
#define SH_OFF 0x300
#define ELF_BUF 0x400

static void put(uint8_t *b, size_t off, unsigned n, uint64_t v, int be)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		unsigned k = be ? n - 1 - i : i;

		b[off + k] = (uint8_t)(v >> (8 * i));
	}
}

/* Offsets of header fields for the class. */
static size_t o_phoff(int c)
{
	return c == 64 ? 32 : 28;
}
static size_t o_shoff(int c)
{
	return c == 64 ? 40 : 32;
}
static size_t o_phentsize(int c)
{
	return c == 64 ? 54 : 42;
}
static size_t o_phnum(int c)
{
	return c == 64 ? 56 : 44;
}
static size_t o_shentsize(int c)
{
	return c == 64 ? 58 : 46;
}
static size_t o_shnum(int c)
{
	return c == 64 ? 60 : 48;
}
static size_t o_shstrndx(int c)
{
	return c == 64 ? 62 : 50;
}
static unsigned wsz(int c)
{
	return c == 64 ? 8 : 4;
}
static size_t phsz(int c)
{
	return c == 64 ? 56 : 32;
}
static size_t shsz(int c)
{
	return c == 64 ? 64 : 40;
}
static size_t ehsz(int c)
{
	return c == 64 ? 64 : 52;
}

/* Offsets inside a program header. */
static size_t p_offset(int c)
{
	return c == 64 ? 8 : 4;
}
static size_t p_paddr(int c)
{
	return c == 64 ? 24 : 12;
}
static size_t p_filesz(int c)
{
	return c == 64 ? 32 : 16;
}
static size_t p_memsz(int c)
{
	return c == 64 ? 40 : 20;
}

/*
 * Layout: header, program headers, payload at 0x200 (0x100 bytes of i ^ 0x5a),
 * three section headers at 0x300 (NULL, PROGBITS over the payload, STRTAB
 * inside the payload as e_shstrndx). Returns the file length.
 */
static size_t build_elf(uint8_t *b, const struct elf_spec *s)
{
	int c = s->cls;
	int be = s->be;
	unsigned w = wsz(c);
	size_t i;

	memset(b, 0, ELF_BUF);
	memcpy(b,
	       "\x7f"
	       "ELF",
	       4);
	b[4] = c == 64 ? 2 : 1;
	b[5] = be ? 2 : 1;
	b[6] = 1;
	put(b, 16, 2, s->type, be);
	put(b, 18, 2, s->machine, be);
	put(b, 20, 4, 1, be);
	put(b, 24, w, s->entry, be);
	put(b, o_phoff(c), w, ehsz(c), be);
	put(b, o_shoff(c), w, SH_OFF, be);
	put(b, c == 64 ? 52 : 40, 2, ehsz(c), be);
	put(b, o_phentsize(c), 2, phsz(c), be);
	put(b, o_phnum(c), 2, (uint64_t)s->nph, be);
	put(b, o_shentsize(c), 2, shsz(c), be);
	put(b, o_shnum(c), 2, 3, be);
	put(b, o_shstrndx(c), 2, 2, be);
	for (i = 0; i < (size_t)s->nph; i++) {
		size_t ph = ehsz(c) + i * phsz(c);
		const struct tphdr *p = &s->ph[i];

		put(b, ph, 4, p->type, be);
		put(b, ph + (c == 64 ? 4 : 24), 4, p->flags, be);
		put(b, ph + p_offset(c), w, p->off, be);
		put(b, ph + (c == 64 ? 16 : 8), w, p->vaddr, be);
		put(b, ph + p_paddr(c), w, p->paddr, be);
		put(b, ph + p_filesz(c), w, p->filesz, be);
		put(b, ph + p_memsz(c), w, p->memsz, be);
	}
	for (i = 0; i < PAYLOAD_LEN; i++)
		b[PAYLOAD_OFF + i] = (uint8_t)(i ^ 0x5a);
	/* section 1: PROGBITS over the payload */
	put(b, SH_OFF + shsz(c) + 4, 4, 1, be);
	put(b, SH_OFF + shsz(c) + (c == 64 ? 24 : 16), w, PAYLOAD_OFF, be);
	put(b, SH_OFF + shsz(c) + (c == 64 ? 32 : 20), w, PAYLOAD_LEN, be);
	/* section 2: STRTAB */
	put(b, SH_OFF + 2 * shsz(c) + 4, 4, 3, be);
	put(b, SH_OFF + 2 * shsz(c) + (c == 64 ? 24 : 16), w, PAYLOAD_OFF, be);
	put(b, SH_OFF + 2 * shsz(c) + (c == 64 ? 32 : 20), w, 0x10, be);
	return SH_OFF + 3 * shsz(c);
}

/* A typical Cortex-M style image: text in flash, data with LMA in flash, a NOTE. */
static struct elf_spec arm_spec(int cls, int be)
{
	struct elf_spec s = {
	    .cls = cls,
	    .be = be,
	    .machine = 40,
	    .type = 2,
	    .entry = 0x101,
	    .nph = 3,
	    .ph =
	        {
	            {.type = 1,
	             .flags = 5,
	             .off = PAYLOAD_OFF,
	             .vaddr = 0x100,
	             .paddr = 0x100,
	             .filesz = 0x80,
	             .memsz = 0x80},
	            {.type = 4, .flags = 4, .off = PAYLOAD_OFF, .filesz = 0x10, .memsz = 0x10},
	            {.type = 1,
	             .flags = 6,
	             .off = PAYLOAD_OFF + 0x80,
	             .vaddr = 0x20000000,
	             .paddr = 0x180,
	             .filesz = 0x40,
	             .memsz = 0x100},
	        },
	};
	return s;
}

static int parse(const uint8_t *d, size_t n, struct ms_image *img, struct ms_err *e)
{
	ms_err_clear(e);
	return ms_image_parse(d, n, 0, img, e);
}

static void expect_bad(const uint8_t *d, size_t n, const char *needle)
{
	struct ms_image img;
	struct ms_err e;
	int rc = parse(d, n, &img, &e);

	if (rc == 0)
		fail_msg("expected rejection (%s) for %zu bytes, got success", needle, n);
	assert_int_equal(rc, MS_EBADINPUT);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "bad_image");
	if (needle != NULL && strstr(e.message, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", e.message, needle);
	assert_int_equal(img.n_segs, 0);
	assert_null(img.segs);
}

static void check_arm_image(const struct ms_image *img, int cls, int be)
{
	assert_int_equal(img->format, MS_IMAGE_ELF);
	assert_int_equal(img->elf_class, cls);
	assert_int_equal(img->big_endian, be);
	assert_string_equal(img->arch, "arm");
	assert_true(img->has_entry);
	assert_int_equal(img->entry, 0x101);
	assert_int_equal(img->n_segs, 2);
	assert_int_equal(img->segs[0].addr, 0x100);
	assert_int_equal(img->segs[0].filesz, 0x80);
	assert_int_equal(img->segs[0].memsz, 0x80);
	assert_int_equal(img->segs[0].flags, 5);
	assert_int_equal(img->segs[0].data[0], 0x5a);
	assert_int_equal(img->segs[0].data[0x7f], 0x7f ^ 0x5a);
	/* The data segment is placed at its load (physical) address, not its VMA. */
	assert_int_equal(img->segs[1].addr, 0x180);
	assert_int_equal(img->segs[1].filesz, 0x40);
	assert_int_equal(img->segs[1].memsz, 0x100);
	assert_int_equal(img->segs[1].flags, 6);
	assert_int_equal(img->segs[1].data[0], 0x80 ^ 0x5a);
}

static void test_elf_all_variants(void **state)
{
	int cls, be;

	for (cls = 32; cls <= 64; cls += 32) {
		for (be = 0; be <= 1; be++) {
			struct elf_spec s = arm_spec(cls, be);
			uint8_t b[ELF_BUF];
			size_t n = build_elf(b, &s);
			struct ms_image img;
			struct ms_err e;

			assert_int_equal(ms_image_detect(b, n), MS_IMAGE_ELF);
			assert_int_equal(parse(b, n, &img, &e), 0);
			check_arm_image(&img, cls, be);
			ms_image_free(&img);
			assert_null(img.segs);
		}
	}
}

static void test_elf_arch_names(void **state)
{
	static const struct {
		int cls;
		uint16_t machine;
		const char *arch;
	} cases[] = {
	    {32, 40, "arm"}, {64, 183, "aarch64"}, {32, 243, "riscv32"}, {64, 243, "riscv64"},
	    {32, 3, "i386"}, {64, 62, "x86_64"},   {32, 8, "unknown"},   {64, 0, "unknown"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct elf_spec s = arm_spec(cases[i].cls, i & 1);
		uint8_t b[ELF_BUF];
		size_t n;
		struct ms_image img;
		struct ms_err e;

		s.machine = cases[i].machine;
		n = build_elf(b, &s);
		assert_int_equal(parse(b, n, &img, &e), 0);
		assert_string_equal(img.arch, cases[i].arch);
		ms_image_free(&img);
	}
}

static void test_elf_every_truncation(void **state)
{
	int cls, be;

	for (cls = 32; cls <= 64; cls += 32) {
		for (be = 0; be <= 1; be++) {
			struct elf_spec s = arm_spec(cls, be);
			uint8_t b[ELF_BUF];
			size_t n = build_elf(b, &s);
			size_t k;

			for (k = 0; k < n; k = k == 0 ? 4 : k + 1) {
				/* Never reinterpreted as raw binary once the magic is there. */
				if (k >= 4)
					assert_int_equal(ms_image_detect(b, k), MS_IMAGE_ELF);
				expect_bad(b, k, k == 0 ? "empty" : NULL);
			}
		}
	}
}

static void test_elf_lying_headers(void **state)
{
	int cls;

	for (cls = 32; cls <= 64; cls += 32) {
		struct elf_spec s = arm_spec(cls, 0);
		uint8_t b[ELF_BUF];
		size_t n = build_elf(b, &s);
		unsigned w = wsz(cls);
		uint64_t big = cls == 64 ? UINT64_MAX - 4 : UINT32_MAX - 4;
		size_t ph2 = ehsz(cls) + 2 * phsz(cls);

#define MUT(off, size, val, needle)                                                                \
	do {                                                                                       \
		build_elf(b, &s);                                                                  \
		put(b, (off), (size), (val), 0);                                                   \
		expect_bad(b, n, (needle));                                                        \
	} while (0)

		MUT(4, 1, 3, "class");
		MUT(5, 1, 0, "encoding");
		MUT(6, 1, 2, "version");
		MUT(16, 2, 1, "relocatable");
		MUT(16, 2, 4, "e_type");
		MUT(o_phoff(cls), w, 0x100000, "program header table");
		MUT(o_phoff(cls), w, big, "program header table");
		MUT(o_phoff(cls), w, 0, "overlaps");
		MUT(o_phnum(cls), 2, 0, "no program headers");
		MUT(o_phnum(cls), 2, 0x7fff, "program header table");
		MUT(o_phentsize(cls), 2, 8, "e_phentsize");
		MUT(o_phentsize(cls), 2, 0xffff, "program header table");
		MUT(o_shoff(cls), w, 0x100000, "section header table");
		MUT(o_shoff(cls), w, big, "section header table");
		MUT(o_shnum(cls), 2, 0x1000, "section header table");
		MUT(o_shentsize(cls), 2, 4, "e_shentsize");
		MUT(o_shstrndx(cls), 2, 7, "e_shstrndx");
		/* A section pointing past the end (what truncation looks like). */
		MUT(SH_OFF + shsz(cls) + (cls == 64 ? 32 : 20), w, 0x10000, "section 1");
		MUT(SH_OFF + shsz(cls) + (cls == 64 ? 24 : 16), w, big, "section 1");
		/* Segment lies: offset, size, offset+size overflow, filesz > memsz. */
		MUT(ph2 + p_offset(cls), w, 0x10000, "segment 2");
		MUT(ph2 + p_offset(cls), w, big, "segment 2");
		MUT(ph2 + p_filesz(cls), w, 0x1000, "p_filesz");
		MUT(ph2 + p_filesz(cls), w, big, "p_filesz");
		MUT(ph2 + p_memsz(cls), w, 0x10, "p_filesz");
		MUT(ph2 + p_paddr(cls), w, big, "address space");
		if (cls == 64) {
			MUT(ph2 + p_memsz(cls), w, UINT64_C(5) << 30, "4 GiB");
		}
		/* No PT_LOAD at all. */
		build_elf(b, &s);
		put(b, ehsz(cls), 4, 6, 0);
		put(b, ph2, 4, 6, 0);
		expect_bad(b, n, "no loadable");
#undef MUT
	}
}

/* Every byte flipped three ways: never a crash or an out-of-bounds read. */
static void test_elf_flipped_bytes(void **state)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	int cls;

	for (cls = 32; cls <= 64; cls += 32) {
		struct elf_spec s = arm_spec(cls, cls == 64);
		uint8_t b[ELF_BUF];
		size_t n = build_elf(b, &s);
		size_t i, m;

		for (i = 0; i < n; i++) {
			for (m = 0; m < sizeof(masks); m++) {
				struct ms_image img;
				struct ms_err e;
				int rc;

				build_elf(b, &s);
				b[i] ^= masks[m];
				rc = parse(b, n, &img, &e);
				if (rc != 0) {
					assert_int_equal(rc, MS_EBADINPUT);
					assert_int_equal(e.status, 400);
					continue;
				}
				/* Accepted: segments must be well formed. */
				assert_true(img.n_segs >= 1 && img.n_segs <= 2);
				ms_image_free(&img);
			}
		}
	}
}

static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (f == NULL)
		fail_msg("cannot open %s (install the Debian package)", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return buf;
}

static void test_real_uboot(void **state)
{
	size_t n, k, i;
	uint8_t *d = read_file(UBOOT, &n);
	struct ms_image img;
	struct ms_err e;

	assert_int_equal(parse(d, n, &img, &e), 0);
	assert_int_equal(img.format, MS_IMAGE_ELF);
	assert_int_equal(img.elf_class, 64);
	assert_false(img.big_endian);
	assert_string_equal(img.arch, "aarch64");
	assert_true(img.has_entry);
	assert_int_equal(img.entry, 0);
	assert_int_equal(img.n_segs, 1);
	assert_int_equal(img.segs[0].addr, 0);
	assert_int_equal(img.segs[0].filesz, 0xf8f80);
	assert_int_equal(img.segs[0].memsz, 0xf8f80);
	assert_int_equal(img.segs[0].flags, 7);
	assert_memory_equal(img.segs[0].data, d + 0x10000, 0xf8f80);
	ms_image_free(&img);

	/* Cut anywhere: rejected, never taken for raw binary. */
	for (k = 0; k < n; k = k == 0 ? 4 : k + (k < 512 ? 1 : 4093))
		expect_bad(d, k, NULL);
	for (k = n - 64; k < n; k++)
		expect_bad(d, k, NULL);

	/* Flip bytes of the ELF header, program headers and section table. */
	for (i = 0; i < n; i++) {
		struct ms_image im;
		int rc;

		if (i == 64 + 2 * 56)
			i = n - 16 * 64;
		d[i] ^= 0xff;
		rc = parse(d, n, &im, &e);
		d[i] ^= 0xff;
		if (rc == 0)
			ms_image_free(&im);
		else
			assert_int_equal(e.status, 400);
	}
	free(d);
}

/* ---- Intel HEX ---- */

/* Append one record with a correct checksum to out. */
static void rec(char *out, unsigned type, unsigned addr, const uint8_t *data, unsigned n,
                const char *eol)
{
	unsigned sum = n + (addr >> 8) + (addr & 0xff) + type;
	char *p = out + strlen(out);
	unsigned i;

	p += sprintf(p, ":%02X%04X%02X", n, addr & 0xffff, type);
	for (i = 0; i < n; i++) {
		p += sprintf(p, "%02X", data[i]);
		sum += data[i];
	}
	sprintf(p, "%02X%s", (unsigned)(-sum) & 0xff, eol);
}

static void test_hex_basic(void **state)
{
	static const char *eols[] = {"\n", "\r\n"};
	uint8_t d16[16], ext[2], start[4];
	size_t i, k;

	for (i = 0; i < 16; i++)
		d16[i] = (uint8_t)(0xa0 + i);
	for (k = 0; k < 2; k++) {
		char txt[2048] = "";
		struct ms_image img;
		struct ms_err e;
		const char *eol = eols[k];

		ext[0] = 0x08;
		ext[1] = 0x00;
		rec(txt, 4, 0, ext, 2, eol); /* base 0x08000000 */
		rec(txt, 0, 0x0010, d16, 16, eol); /* out of order: second half first */
		rec(txt, 0, 0x0000, d16, 16, eol);
		rec(txt, 0, 0x0020, d16, 4, eol);
		rec(txt, 0, 0x0100, d16, 8, eol); /* a gap: new segment */
		ext[0] = 0x20;
		rec(txt, 4, 0, ext, 2, eol); /* huge address jump */
		rec(txt, 0, 0xfff8, d16, 8, eol);
		ext[0] = 0x20;
		ext[1] = 0x01;
		rec(txt, 4, 0, ext, 2, eol);
		rec(txt, 0, 0x0000, d16, 8, eol); /* contiguous across the 64 KiB boundary */
		start[0] = 0x08;
		start[1] = 0x00;
		start[2] = 0x01;
		start[3] = 0x01;
		rec(txt, 5, 0, start, 4, eol);
		rec(txt, 1, 0, NULL, 0, eol);

		assert_int_equal(ms_image_detect((uint8_t *)txt, strlen(txt)), MS_IMAGE_IHEX);
		assert_int_equal(parse((uint8_t *)txt, strlen(txt), &img, &e), 0);
		assert_int_equal(img.format, MS_IMAGE_IHEX);
		assert_true(img.has_entry);
		assert_int_equal(img.entry, 0x08000101);
		assert_string_equal(img.arch, "");
		assert_int_equal(img.elf_class, 0);
		assert_int_equal(img.n_segs, 3);
		assert_int_equal(img.segs[0].addr, 0x08000000);
		assert_int_equal(img.segs[0].filesz, 36);
		assert_int_equal(img.segs[0].memsz, 36);
		assert_memory_equal(img.segs[0].data, d16, 16);
		assert_memory_equal(img.segs[0].data + 16, d16, 16);
		assert_memory_equal(img.segs[0].data + 32, d16, 4);
		assert_int_equal(img.segs[1].addr, 0x08000100);
		assert_int_equal(img.segs[1].filesz, 8);
		assert_int_equal(img.segs[2].addr, 0x2000fff8);
		assert_int_equal(img.segs[2].filesz, 16);
		assert_memory_equal(img.segs[2].data + 8, d16, 8);
		ms_image_free(&img);
	}
}

static void test_hex_segment_records(void **state)
{
	char txt[1024] = "";
	uint8_t seg[2] = {0x10, 0x00}; /* segment 0x1000 -> base 0x10000 */
	uint8_t d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	uint8_t cs_ip[4] = {0x10, 0x00, 0x00, 0x20};
	struct ms_image img;
	struct ms_err e;

	rec(txt, 2, 0, seg, 2, "\n");
	rec(txt, 0, 0xfffc, d, 8, "\n"); /* wraps to the segment start */
	rec(txt, 3, 0, cs_ip, 4, "\n");
	rec(txt, 1, 0, NULL, 0, "\n");
	assert_int_equal(parse((uint8_t *)txt, strlen(txt), &img, &e), 0);
	assert_int_equal(img.entry, 0x10020);
	assert_int_equal(img.n_segs, 2);
	assert_int_equal(img.segs[0].addr, 0x10000);
	assert_memory_equal(img.segs[0].data, d + 4, 4);
	assert_int_equal(img.segs[1].addr, 0x1fffc);
	assert_memory_equal(img.segs[1].data, d, 4);
	ms_image_free(&img);
}

static void test_hex_overlap(void **state)
{
	uint8_t a[4] = {1, 2, 3, 4}, b[4] = {3, 4, 5, 6}, c[4] = {9, 9, 9, 9};
	char txt[512] = "";
	struct ms_image img;
	struct ms_err e;

	/* Same bytes twice: accepted and merged. */
	rec(txt, 0, 0x10, a, 4, "\n");
	rec(txt, 0, 0x12, b, 4, "\n");
	rec(txt, 1, 0, NULL, 0, "\n");
	assert_int_equal(parse((uint8_t *)txt, strlen(txt), &img, &e), 0);
	assert_int_equal(img.n_segs, 1);
	assert_int_equal(img.segs[0].filesz, 6);
	assert_int_equal(img.segs[0].data[5], 6);
	ms_image_free(&img);

	txt[0] = '\0';
	rec(txt, 0, 0x10, a, 4, "\n");
	rec(txt, 0, 0x11, c, 4, "\n");
	rec(txt, 1, 0, NULL, 0, "\n");
	expect_bad((uint8_t *)txt, strlen(txt), "overlap");
}

static void test_hex_hostile(void **state)
{
	static const struct {
		const char *txt;
		const char *needle;
	} cases[] = {
	    {":10000000\n:00000001FF\n", "too short"},
	    {":0400000001020304F\n:00000001FF\n", "odd number"},
	    {":0400000001020304F1\n:00000001FF\n", "checksum"},
	    {":0500000001020304F2\n:00000001FF\n", "length byte"},
	    {":0400000001020304F2\n", "missing end-of-file"},
	    {":0400000001020304F2\n:00000001FF\n:0400000001020304F2\n", "after the end"},
	    {":00000001FF\nhello\n", "after the end"},
	    {":0400000601020304EC\n:00000001FF\n", "unknown record type"},
	    {":hello, world\n", "unexpected byte"},
	    {":0400000001020304F2\nxyz\n:00000001FF\n", "expected ':'"},
	    {":04000000010G0304F2\n:00000001FF\n", "unexpected byte"},
	    {":030000040001FFF9\n:00000001FF\n", "extended address"},
	    {":020000050001F8\n:00000001FF\n", "start address"},
	    {":01000001FFFF\n", "end-of-file record with data"},
	    {":00000001FF\n", "no data records"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].txt);

		assert_int_equal(ms_image_detect((const uint8_t *)cases[i].txt, n), MS_IMAGE_IHEX);
		expect_bad((const uint8_t *)cases[i].txt, n, cases[i].needle);
	}
}

static void test_hex_binary_garbage(void **state)
{
	/* A valid first record followed by binary: a HEX error, not a raw binary. */
	static const uint8_t d[] = ":0400000001020304F2\n\x00\x01\x02\xff";

	assert_int_equal(ms_image_detect(d, sizeof(d) - 1), MS_IMAGE_IHEX);
	expect_bad(d, sizeof(d) - 1, "line 2");
}

static void test_hex_past_4g_and_too_many_ranges(void **state)
{
	char *txt = malloc(300 * 64);
	uint8_t ext[2] = {0xff, 0xff}, d[16] = {0};
	unsigned i;

	txt[0] = '\0';
	rec(txt, 4, 0, ext, 2, "\n");
	rec(txt, 0, 0xfff8, d, 16, "\n");
	rec(txt, 1, 0, NULL, 0, "\n");
	expect_bad((uint8_t *)txt, strlen(txt), "4 GiB");

	/* 300 separate ranges is over the 256-segment limit. */
	txt[0] = '\0';
	for (i = 0; i < 300; i++)
		rec(txt, 0, i * 32, d, 16, "\n");
	rec(txt, 1, 0, NULL, 0, "\n");
	expect_bad((uint8_t *)txt, strlen(txt), "separate");
	free(txt);
}

static void test_real_microbit_hex(void **state)
{
	size_t n, k;
	uint8_t *d = read_file(MBHEX, &n);
	static const uint8_t vec[] = {0x00, 0x40, 0x00, 0x20, 0xd9, 0xcc, 0x01, 0x00};
	struct ms_image img;
	struct ms_err e;
	uint64_t total = 0;

	assert_int_equal(ms_image_detect(d, n), MS_IMAGE_IHEX);
	assert_int_equal(parse(d, n, &img, &e), 0);
	assert_int_equal(img.format, MS_IMAGE_IHEX);
	assert_true(img.has_entry);
	assert_int_equal(img.entry, 0x0001ccd9);
	assert_true(img.n_segs >= 2);
	assert_int_equal(img.segs[0].addr, 0);
	assert_memory_equal(img.segs[0].data, vec, sizeof(vec));
	/* The UICR record at 0x10001000 is its own segment, the last one. */
	assert_int_equal(img.segs[img.n_segs - 1].addr & 0xfffff000, 0x10001000);
	for (k = 0; k < img.n_segs; k++)
		total += img.segs[k].filesz;
	/* 15243 data records, all 16 bytes except possibly a few. */
	assert_true(total > 15000 * 15 && total <= 15243 * 16);
	ms_image_free(&img);

	/* Truncated anywhere before the end of the EOF record: rejected. */
	for (k = 0; k + 2 <= n; k += (k < 300 || k > n - 300 ? 1 : 7919))
		expect_bad(d, k, NULL);
	free(d);
}

/* ---- raw binary and files ---- */

static void test_bin(void **state)
{
	static const uint8_t d[] = {0x3a, 0x00, 0x01, 0x02}; /* ':' then binary */
	struct ms_image img;
	struct ms_err e;

	assert_int_equal(ms_image_detect(d, sizeof(d)), MS_IMAGE_BIN);
	assert_int_equal(ms_image_detect(d, 0), MS_IMAGE_UNKNOWN);
	assert_int_equal(ms_image_detect((const uint8_t *)"\x7f"
	                                                  "EL",
	                                 3),
	                 MS_IMAGE_BIN);
	ms_err_clear(&e);
	assert_int_equal(ms_image_parse(d, sizeof(d), 0x08000000, &img, &e), 0);
	assert_int_equal(img.format, MS_IMAGE_BIN);
	assert_int_equal(img.n_segs, 1);
	assert_int_equal(img.segs[0].addr, 0x08000000);
	assert_int_equal(img.segs[0].filesz, 4);
	assert_int_equal(img.segs[0].memsz, 4);
	assert_memory_equal(img.segs[0].data, d, 4);
	assert_false(img.has_entry);
	ms_image_free(&img);

	assert_int_equal(ms_image_parse(d, sizeof(d), UINT64_MAX - 1, &img, &e), MS_EBADINPUT);
	assert_int_equal(ms_image_parse(d, sizeof(d), UINT64_MAX - 3, &img, &e), 0);
	ms_image_free(&img);
	expect_bad(d, 0, "empty");
	assert_string_equal(ms_image_format_name(MS_IMAGE_ELF), "elf");
	assert_string_equal(ms_image_format_name(MS_IMAGE_IHEX), "ihex");
	assert_string_equal(ms_image_format_name(MS_IMAGE_BIN), "bin");
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/ms-test-image-XXXXXX";
	char path[256];
	struct ms_image img;
	struct ms_err e;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(ms_image_load_file(UBOOT, 0, 4 << 20, &img, &e), 0);
	assert_string_equal(img.arch, "aarch64");
	ms_image_free(&img);

	assert_int_equal(ms_image_load_file(UBOOT, 0, 4096, &img, &e), MS_ETOOBIG);
	assert_int_equal(e.status, 413);
	snprintf(path, sizeof(path), "%s/missing.bin", dir);
	assert_int_equal(ms_image_load_file(path, 0, 0, &img, &e), MS_ENOTFOUND);
	assert_int_equal(e.status, 404);
	assert_int_equal(ms_image_load_file(dir, 0, 0, &img, &e), MS_EBADINPUT);

	snprintf(path, sizeof(path), "%s/fw.bin", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite("\x00\x10\x00\x20", 1, 4, f);
	fclose(f);
	assert_int_equal(ms_image_load_file(path, 0x1000, 0, &img, &e), 0);
	assert_int_equal(img.format, MS_IMAGE_BIN);
	assert_int_equal(img.segs[0].addr, 0x1000);
	ms_image_free(&img);
	unlink(path);
	rmdir(dir);
}

/* ---- ARM build attributes: which CPU the toolchain built for ---- */

#define TOBOOT "/usr/lib/firmware-tomu/toboot.elf"

/* Build a one-function ELF with the real cross compiler and parse it. */
static void expect_gcc_cpu(const char *flags, const char *want)
{
	char dir[] = "/tmp/ms-image-XXXXXX", cmd[512], path[64];
	struct ms_image img;
	struct ms_err e;
	size_t n;
	uint8_t *d;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a.c", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("void _start(void) { for (;;) ; }\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "arm-none-eabi-gcc -mthumb %s -nostdlib -o %s/a.elf %s 2>&1",
	         flags, dir, path);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/a.elf", dir);
	d = read_file(path, &n);
	assert_int_equal(parse(d, n, &img, &e), 0);
	if (strcmp(img.cpu, want) != 0)
		fail_msg("%s: cpu \"%s\", expected \"%s\"", flags, img.cpu, want);
	ms_image_free(&img);
	free(d);
	unlink(path);
	snprintf(path, sizeof(path), "%s/a.c", dir);
	unlink(path);
	rmdir(dir);
}

static void test_arm_attributes_from_gcc(void **state)
{
	/*
	 * This gcc records the architecture ("6S-M"), not the core, so an M0
	 * build gets the M0+ (its superset); toboot below names "Cortex-M0+".
	 */
	expect_gcc_cpu("-mcpu=cortex-m0", "cortex-m0plus");
	expect_gcc_cpu("-mcpu=cortex-m0plus", "cortex-m0plus");
	expect_gcc_cpu("-mcpu=cortex-m3", "cortex-m3");
	expect_gcc_cpu("-mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard", "cortex-m4");
	expect_gcc_cpu("-mcpu=cortex-m7 -mfpu=fpv5-d16 -mfloat-abi=hard", "cortex-m7");
	expect_gcc_cpu("-mcpu=cortex-m33", "cortex-m33");
	/* By architecture only (gcc names the arch, not a core). */
	expect_gcc_cpu("-march=armv6s-m", "cortex-m0plus");
	expect_gcc_cpu("-march=armv7-m", "cortex-m3");
	expect_gcc_cpu("-march=armv7e-m", "cortex-m4");
	expect_gcc_cpu("-march=armv8-m.main", "cortex-m33");
	/* Not an M profile: no suggestion. */
	expect_gcc_cpu("-march=armv7-a", "");
}

static void test_arm_attributes_real_toboot(void **state)
{
	size_t n;
	uint8_t *d = read_file(TOBOOT, &n);
	struct ms_image img;
	struct ms_err e;

	assert_int_equal(parse(d, n, &img, &e), 0);
	assert_string_equal(img.cpu, "cortex-m0plus");
	ms_image_free(&img);
	free(d);
}

/*
 * An attributes section over the test ELF's payload: "A", a subsection of
 * vendor "aeabi" with a file-scope part holding Tag_CPU_name "Cortex-M4",
 * Tag_CPU_arch v7E-M, Tag_CPU_arch_profile 'M', a compatibility pair and an
 * unknown string tag. Returns its length.
 */
static size_t put_attributes(uint8_t *b, size_t at, int be)
{
	static const uint8_t file_part[] = {
	    5,    'C',  'o', 'r', 't', 'e', 'x', '-', 'M', '4', 0, /* Tag_CPU_name */
	    6,    13, /* Tag_CPU_arch v7E-M */
	    7,    'M', /* profile */
	    32,   1,    'x', 0, /* Tag_compatibility */
	    0x81, 0x01, 's', 0, /* tag 129: a string */
	};
	size_t sub = 4 + 6 + 5 + sizeof(file_part);

	b[at] = 'A';
	put(b, at + 1, 4, sub, be);
	memcpy(b + at + 5, "aeabi", 6);
	b[at + 11] = 1;
	put(b, at + 12, 4, 5 + sizeof(file_part), be);
	memcpy(b + at + 16, file_part, sizeof(file_part));
	return 1 + sub;
}

static void test_arm_attributes_hostile(void **state)
{
	uint8_t b[ELF_BUF], m[ELF_BUF];
	struct elf_spec s = arm_spec(32, 0);
	size_t n = build_elf(b, &s), alen, i, cut;
	size_t sec = SH_OFF + shsz(32);
	struct ms_image img;
	struct ms_err e;

	/* Section 1 becomes SHT_ARM_ATTRIBUTES over the payload. */
	put(b, sec + 4, 4, 0x70000003u, 0);
	alen = put_attributes(b, PAYLOAD_OFF, 0);
	put(b, sec + 20, 4, alen, 0);
	assert_int_equal(parse(b, n, &img, &e), 0);
	assert_string_equal(img.cpu, "cortex-m4");
	ms_image_free(&img);

	/* Every shorter section size: the image still loads, the hint is just lost. */
	for (cut = 0; cut < alen; cut++) {
		memcpy(m, b, n);
		put(m, sec + 20, 4, cut, 0);
		assert_int_equal(parse(m, n, &img, &e), 0);
		assert_true(img.cpu[0] == 0 || strcmp(img.cpu, "cortex-m4") == 0);
		ms_image_free(&img);
	}
	/* Every byte of the section flipped in turn, and lying lengths. */
	for (i = 0; i < alen; i++) {
		static const uint8_t vals[] = {0x00, 0xff, 0x80, 0x7f};
		size_t v;

		for (v = 0; v < sizeof(vals); v++) {
			memcpy(m, b, n);
			m[PAYLOAD_OFF + i] = vals[v];
			assert_int_equal(parse(m, n, &img, &e), 0);
			assert_true(strlen(img.cpu) < sizeof(img.cpu));
			ms_image_free(&img);
		}
	}
	/* Unterminated name running to the section's end. */
	memcpy(m, b, n);
	memset(m + PAYLOAD_OFF + 16, 'x', alen - 16);
	assert_int_equal(parse(m, n, &img, &e), 0);
	assert_string_equal(img.cpu, "");
	ms_image_free(&img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_elf_all_variants),
	    cmocka_unit_test(test_elf_arch_names),
	    cmocka_unit_test(test_elf_every_truncation),
	    cmocka_unit_test(test_elf_lying_headers),
	    cmocka_unit_test(test_elf_flipped_bytes),
	    cmocka_unit_test(test_real_uboot),
	    cmocka_unit_test(test_hex_basic),
	    cmocka_unit_test(test_hex_segment_records),
	    cmocka_unit_test(test_hex_overlap),
	    cmocka_unit_test(test_hex_hostile),
	    cmocka_unit_test(test_hex_binary_garbage),
	    cmocka_unit_test(test_hex_past_4g_and_too_many_ranges),
	    cmocka_unit_test(test_real_microbit_hex),
	    cmocka_unit_test(test_bin),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_arm_attributes_from_gcc),
	    cmocka_unit_test(test_arm_attributes_real_toboot),
	    cmocka_unit_test(test_arm_attributes_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
