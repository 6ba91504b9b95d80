/*
 * unicorn-store: what the installed Unicorn charges per guest store, per
 * guest load and per UC_HOOK_BLOCK callback, with no engine of ours around
 * it. A Thumb loop of 50 M iterations ("str r1,[r2]" or "ldr r1,[r2]",
 * then pointer bump, mask, count down, branch) runs in 64 KiB of RAM.
 *
 * Why it exists: Debian bookworm's Unicorn 2.0.1 takes QEMU's
 * self-modifying-code slow path on every store (about 90 ns a store), which
 * is why scripts/install-deps.sh takes Unicorn 2.1.1 from trixie. Run it on
 * any machine to see which one it has.
 *
 * Usage: unicorn-store   (prints one line per configuration)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <unicorn/unicorn.h>

#define ITERS 50000000u
#define FLASH 0x00000000u
#define RAM 0x20000000u

static void count_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	(*(uint64_t *)ud)++;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ns per loop iteration, or a negative value when Unicorn failed. */
static double run(int store, int block_hook)
{
	/* clang-format off */
	const uint16_t code[] = {
		0x4a04,                     /* 0x00 ldr  r2, [pc, #16]  ; RAM base      */
		0x4b05,                     /* 0x02 ldr  r3, [pc, #20]  ; address mask  */
		0xbf00,                     /* 0x04 nop                                 */
		store ? 0x6011 : 0x6811,    /* 0x06 loop: str/ldr r1, [r2]              */
		0x3204,                     /* 0x08 adds r2, #4                         */
		0x401a,                     /* 0x0a ands r2, r3                         */
		0x3801,                     /* 0x0c subs r0, #1                         */
		0xd1fa,                     /* 0x0e bne  loop                           */
		0xbe00,                     /* 0x10 bkpt (the loop's end: 'until')      */
		0xbf00,
		RAM & 0xffff, RAM >> 16,   /* 0x14 literal: RAM base                   */
		0xfffc, (RAM >> 16) | 0,    /* 0x18 literal: RAM | 0xfffc (64 KiB wrap) */
	};
	/* clang-format on */
	uc_engine *uc;
	uc_hook h;
	uint64_t blocks = 0;
	uint32_t n = ITERS;
	double t;

	if (uc_open(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, &uc) != UC_ERR_OK)
		return -1;
	if (uc_mem_map(uc, FLASH, 0x10000, UC_PROT_READ | UC_PROT_EXEC) != UC_ERR_OK ||
	    uc_mem_map(uc, RAM, 0x10000, UC_PROT_ALL) != UC_ERR_OK ||
	    uc_mem_write(uc, FLASH, code, sizeof(code)) != UC_ERR_OK) {
		uc_close(uc);
		return -1;
	}
	if (block_hook)
		uc_hook_add(uc, &h, UC_HOOK_BLOCK, (void *)count_block, &blocks, 1, 0);
	uc_reg_write(uc, UC_ARM_REG_R0, &n);
	t = now_s();
	if (uc_emu_start(uc, FLASH | 1, FLASH + 0x10, 0, 0) != UC_ERR_OK) {
		uc_close(uc);
		return -1;
	}
	t = now_s() - t;
	uc_reg_read(uc, UC_ARM_REG_R0, &n);
	uc_close(uc);
	if (n != 0 || (block_hook && blocks < ITERS))
		return -1;
	return t * 1e9 / ITERS;
}

int main(void)
{
	unsigned maj, min;
	int store, hook;

	uc_version(&maj, &min);
	printf("unicorn-store: Unicorn %u.%u, %u iterations of a 5-instruction loop\n", maj, min,
	       ITERS);
	for (hook = 0; hook <= 1; hook++)
		for (store = 0; store <= 1; store++) {
			double ns = run(store, hook);

			if (ns < 0) {
				fprintf(stderr, "unicorn-store: the loop did not run to its end\n");
				return 1;
			}
			printf("  %-5s %-16s %6.2f ns per iteration\n", store ? "store" : "load",
			       hook ? "+ UC_HOOK_BLOCK" : "no hook", ns);
		}
	return 0;
}
