/*
 * locate: which instruction made a data access, for the engine's MMIO log.
 *
 * Inside a Unicorn memory hook the PC is that of the block's start, not of
 * the load or store. Instead of an instruction hook (which slows every
 * instruction ~3x), the engine keeps the current block in a struct
 * ms_infer_block and asks here: the block is walked with Capstone from its
 * start (or from just after the previous access found in the same block
 * execution), evaluating each load's and store's effective address with the
 * live registers, until one matches the access. The same walk serves the
 * inference module's own accesses (infer.c).
 *
 * Ownership: ms_infer_locator_new returns an object freed by
 * ms_infer_locator_free. Threads: the engine's owner thread only.
 */
#ifndef MS_INFER_LOCATE_H
#define MS_INFER_LOCATE_H

#include <stdbool.h>
#include <stdint.h>

#include <unicorn/unicorn.h>

#include "infer/infer.h"

struct ms_infer_locator;

/* NULL when out of memory or Capstone cannot open. */
struct ms_infer_locator *ms_infer_locator_new(uc_engine *uc);
void ms_infer_locator_free(struct ms_infer_locator *l);

/*
 * The address of the instruction in block blk that made the access
 * (is_write, size bytes at addr); blk->pc when no instruction of the block
 * matches (an access the walk cannot evaluate).
 */
uint32_t ms_infer_locate(struct ms_infer_locator *l, const struct ms_infer_block *blk,
                         bool is_write, uint32_t addr, unsigned size);

#endif
