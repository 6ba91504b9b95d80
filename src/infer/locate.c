/*
 * locate: the instruction behind a data access, for the engine's MMIO log
 * (see locate.h). A thin owner of a Capstone handle and a cursor around
 * thumb.c's ms__locate.
 *
 * Threads: the engine's owner thread only; no locking.
 */
#include "infer/locate.h"

#include <stdlib.h>

#include "infer/thumb.h"

struct ms_infer_locator {
	uc_engine *uc;
	struct ms__dis *dis;
	uint64_t serial; /* block execution the cursor belongs to */
	uint32_t cursor; /* where the next search in that block starts */
};

struct ms_infer_locator *ms_infer_locator_new(uc_engine *uc)
{
	struct ms_infer_locator *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->uc = uc;
	l->dis = ms__dis_new(uc);
	if (l->dis == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void ms_infer_locator_free(struct ms_infer_locator *l)
{
	if (l == NULL)
		return;
	ms__dis_free(l->dis);
	free(l);
}

uint32_t ms_infer_locate(struct ms_infer_locator *l, const struct ms_infer_block *blk,
                         bool is_write, uint32_t addr, unsigned size)
{
	struct ms__cpu cpu;
	uint32_t pc;

	if (blk->serial != l->serial) {
		/* A new block execution: search it from its start. */
		l->serial = blk->serial;
		l->cursor = 0;
	}
	ms__cpu_lazy(l->uc, &cpu);
	if (ms__locate(l->dis, &cpu, blk->pc, &l->cursor, is_write, addr, size, &pc))
		return pc;
	return blk->pc;
}
