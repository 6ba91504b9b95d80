/*
 * image: firmware image parsing — ELF, Intel HEX and raw binary.
 *
 * One parser for every user of firmware files: the program store validates
 * uploads with it, the QEMU backend picks loader options from it, the rehost
 * engine loads segments from it. Parsers never trust sizes or offsets in
 * the file: a truncated or lying file is rejected with a message saying
 * what is wrong, never read out of bounds.
 *
 * Ownership: ms_image_parse allocates *img's segments and their data;
 * release with ms_image_free. Thread safety: pure, any thread.
 */
#ifndef MS_IMAGE_H
#define MS_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum ms_image_format {
	MS_IMAGE_UNKNOWN = 0,
	MS_IMAGE_ELF,
	MS_IMAGE_IHEX,
	MS_IMAGE_BIN,
};

struct ms_image_segment {
	uint64_t addr; /* physical (load) address */
	uint8_t *data; /* filesz bytes, owned by the image */
	uint64_t filesz;
	uint64_t memsz; /* >= filesz; the rest is zero-filled */
	uint32_t flags; /* ELF p_flags (PF_X=1, PF_W=2, PF_R=4); 0 for HEX/bin */
};

struct ms_image {
	enum ms_image_format format;
	char arch[24]; /* "arm", "aarch64", "riscv32", "riscv64", "x86_64", ... or "" */
	int elf_class; /* 32 or 64 for ELF, 0 otherwise */
	bool big_endian;
	/*
	 * ARM ELF only: the rehost CPU the toolchain built for, from the ARM
	 * build attributes ("cortex-m0plus", "cortex-m4", ...), "" if unknown.
	 */
	char cpu[16];
	bool has_entry;
	uint64_t entry; /* ELF e_entry, or HEX start linear address record */
	struct ms_image_segment *segs;
	size_t n_segs;
};

/* Name of a format: "elf", "ihex", "bin". */
const char *ms_image_format_name(enum ms_image_format f);

/*
 * Detect the format from content: ELF magic; Intel HEX when the text is
 * ':'-records only (CR/LF allowed); otherwise raw binary. Empty input is
 * MS_IMAGE_UNKNOWN. Precisely: text whose first non-blank byte is ':' is
 * HEX (and later rejected if it is not valid HEX), as is a file whose first
 * line is ':' plus hex digits even if binary follows; a binary that merely
 * starts with 0x3a is raw binary.
 */
enum ms_image_format ms_image_detect(const uint8_t *data, size_t len);

/*
 * Parse data (len bytes) into *img. For MS_IMAGE_BIN the single segment is
 * placed at bin_base. Limits: at most 256 segments, total memsz at most
 * 4 GiB. Returns 0, or MS_EBADINPUT with e filled (status 400,
 * code "bad_image") for malformed, truncated or inconsistent input.
 */
int ms_image_parse(const uint8_t *data, size_t len, uint64_t bin_base, struct ms_image *img,
                   struct ms_err *e);

/*
 * Read a whole file (at most max_len bytes; 0 means no limit beyond 8 GiB)
 * and parse it. Besides the parse errors: 404 "file_not_found",
 * 403/500 "file_unreadable", 413 "too_large", 400 for a non-regular file.
 */
int ms_image_load_file(const char *path, uint64_t bin_base, size_t max_len, struct ms_image *img,
                       struct ms_err *e);

void ms_image_free(struct ms_image *img);

#endif
