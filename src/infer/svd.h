/*
 * svd: CMSIS-SVD files read with libxml2, reduced to what inference needs:
 * peripherals (base, size, interrupts), registers (offset, size, reset
 * value, access) and fields (bit range, access, write-1-to-clear).
 * derivedFrom, dim arrays and clusters are expanded.
 *
 * Hostile input is bounded: files over 64 MiB, more than 4096 peripherals,
 * 100000 registers in total or nesting deeper than 8 clusters are refused
 * with a message; malformed XML is refused with libxml2's line number.
 *
 * Threads: a loaded struct ms__svd is immutable and may be read anywhere.
 */
#ifndef MS_INFER_SVD_H
#define MS_INFER_SVD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ms__svd_access {
	MS__SVD_RW = 0,
	MS__SVD_RO,
	MS__SVD_WO,
};

struct ms__svd_field {
	char name[32];
	uint8_t lsb, width;
	uint8_t access; /* enum ms__svd_access */
	bool w1c; /* modifiedWriteValues oneToClear */
};

struct ms__svd_reg {
	char name[40];
	uint32_t off; /* from the peripheral base */
	uint32_t reset;
	uint8_t size; /* bits */
	uint8_t access; /* enum ms__svd_access */
	struct ms__svd_field *fields;
	int nfields;
};

struct ms__svd_periph {
	char name[32];
	char group[32];
	uint32_t base;
	uint32_t size; /* from addressBlock, at least the last register's end */
	int irq[4];
	int nirq;
	struct ms__svd_reg *regs;
	int nregs;
};

struct ms__svd {
	char device[64];
	struct ms__svd_periph *p;
	int np;
};

/* Load path. On failure returns a negative code and a message in err. */
int ms__svd_load(const char *path, struct ms__svd **out, char *err, size_t errcap);
/* Parse an in-memory document (same limits). */
int ms__svd_parse(const char *buf, size_t len, struct ms__svd **out, char *err, size_t errcap);
void ms__svd_free(struct ms__svd *s);

/* Peripheral whose [base, base+size) holds addr, or NULL. */
const struct ms__svd_periph *ms__svd_find(const struct ms__svd *s, uint32_t addr);

/* Register of p at byte offset off (covering it), or NULL. */
const struct ms__svd_reg *ms__svd_reg_at(const struct ms__svd_periph *p, uint32_t off);

#endif
