/*
 * shell: a minimal Cortex-M host around struct ms_infer for the inference
 * unit tests, so that they run on Unicorn directly, independent of the
 * rehost engine: flash and RAM, an NVIC with enable/pending bits (ISER,
 * ICER, ISPR, ICPR), VTOR, exception entry and return with the basic frame,
 * console and input buffers, and events collected as JSON.
 *
 * Snippets are assembled at test time with arm-none-eabi-as and
 * arm-none-eabi-objcopy (real tools, as the project's tests require).
 *
 * Threads: one test thread per shell.
 */
#ifndef MS_TEST_INFER_SHELL_H
#define MS_TEST_INFER_SHELL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <unicorn/unicorn.h>

#include "infer/infer.h"

/* Each test uses a different part of the shell. */
#pragma GCC diagnostic ignored "-Wunused-function"

struct shell {
	uc_engine *uc;
	struct ms_infer *inf;
	uint64_t iser, ispr; /* interrupts 0..63 */
	uint32_t vtor;
	uint64_t insns, lim, blocks;
	int active;
	int want;
	char out[16384];
	size_t nout;
	char in[1024];
	size_t inpos, inlen;
	json_t *events; /* array of {type, data} */
	uint64_t skipped;
	int irqs_taken;
	int no_tick;
	int halted; /* interrupt number that stopped the run (bkpt, svc, undef) + 1 */
};

static void sh_console(void *ud, const uint8_t *b, size_t n)
{
	struct shell *s = ud;
	for (size_t i = 0; i < n && s->nout + 1 < sizeof(s->out); i++)
		s->out[s->nout++] = (char)b[i];
	s->out[s->nout] = 0;
}

static size_t sh_avail(void *ud)
{
	struct shell *s = ud;
	return s->inlen - s->inpos;
}

static int sh_get(void *ud)
{
	struct shell *s = ud;
	return s->inpos < s->inlen ? (unsigned char)s->in[s->inpos++] : -1;
}

static void sh_pend(void *ud, int irq)
{
	struct shell *s = ud;
	if (irq >= 0 && irq < 64)
		s->ispr |= 1ull << irq;
}

static bool sh_enabled(void *ud, int irq)
{
	struct shell *s = ud;
	return irq >= 0 && irq < 64 && ((s->iser >> irq) & 1);
}

static uint32_t sh_vtor(void *ud)
{
	struct shell *s = ud;
	return s->vtor;
}

static uint64_t sh_now(void *ud)
{
	struct shell *s = ud;
	return s->insns * 1000 / 16; /* 16 MHz, one instruction per cycle */
}

static void sh_event(void *ud, const char *type, json_t *data)
{
	struct shell *s = ud;
	json_array_append_new(s->events, json_pack("{s:s,s:O}", "type", type, "data", data));
	if (getenv("MS_TEST_VERBOSE")) {
		char *t = json_dumps(data, JSON_COMPACT);
		fprintf(stderr, "[%s] %s\n", type, t);
		free(t);
	}
}

static uint64_t sh_scs_read(uc_engine *uc, uint64_t off, unsigned size, void *ud)
{
	struct shell *s = ud;
	if (off == 0x100 || off == 0x104)
		return (uint32_t)(s->iser >> ((off - 0x100) * 8));
	if (off == 0x200 || off == 0x204)
		return (uint32_t)(s->ispr >> ((off - 0x200) * 8));
	if (off == 0xd08)
		return s->vtor;
	return 0;
}

static void sh_scs_write(uc_engine *uc, uint64_t off, unsigned size, uint64_t v, void *ud)
{
	struct shell *s = ud;
	v &= 0xffffffffu;
	if (off == 0x100 || off == 0x104)
		s->iser |= v << ((off - 0x100) * 8);
	else if (off == 0x180 || off == 0x184)
		s->iser &= ~(v << ((off - 0x180) * 8));
	else if (off == 0x200 || off == 0x204)
		s->ispr |= v << ((off - 0x200) * 8);
	else if (off == 0x280 || off == 0x284)
		s->ispr &= ~(v << ((off - 0x280) * 8));
	else if (off == 0xd08)
		s->vtor = (uint32_t)v;
}

static bool sh_unmapped(uc_engine *uc, uc_mem_type t, uint64_t a, int size, int64_t v, void *ud)
{
	struct shell *s = ud;
	if (ms_infer_on_unmapped(s->inf, t, a, size, v))
		return true;
	if (t == UC_MEM_FETCH_UNMAPPED)
		return false;
	/* Anything else the firmware expects becomes plain memory. */
	return uc_mem_map(uc, a & ~0xfffull, 0x1000, UC_PROT_ALL) == UC_ERR_OK;
}

static void sh_take(struct shell *s, int irq)
{
	static const int ids[5] = {UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3,
	                           UC_ARM_REG_R12};
	uint32_t r[5], sp, lr, pc, xpsr;
	for (int i = 0; i < 5; i++)
		uc_reg_read(s->uc, ids[i], &r[i]);
	uc_reg_read(s->uc, UC_ARM_REG_SP, &sp);
	uc_reg_read(s->uc, UC_ARM_REG_LR, &lr);
	uc_reg_read(s->uc, UC_ARM_REG_PC, &pc);
	uc_reg_read(s->uc, UC_ARM_REG_XPSR, &xpsr);
	uint32_t fr[8] = {r[0], r[1], r[2], r[3], r[4], lr, pc, xpsr};
	sp -= 32;
	uc_mem_write(s->uc, sp, fr, 32);
	uc_reg_write(s->uc, UC_ARM_REG_SP, &sp);
	uint32_t exc = 0xfffffff9;
	uc_reg_write(s->uc, UC_ARM_REG_LR, &exc);
	uint32_t h = 0;
	uc_mem_read(s->uc, s->vtor + 4u * (16u + (uint32_t)irq), &h, 4);
	h |= 1u;
	uc_reg_write(s->uc, UC_ARM_REG_PC, &h);
	/* IPSR holds the exception number in the handler (RTOS wrappers dispatch on it). */
	xpsr = (xpsr & ~0x1ffu) | (16u + (uint32_t)irq);
	uc_reg_write(s->uc, UC_ARM_REG_XPSR, &xpsr);
	s->ispr &= ~(1ull << irq);
	s->active++;
	s->irqs_taken++;
}

static void sh_block(uc_engine *uc, uint64_t a, uint32_t size, void *ud)
{
	struct shell *s = ud;
	s->blocks++;
	s->insns += size / 2 + 1;
	uint64_t k = ms_infer_on_block(s->inf, a, size);
	s->insns += k;
	s->skipped += k;
	if (!s->no_tick && (s->blocks & 63) == 0)
		ms_infer_tick(s->inf, sh_now(s));
	if (s->insns > s->lim) {
		uc_emu_stop(uc);
		return;
	}
	uint32_t pm = 0;
	uc_reg_read(uc, UC_ARM_REG_PRIMASK, &pm);
	if (!s->active && !(pm & 1) && (s->ispr & s->iser)) {
		s->want = 1;
		uc_emu_stop(uc);
	}
}

static void sh_intr(uc_engine *uc, uint32_t no, void *ud)
{
	struct shell *s = ud;
	uint32_t pc;
	uc_reg_read(uc, UC_ARM_REG_PC, &pc);
	if (no == 8 && (pc & 0xfffffff0u) == 0xfffffff0u && s->active) {
		static const int ids[5] = {UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2,
		                           UC_ARM_REG_R3, UC_ARM_REG_R12};
		uint32_t sp, fr[8];
		uc_reg_read(uc, UC_ARM_REG_SP, &sp);
		uc_mem_read(uc, sp, fr, 32);
		sp += 32;
		for (int i = 0; i < 5; i++)
			uc_reg_write(uc, ids[i], &fr[i]);
		uc_reg_write(uc, UC_ARM_REG_LR, &fr[5]);
		uc_reg_write(uc, UC_ARM_REG_SP, &sp);
		fr[6] |= 1u;
		uc_reg_write(uc, UC_ARM_REG_PC, &fr[6]);
		uc_reg_write(uc, UC_ARM_REG_XPSR, &fr[7]);
		s->active--;
		return;
	}
	s->halted = (int)no + 1;
	uc_emu_stop(uc);
}

/*
 * Create a machine: image at flash_base, 64 KiB RAM at 0x20000000, the
 * SCS page served by the shell. cpu is a UC_CPU_ARM_* model.
 */
static int sh_init(struct shell *s, int cpu, const void *img, size_t len, uint32_t flash_base,
                   const struct ms_infer_opts *opts, struct ms_err *e)
{
	memset(s, 0, sizeof(*s));
	s->events = json_array();
	s->vtor = flash_base;
	if (uc_open(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, &s->uc) != UC_ERR_OK)
		return -1;
	uc_ctl_set_cpu_model(s->uc, cpu);
	size_t fl = (len + 0xfff) & ~(size_t)0xfff;
	if (fl < 0x10000)
		fl = 0x10000;
	uc_mem_map(s->uc, flash_base, fl, UC_PROT_ALL);
	uc_mem_write(s->uc, flash_base, img, len);
	uc_mem_map(s->uc, 0x20000000, 0x10000, UC_PROT_ALL);
	uc_mmio_map(s->uc, 0xE000E000, 0x1000, sh_scs_read, s, sh_scs_write, s);
	struct ms_infer_host h = {
	    .ud = s,
	    .console_out = sh_console,
	    .input_avail = sh_avail,
	    .input_get = sh_get,
	    .irq_set_pending = sh_pend,
	    .irq_enabled = sh_enabled,
	    .vtor = sh_vtor,
	    .now_ns = sh_now,
	    .event = sh_event,
	};
	s->inf = ms_infer_new(s->uc, &h, opts, e);
	if (!s->inf)
		return -1;
	uc_hook hk;
	uc_hook_add(s->uc, &hk, UC_HOOK_MEM_UNMAPPED, sh_unmapped, s, 1, 0);
	uc_hook_add(s->uc, &hk, UC_HOOK_BLOCK, sh_block, s, 1, 0);
	uc_hook_add(s->uc, &hk, UC_HOOK_INTR, sh_intr, s, 1, 0);
	return 0;
}

static void sh_input(struct shell *s, const char *text)
{
	size_t n = strlen(text);
	if (s->inlen + n > sizeof(s->in))
		n = sizeof(s->in) - s->inlen;
	memcpy(s->in + s->inlen, text, n);
	s->inlen += n;
}

/*
 * Run from pc (Thumb bit added) with sp until bkpt, an error or max_insns.
 * Returns the final uc_err (UC_ERR_EXCEPTION for bkpt).
 */
static uc_err sh_run(struct shell *s, uint32_t pc, uint32_t sp, uint64_t max_insns)
{
	if (sp)
		uc_reg_write(s->uc, UC_ARM_REG_SP, &sp);
	s->lim = s->insns + max_insns;
	uc_err er = UC_ERR_OK;
	while (s->insns < s->lim) {
		er = uc_emu_start(s->uc, pc | 1u, 0xffffffffu, 0, 0);
		uc_reg_read(s->uc, UC_ARM_REG_PC, &pc);
		if (er != UC_ERR_OK)
			break;
		if (s->halted) {
			s->halted = 0;
			return UC_ERR_EXCEPTION; /* bkpt and other stops, as without a hook */
		}
		if (s->want) {
			s->want = 0;
			for (int i = 0; i < 64; i++)
				if (((s->ispr & s->iser) >> i) & 1) {
					sh_take(s, i);
					break;
				}
			uc_reg_read(s->uc, UC_ARM_REG_PC, &pc);
		}
	}
	return er;
}

/* Boot from the vector table at the flash base. */
static uc_err sh_boot(struct shell *s, uint64_t max_insns)
{
	uint32_t v[2] = {0, 0};
	uc_mem_read(s->uc, s->vtor, v, 8);
	return sh_run(s, v[1], v[0], max_insns);
}

static void sh_free(struct shell *s)
{
	ms_infer_free(s->inf);
	if (s->uc)
		uc_close(s->uc);
	json_decref(s->events);
}

/* Whether the console output (which may hold NUL bytes) contains needle. */
static bool sh_out_has(const struct shell *s, const char *needle)
{
	return memmem(s->out, s->nout, needle, strlen(needle)) != NULL;
}

/* Number of events of this type. */
static int sh_count(struct shell *s, const char *type)
{
	int n = 0;
	size_t i;
	json_t *e;
	json_array_foreach(s->events, i,
	                   e) if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0)
	    n++;
	return n;
}

/* First event of this type whose data.model equals model (NULL: any), or NULL. */
static json_t *sh_find(struct shell *s, const char *type, const char *model)
{
	size_t i;
	json_t *e;
	json_array_foreach(s->events, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "type")), type))
			continue;
		json_t *d = json_object_get(e, "data");
		if (!model ||
		    (json_string_value(json_object_get(d, "model")) &&
		     strcmp(json_string_value(json_object_get(d, "model")), model) == 0))
			return d;
	}
	return NULL;
}

/*
 * Assemble src (Thumb, unified syntax) for cpu ("cortex-m0", "cortex-m3")
 * into a flat binary at address 0. Returns a malloc'd buffer.
 */
static uint8_t *sh_asm(const char *src, const char *cpu, size_t *len)
{
	char dir[] = "/tmp/ms-infer-asm-XXXXXX";
	if (!mkdtemp(dir))
		return NULL;
	char s_path[128], o_path[128], b_path[128], cmd[1024];
	snprintf(s_path, sizeof(s_path), "%s/a.s", dir);
	snprintf(o_path, sizeof(o_path), "%s/a.o", dir);
	snprintf(b_path, sizeof(b_path), "%s/a.bin", dir);
	FILE *f = fopen(s_path, "w");
	if (!f)
		return NULL;
	fprintf(f, ".syntax unified\n.thumb\n%s\n", src);
	fclose(f);
	snprintf(
	    cmd, sizeof(cmd),
	    "arm-none-eabi-as -mcpu=%s -mthumb -o %s %s && arm-none-eabi-objcopy -O binary %s %s",
	    cpu, o_path, s_path, o_path, b_path);
	uint8_t *buf = NULL;
	if (system(cmd) == 0 && (f = fopen(b_path, "rb"))) {
		fseek(f, 0, SEEK_END);
		long n = ftell(f);
		fseek(f, 0, SEEK_SET);
		buf = malloc((size_t)n + 4);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
			*len = (size_t)n;
		fclose(f);
	}
	unlink(s_path);
	unlink(o_path);
	unlink(b_path);
	rmdir(dir);
	return buf;
}

/* Assemble src for cpu (code at 0) and create the machine (opts NULL: rules mode); asserts. */
static void sh_load(struct shell *s, const char *src, const char *cpu, int model,
                    const struct ms_infer_opts *opts)
{
	struct ms_infer_opts none = {0};
	struct ms_err e;
	size_t len = 0;
	uint8_t *bin = sh_asm(src, cpu, &len);

	assert_non_null(bin);
	assert_int_equal(sh_init(s, model, bin, len, 0, opts != NULL ? opts : &none, &e), 0);
	free(bin);
}

#endif
