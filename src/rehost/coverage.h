/*
 * coverage: basic-block coverage for the rehost engine.
 *
 * The engine's block hook calls ms_rh_cov_block for every executed block;
 * a hash set keeps each block once with an execution count and the order
 * of first execution. Reports: the block list (--bb-out: one 0x%08x line
 * per block, Thumb bit cleared, in order of first execution) and LCOV from
 * the ELF's DWARF line tables (libdw), which genhtml turns into HTML.
 *
 * Threads: the machine's owner thread. Ownership: ms_rh_cov_new returns an
 * object freed with ms_rh_cov_free.
 */
#ifndef MS_RH_COVERAGE_H
#define MS_RH_COVERAGE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/err.h"

struct ms_rh_cov;

struct ms_rh_cov *ms_rh_cov_new(void);
void ms_rh_cov_free(struct ms_rh_cov *c);
void ms_rh_cov_reset(struct ms_rh_cov *c);

/* Record one executed block (addr with the Thumb bit already clear; size in bytes). */
void ms_rh_cov_block_sized(struct ms_rh_cov *c, uint32_t addr, uint32_t size);
#define ms_rh_cov_block(c, a) ms_rh_cov_block_sized((c), (a), 0)

size_t ms_rh_cov_count(const struct ms_rh_cov *c);

/* One line per block, "0x%08x\n", order of first execution. */
int ms_rh_cov_write_bb(const struct ms_rh_cov *c, const char *path, struct ms_err *e);

/*
 * LCOV tracefile for the source lines of elf_path: a line is hit when one
 * of its addresses lies in an executed block. Blocks need sizes: the
 * engine records them (ms_rh_cov_block_sized).
 */
int ms_rh_cov_write_lcov(const struct ms_rh_cov *c, const char *elf_path, const char *path,
                         struct ms_err *e);

/* {"blocks": N, "addresses": ["0x...", ...]} (new reference). */
json_t *ms_rh_cov_json(const struct ms_rh_cov *c, size_t max);

#endif
