/*
 * machine: the rehost engine's core — Unicorn set-up, memory map, the run
 * loop with its virtual clock, and the Unicorn hooks (see machine.h).
 *
 * Threads: everything here runs on the machine's owner thread except
 * ms_rh_machine_input_push (m->in_lock guards the input queue) and
 * ms_rh_machine_request_stop (an atomic flag read by the block hook).
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "infer/infer.h"
#include "infer/locate.h"
#include "rehost/coverage.h"
#include "rehost/gdb.h"
#include "rehost/machine.h"

/* Lazily mapped memory is created in chunks of this size, at most this much in total. */
#define LAZY_CHUNK 0x10000u
#define LAZY_MAX (256u << 20)
#define BBC_BITS 13

static bool in_periph_window(uint32_t a)
{
	return (a >= 0x40000000u && a < 0x60000000u) || a >= 0xe0000000u ||
	    (a >= 0xa0000000u && a < 0xa0001000u);
}

/* ---- memory map ---- */

static struct ms_rh_region *find_region(struct ms_rh_machine *m, uint32_t addr)
{
	int i;

	for (i = 0; i < m->n_regions; i++) {
		struct ms_rh_region *r = &m->regions[i];

		if (addr >= r->base && addr - r->base < r->size)
			return r;
	}
	return NULL;
}

static bool overlaps(struct ms_rh_machine *m, uint32_t base, uint32_t size)
{
	int i;

	for (i = 0; i < m->n_regions; i++) {
		struct ms_rh_region *r = &m->regions[i];

		if ((uint64_t)base < (uint64_t)r->base + r->size &&
		    (uint64_t)r->base < (uint64_t)base + size)
			return true;
	}
	for (i = 0; i < m->n_devs; i++) {
		struct ms_rh_dev *d = &m->devs[i];

		if ((uint64_t)base < (uint64_t)d->base + d->size &&
		    (uint64_t)d->base < (uint64_t)base + size)
			return true;
	}
	return false;
}

static int add_region(struct ms_rh_machine *m, const char *name, uint32_t base, uint32_t size,
                      bool readonly, int alias_of, bool lazy, struct ms_err *e)
{
	struct ms_rh_region *r;
	uint32_t prot = readonly ? (UC_PROT_READ | UC_PROT_EXEC) : UC_PROT_ALL;
	uc_err err;

	if (m->n_regions >= MS_RH_MAX_REGIONS)
		return ms_fail(e, 400, "bad_memory_map", "more than %d memory regions",
		               MS_RH_MAX_REGIONS);
	if (size == 0 || (base & 0xfff) || (size & 0xfff) || (uint64_t)base + size > 0x100000000ull)
		return ms_fail(e, 400, "bad_memory_map",
		               "region %s: base and size must be 4 KiB multiples inside 4 GiB",
		               name);
	if (overlaps(m, base, size))
		return ms_fail(e, 400, "bad_memory_map", "region %s at 0x%08x overlaps another",
		               name, base);
	r = &m->regions[m->n_regions];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->base = base;
	r->size = size;
	r->readonly = readonly;
	r->lazy = lazy;
	r->alias_of = alias_of;
	if (alias_of >= 0) {
		r->host = m->regions[alias_of].host;
	} else {
		/*
		 * Anonymous mappings: untouched pages cost nothing, and reset gives
		 * them back with MADV_DONTNEED instead of writing zeros.
		 */
		r->host = mmap(NULL, size, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (r->host == MAP_FAILED) {
			r->host = NULL;
			return ms_fail(e, 500, "internal", "out of memory for region %s", name);
		}
	}
	err = uc_mem_map_ptr(m->uc, base, size, prot, r->host);
	if (err != UC_ERR_OK) {
		if (alias_of < 0)
			munmap(r->host, size);
		return ms_fail(e, 500, "emulator_failed", "cannot map %s at 0x%08x: %s", name, base,
		               uc_strerror(err));
	}
	m->n_regions++;
	return 0;
}

/*
 * Copy between buf and guest memory at addr (to_guest: into the guest),
 * across adjacent regions; -EFAULT when a byte is in no region.
 */
static int mem_copy(struct ms_rh_machine *m, uint32_t addr, uint8_t *buf, size_t len, bool to_guest)
{
	while (len > 0) {
		struct ms_rh_region *r = find_region(m, addr);
		uint8_t *host;
		size_t n;

		if (r == NULL)
			return -EFAULT;
		n = r->size - (addr - r->base);
		if (n > len)
			n = len;
		host = r->host + (addr - r->base);
		memcpy(to_guest ? host : buf, to_guest ? buf : host, n);
		buf += n;
		addr += (uint32_t)n;
		len -= n;
		if (len > 0 && addr == 0)
			return -EFAULT;
	}
	return 0;
}

int ms_rh_mem_read(struct ms_rh_machine *m, uint32_t addr, void *buf, size_t len)
{
	return mem_copy(m, addr, buf, len, false);
}

int ms_rh_mem_write(struct ms_rh_machine *m, uint32_t addr, const void *buf, size_t len)
{
	/* mem_copy only reads buf when copying into the guest. */
	int rc = mem_copy(m, addr, (uint8_t *)(uintptr_t)buf, len, true);

	/* Code may have been written (debugger, loader): drop stale translations. */
	if (rc == 0 && m->ran)
		uc_ctl_remove_cache(m->uc, addr, (uint64_t)addr + len);
	return rc;
}

void ms__rh_zero(uint8_t *host, size_t size)
{
	/* Page-aligned mmap memory: dropping the pages is zeroing them. */
	if (madvise(host, size, MADV_DONTNEED) != 0)
		memset(host, 0, size);
}

/*
 * Drop every cached translation, so that new code hooks (breakpoints) and
 * rewritten memory take effect. Unicorn's TB_FLUSH would do it too, but in
 * 2.0.1 it clears the whole 1 GiB code buffer (seconds of page faults and
 * a 1 GiB resident set), so we invalidate our regions' ranges instead.
 */
void ms__rh_flush_code(struct ms_rh_machine *m)
{
	int i;

	for (i = 0; i < m->n_regions; i++)
		uc_ctl_remove_cache(m->uc, m->regions[i].base,
		                    (uint64_t)m->regions[i].base + m->regions[i].size);
}

/* ---- instruction counting per block ---- */

static uint16_t count_insns(struct ms_rh_machine *m, uint32_t addr, uint32_t size)
{
	struct ms_rh_region *r = find_region(m, addr);
	uint32_t off = 0;
	uint16_t n = 0;

	if (r == NULL || addr - r->base + (uint64_t)size > r->size)
		return (uint16_t)(size / 2 > 0 ? size / 2 : 1);
	while (off + 1 < size) {
		const uint8_t *p = r->host + (addr - r->base) + off;
		uint16_t hw = (uint16_t)(p[0] | (p[1] << 8));

		off += ((hw >> 11) >= 0x1d) ? 4 : 2;
		n++;
	}
	return n > 0 ? n : 1;
}

/*
 * Everything that is not needed on every block: stopping at a deadline or
 * for a pending interrupt, and first-time work on a block. Kept out of
 * hook_block so that its common path stays a handful of instructions.
 */
static bool block_stop(struct ms_rh_machine *m)
{
	bool stop = m->icount >= m->deadline || m->stop_request;

	if (!stop && m->scs.any_pending)
		stop = ms__rh_pending_takeable(m);
	if (!stop)
		m->attention = m->scs.any_pending;
	return stop;
}

static void block_fill(struct ms_rh_machine *m, struct ms_rh_bbc *c, uint32_t a, uint32_t size)
{
	c->addr = a;
	c->size = (uint16_t)size;
	c->n = count_insns(m, a, size);
	c->infer_work = m->inf != NULL && ms_infer_block_has_work(m->inf, a, size);
	c->cov_epoch = 0;
}

/*
 * Called by Unicorn before every translated block runs: the engine's only
 * per-block cost (the instruction count is virtual time), so the common
 * path is a cache hit, two stores for the inference module and an add.
 * With Unicorn 2.1.1 this hook is most of the difference to QEMU's own
 * speed (docs/PERFORMANCE.md).
 */
static void hook_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	struct ms_rh_machine *m = ud;
	struct ms_rh_bbc *c;
	uint32_t a = (uint32_t)addr;

	if (__builtin_expect(m->icount >= m->deadline || m->attention, 0) && block_stop(m)) {
		m->hook_stopped = true;
		uc_emu_stop(uc);
		return;
	}
	c = &m->bbc[(a >> 1) & m->bbc_mask];
	if (__builtin_expect(c->addr != a || c->size != size || c->n == 0, 0))
		block_fill(m, c, a, size);
	if (__builtin_expect(c->infer_work, 0)) {
		m->icount += ms_infer_on_block(m->inf, addr, size);
	} else if (m->cur_block != NULL) {
		m->cur_block->pc = a;
		m->cur_block->serial++;
	}
	m->icount += c->n;
	if (__builtin_expect(m->cov != NULL, 0) && c->cov_epoch != m->cov_epoch) {
		/* First execution since coverage started (or since this cache slot was reused). */
		ms_rh_cov_block_sized(m->cov, a, size);
		c->cov_epoch = m->cov_epoch;
	}
}

void ms_rh_machine_cov_attach(struct ms_rh_machine *m, struct ms_rh_cov *cov)
{
	m->cov = cov;
	/* A new epoch: every block is recorded again on its next execution. */
	if (++m->cov_epoch == 0)
		m->cov_epoch = 1;
}

/* ---- unmapped accesses: inference, lazy memory, or a fault ---- */

static uint32_t lazy_total(struct ms_rh_machine *m)
{
	uint32_t t = 0;
	int i;

	for (i = 0; i < m->n_regions; i++)
		if (m->regions[i].lazy)
			t += m->regions[i].size;
	return t;
}

static bool map_lazy(struct ms_rh_machine *m, uint32_t addr)
{
	uint32_t base = addr & ~(LAZY_CHUNK - 1);
	uint32_t size = LAZY_CHUNK;
	char name[32];
	int i;

	/* Shrink the chunk so that it stays in the gap between existing regions. */
	for (i = 0; i < m->n_regions; i++) {
		struct ms_rh_region *r = &m->regions[i];

		if (r->base > addr && r->base < base + size)
			size = r->base - base;
		if (r->base + r->size <= addr && r->base + r->size > base) {
			size -= r->base + r->size - base;
			base = r->base + r->size;
		}
	}
	base &= ~0xfffu;
	if (size == 0 || lazy_total(m) + size > LAZY_MAX)
		return false;
	snprintf(name, sizeof(name), "lazy@%08x", base);
	if (add_region(m, name, base, size & ~0xfffu, false, -1, true, NULL) != 0)
		return false;
	if (m->event != NULL) {
		json_t *ev =
		    json_pack("{s:s, s:I, s:I, s:I}", "kind", "memory", "base", (json_int_t)base,
		              "size", (json_int_t)(size & ~0xfffu), "pc", (json_int_t)ms__rh_pc(m));

		m->event(m->ud, "rehost.lazy_memory", ev);
		json_decref(ev);
	}
	return true;
}

static bool hook_unmapped(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value,
                          void *ud)
{
	struct ms_rh_machine *m = ud;
	uint32_t a = (uint32_t)addr;

	m->fault_addr = a;
	if (type == UC_MEM_FETCH_UNMAPPED)
		return false;
	if (in_periph_window(a) || (m->inf != NULL && ms_infer_is_peripheral_addr(addr))) {
		if (m->inf != NULL && ms_infer_on_unmapped(m->inf, type, addr, size, value))
			return true;
		return false;
	}
	return map_lazy(m, a);
}

static bool hook_prot(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value,
                      void *ud)
{
	((struct ms_rh_machine *)ud)->fault_addr = (uint32_t)addr;
	return false;
}

static void hook_intr(uc_engine *uc, uint32_t intno, void *ud)
{
	ms__rh_on_intr(ud, intno);
}

/* ---- host side helpers ---- */

/*
 * Read a system register (MSP, PSP, PRIMASK, BASEPRI, FAULTMASK). Unicorn
 * reads them through QEMU's MRS helper, which returns 0 to unprivileged
 * code; when the core is in unprivileged thread mode we step into handler
 * mode (privileged) for the read and back, which leaves every register as
 * it was.
 */
uint32_t ms__rh_sysreg(struct ms_rh_machine *m, int reg)
{
	uint32_t xpsr = 0, ctl = 0, v = 0, h;

	uc_reg_read(m->uc, UC_ARM_REG_CONTROL, &ctl);
	uc_reg_read(m->uc, UC_ARM_REG_XPSR, &xpsr);
	if ((xpsr & 0x1ff) != 0 || !(ctl & 1)) {
		uc_reg_read(m->uc, reg, &v);
		return v;
	}
	h = xpsr | 3;
	uc_reg_write(m->uc, UC_ARM_REG_XPSR, &h);
	uc_reg_read(m->uc, reg, &v);
	uc_reg_write(m->uc, UC_ARM_REG_XPSR, &xpsr);
	return v;
}

uint32_t ms__rh_pc(struct ms_rh_machine *m)
{
	uint32_t pc = 0;

	uc_reg_read(m->uc, UC_ARM_REG_PC, &pc);
	return pc;
}

uint64_t ms_rh_machine_now_ns(struct ms_rh_machine *m)
{
	return (uint64_t)((unsigned __int128)m->icount * 1000000000u / m->cpu_hz);
}

static uint64_t ns_to_icount(struct ms_rh_machine *m, uint64_t ns)
{
	unsigned __int128 v = (unsigned __int128)ns * m->cpu_hz + 999999999u;

	v /= 1000000000u;
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

void ms__rh_console_out(struct ms_rh_machine *m, const uint8_t *b, size_t n)
{
	if (m->console != NULL)
		m->console(m->ud, b, n);
}

static const char *dev_name(struct ms_rh_machine *m, uint32_t addr)
{
	int i;

	if (addr >= 0xe000e000u && addr < 0xe000f000u)
		return "scs";
	for (i = 0; i < m->n_devs; i++)
		if (addr >= m->devs[i].base && addr - m->devs[i].base < m->devs[i].size)
			return m->devs[i].name;
	return "inferred";
}

/*
 * The MMIO log is written from memory hooks on the peripheral windows,
 * which exist only while a log is open. Unicorn (2.0.1 and 2.1.1 alike)
 * does not keep the PC exact inside memory hooks (it is the block's
 * start), so the instruction is found by walking the current block
 * (infer/locate.h): an instruction hook would slow every instruction ~3x.
 */
static void hook_mmio(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value,
                      void *ud)
{
	struct ms_rh_machine *m = ud;
	uint32_t pc;

	if (m->mmio_log == NULL || find_region(m, (uint32_t)addr) != NULL)
		return;
	pc = m->loc != NULL && m->cur_block != NULL
	    ? ms_infer_locate(m->loc, m->cur_block, type == UC_MEM_WRITE, (uint32_t)addr,
	                      (unsigned)size)
	    : ms__rh_pc(m);
	fprintf(m->mmio_log,
	        "{\"type\":\"mmio\",\"icount\":%" PRIu64 ",\"pc\":\"0x%08x\",\"addr\":\"0x%08x\","
	        "\"size\":%d,\"dir\":\"%s\",\"value\":\"0x%" PRIx64 "\",\"dev\":\"%s\"}\n",
	        m->icount, pc, (uint32_t)addr, size, type == UC_MEM_WRITE ? "w" : "r",
	        (uint64_t)value & (size >= 8 ? UINT64_MAX : (((uint64_t)1 << (8 * size)) - 1)),
	        dev_name(m, (uint32_t)addr));
}

void ms_rh_machine_regs_text(struct ms_rh_machine *m, char *buf, size_t cap)
{
	static const int regs[] = {
	    UC_ARM_REG_R0,     UC_ARM_REG_R1,   UC_ARM_REG_R2,  UC_ARM_REG_R3,  UC_ARM_REG_R4,
	    UC_ARM_REG_R5,     UC_ARM_REG_R6,   UC_ARM_REG_R7,  UC_ARM_REG_R8,  UC_ARM_REG_R9,
	    UC_ARM_REG_R10,    UC_ARM_REG_R11,  UC_ARM_REG_R12, UC_ARM_REG_SP,  UC_ARM_REG_LR,
	    UC_ARM_REG_PC,     UC_ARM_REG_XPSR, UC_ARM_REG_MSP, UC_ARM_REG_PSP, UC_ARM_REG_CONTROL,
	    UC_ARM_REG_PRIMASK};
	static const char *const names[] = {"r0", "r1", "r2",   "r3",  "r4",  "r5",      "r6",
	                                    "r7", "r8", "r9",   "r10", "r11", "r12",     "sp",
	                                    "lr", "pc", "xpsr", "msp", "psp", "control", "primask"};
	size_t i, off = 0;

	buf[0] = 0;
	for (i = 0; i < sizeof(regs) / sizeof(regs[0]) && off < cap; i++) {
		uint32_t v = 0;
		int n;

		if (regs[i] == UC_ARM_REG_MSP || regs[i] == UC_ARM_REG_PSP ||
		    regs[i] == UC_ARM_REG_PRIMASK)
			v = ms__rh_sysreg(m, regs[i]);
		else
			uc_reg_read(m->uc, regs[i], &v);
		n = snprintf(buf + off, cap - off, "%s%s=0x%08x", i ? " " : "", names[i], v);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (off < cap)
		snprintf(buf + off, cap - off, " cfsr=0x%08x hfsr=0x%08x bfar=0x%08x", m->scs.cfsr,
		         m->scs.hfsr, m->scs.bfar);
}

/* ---- input queue ---- */

void ms_rh_machine_input_push(struct ms_rh_machine *m, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t i;

	pthread_mutex_lock(&m->in_lock);
	if (m->in_len + len > m->in_cap) {
		size_t cap = m->in_cap ? m->in_cap : 256;
		uint8_t *nb;

		while (cap < m->in_len + len)
			cap *= 2;
		nb = malloc(cap);
		if (nb == NULL) {
			pthread_mutex_unlock(&m->in_lock);
			return;
		}
		for (i = 0; i < m->in_len; i++)
			nb[i] = m->in_buf[(m->in_head + i) % m->in_cap];
		free(m->in_buf);
		m->in_buf = nb;
		m->in_cap = cap;
		m->in_head = 0;
	}
	for (i = 0; i < len; i++)
		m->in_buf[(m->in_head + m->in_len + i) % m->in_cap] = p[i];
	m->in_len += len;
	pthread_mutex_unlock(&m->in_lock);
}

size_t ms_rh_machine_input_avail(struct ms_rh_machine *m)
{
	size_t n;

	pthread_mutex_lock(&m->in_lock);
	n = m->in_len;
	pthread_mutex_unlock(&m->in_lock);
	return n;
}

int ms_rh_machine_input_get(struct ms_rh_machine *m)
{
	int c = -1;

	pthread_mutex_lock(&m->in_lock);
	if (m->in_len > 0) {
		c = m->in_buf[m->in_head];
		m->in_head = (m->in_head + 1) % m->in_cap;
		m->in_len--;
	}
	pthread_mutex_unlock(&m->in_lock);
	return c;
}

void ms_rh_machine_request_stop(struct ms_rh_machine *m)
{
	__atomic_store_n(&m->stop_request, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&m->attention, 1, __ATOMIC_SEQ_CST);
}

/* ---- inference host callbacks ---- */

static void inf_console(void *ud, const uint8_t *b, size_t n)
{
	ms__rh_console_out(ud, b, n);
}

static size_t inf_input_avail(void *ud)
{
	return ms_rh_machine_input_avail(ud);
}

static int inf_input_get(void *ud)
{
	return ms_rh_machine_input_get(ud);
}

static void inf_irq_set_pending(void *ud, int irq)
{
	ms__rh_irq_pulse(ud, irq);
}

static bool inf_irq_enabled(void *ud, int irq)
{
	struct ms_rh_machine *m = ud;

	return irq >= 0 && (uint32_t)irq < m->nirq && m->scs.enabled[16 + irq];
}

static uint32_t inf_vtor(void *ud)
{
	return ((struct ms_rh_machine *)ud)->scs.vtor;
}

static uint64_t inf_now_ns(void *ud)
{
	return ms_rh_machine_now_ns(ud);
}

static void inf_event(void *ud, const char *type, json_t *data)
{
	struct ms_rh_machine *m = ud;

	if (m->mmio_log != NULL) {
		json_t *o = json_deep_copy(data);
		char *s;

		if (o == NULL)
			o = json_object();
		json_object_set_new(o, "type", json_string(type));
		s = json_dumps(o, JSON_COMPACT);
		if (s != NULL)
			fprintf(m->mmio_log, "%s\n", s);
		free(s);
		json_decref(o);
	}
	if (m->event != NULL)
		m->event(m->ud, type, data);
}

/* ---- creation ---- */

static int setup_board(struct ms_rh_machine *m, const struct ms_rh_opts *o, struct ms_err *e)
{
	int rc, i;

	if (o->board != NULL && o->board[0] != 0) {
		if ((rc = ms_rh_board_load(o->board, &m->board, e)) != 0)
			return rc;
	} else {
		memset(&m->board, 0, sizeof(m->board));
		snprintf(m->board.cpu, sizeof(m->board.cpu), "%s",
		         o->cpu != NULL && o->cpu[0] ? o->cpu : "cortex-m3");
		m->board.cpu_hz = 25000000;
		m->board.irqs = MS_RH_MAX_IRQ;
	}
	if (o->cpu != NULL && o->cpu[0] != 0)
		snprintf(m->board.cpu, sizeof(m->board.cpu), "%s", o->cpu);
	m->cpu_model = ms_rh_cpu_model(m->board.cpu, &m->has_fpu, &m->v6m);
	if (m->cpu_model < 0)
		return ms_fail(e, 400, "unknown_cpu", "unknown cpu %s (rehost emulates %s)",
		               m->board.cpu, "cortex-m0, m0plus, m3, m4, m7, m33");
	m->cpu_hz = o->cpu_hz ? o->cpu_hz : m->board.cpu_hz;
	m->nirq = m->board.irqs;
	(void)i;
	return 0;
}

static int map_board(struct ms_rh_machine *m, const struct ms_rh_opts *o, struct ms_err *e)
{
	size_t i;
	int j, k, rc;

	for (j = 0; j < m->board.n_mem; j++) {
		const struct ms_rh_board_mem *bm = &m->board.mem[j];
		int alias = -1;

		if (bm->alias[0] != 0) {
			for (k = 0; k < m->n_regions; k++)
				if (strcmp(m->regions[k].name, bm->alias) == 0)
					alias = k;
			if (alias < 0)
				return ms_fail(e, 400, "bad_board", "alias of unknown region %s",
				               bm->alias);
		}
		rc = add_region(m, bm->name, bm->base, bm->size, bm->readonly, alias, false, e);
		if (rc != 0)
			return rc;
	}
	if (o->memory_map != NULL) {
		json_t *it;

		if (!json_is_array(o->memory_map))
			return ms_fail(e, 400, "bad_memory_map", "memory_map must be an array");
		json_array_foreach(o->memory_map, i, it)
		{
			json_t *b = json_object_get(it, "base"), *s = json_object_get(it, "size");
			const char *name = json_string_value(json_object_get(it, "name"));

			if (!json_is_integer(b) || !json_is_integer(s) ||
			    json_integer_value(b) < 0 || json_integer_value(s) <= 0 ||
			    json_integer_value(b) + json_integer_value(s) > 0x100000000ll)
				return ms_fail(
				    e, 400, "bad_memory_map",
				    "memory_map[%zu]: base and size must be integers inside "
				    "4 GiB",
				    i);
			rc =
			    add_region(m, name ? name : "mem", (uint32_t)json_integer_value(b),
			               (uint32_t)json_integer_value(s),
			               json_is_true(json_object_get(it, "readonly")), -1, false, e);
			if (rc != 0)
				return rc;
		}
	}
	for (j = 0; j < m->board.n_dev; j++)
		if ((rc = ms__rh_dev_create(m, &m->board.dev[j], e)) != 0)
			return rc;
	return 0;
}

int ms_rh_machine_new(const struct ms_rh_opts *o, struct ms_rh_machine **out, struct ms_err *e)
{
	struct ms_rh_machine *m;
	uc_err err;
	int rc;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return ms_fail(e, 500, "internal", "out of memory");
	pthread_mutex_init(&m->in_lock, NULL);
	m->console = o->console;
	m->event = o->event;
	m->ud = o->ud;
	m->mmio_log = o->mmio_log;
	if ((rc = setup_board(m, o, e)) != 0)
		goto fail;
	err = uc_open(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, &m->uc);
	if (err != UC_ERR_OK) {
		rc = ms_fail(e, 500, "emulator_failed", "unicorn: %s", uc_strerror(err));
		goto fail;
	}
	err = uc_ctl_set_cpu_model(m->uc, m->cpu_model);
	if (err != UC_ERR_OK) {
		rc = ms_fail(e, 500, "emulator_failed", "unicorn cpu model: %s", uc_strerror(err));
		goto fail;
	}
	m->bbc_mask = (1u << BBC_BITS) - 1;
	m->bbc = calloc((size_t)m->bbc_mask + 1, sizeof(*m->bbc));
	if (m->bbc == NULL) {
		rc = ms_fail(e, 500, "internal", "out of memory");
		goto fail;
	}
	if ((rc = ms__rh_scs_map(m)) != 0) {
		rc = ms_fail(e, 500, "emulator_failed", "cannot map the system control space");
		goto fail;
	}
	if ((rc = map_board(m, o, e)) != 0)
		goto fail;
	uc_hook_add(m->uc, &m->h_block, UC_HOOK_BLOCK, (void *)hook_block, m, 1, 0);
	uc_hook_add(m->uc, &m->h_intr, UC_HOOK_INTR, (void *)hook_intr, m, 1, 0);
	uc_hook_add(m->uc, &m->h_unmapped, UC_HOOK_MEM_UNMAPPED, (void *)hook_unmapped, m, 1, 0);
	uc_hook_add(m->uc, &m->h_insn_invalid, UC_HOOK_MEM_PROT, (void *)hook_prot, m, 1, 0);
	if (m->mmio_log != NULL) {
		static const uint64_t win[][2] = {{0x40000000u, 0x5fffffffu},
		                                  {0xa0000000u, 0xbfffffffu},
		                                  {0xe0000000u, 0xffffffffu}};
		uc_hook h;
		size_t w;

		m->loc = ms_infer_locator_new(m->uc);
		if (m->loc == NULL) {
			rc =
			    ms_fail(e, 500, "internal", "cannot start the MMIO log's disassembler");
			goto fail;
		}
		for (w = 0; w < 3; w++) {
			uc_hook_add(m->uc, &h, UC_HOOK_MEM_READ_AFTER, (void *)hook_mmio, m,
			            win[w][0], win[w][1]);
			uc_hook_add(m->uc, &h, UC_HOOK_MEM_WRITE, (void *)hook_mmio, m, win[w][0],
			            win[w][1]);
		}
	}
	if (!o->no_infer) {
		struct ms_infer_host host = {
		    .ud = m,
		    .console_out = inf_console,
		    .input_avail = inf_input_avail,
		    .input_get = inf_input_get,
		    .irq_set_pending = inf_irq_set_pending,
		    .irq_enabled = inf_irq_enabled,
		    .vtor = inf_vtor,
		    .now_ns = inf_now_ns,
		    .event = inf_event,
		};
		struct ms_infer_opts io = {
		    .mode = o->n_svd > 0 ? MS_INFER_SVD : MS_INFER_RULES,
		    .svd_paths = o->svd_paths,
		    .n_svd = o->n_svd,
		    .models_path = o->models_path,
		    .firmware_hash = o->firmware_hash,
		    .cpu_hz = m->cpu_hz,
		};

		m->inf = ms_infer_new(m->uc, &host, &io, e);
		if (m->inf == NULL) {
			rc = e != NULL && e->status ? -1
			                            : ms_fail(e, 500, "internal", "infer failed");
			goto fail;
		}
		m->cur_block = ms_infer_block_slot(m->inf);
	}
	if (m->cur_block == NULL && m->mmio_log != NULL)
		m->cur_block = &m->own_block;
	ms__rh_scs_reset(m);
	*out = m;
	return 0;
fail:
	ms_rh_machine_free(m);
	return rc < 0 ? rc : MS_EBADINPUT;
}

void ms_rh_machine_free(struct ms_rh_machine *m)
{
	int i;

	if (m == NULL)
		return;
	if (m->gdb != NULL)
		ms_rh_gdb_free(m->gdb);
	if (m->inf != NULL)
		ms_infer_free(m->inf);
	ms_infer_locator_free(m->loc);
	if (m->cov != NULL)
		ms_rh_cov_free(m->cov);
	if (m->uc != NULL)
		uc_close(m->uc);
	for (i = 0; i < m->n_regions; i++)
		if (m->regions[i].alias_of < 0 && m->regions[i].host != NULL)
			munmap(m->regions[i].host, m->regions[i].size);
	for (i = 0; i < m->n_devs; i++)
		free(m->devs[i].state);
	if (m->has_image)
		ms_image_free(&m->image);
	free(m->bbc);
	free(m->in_buf);
	pthread_mutex_destroy(&m->in_lock);
	free(m);
}

/* ---- loading and reset ---- */

static int copy_image(struct ms_image *dst, const struct ms_image *src)
{
	size_t i;

	*dst = *src;
	dst->segs = calloc(src->n_segs ? src->n_segs : 1, sizeof(*dst->segs));
	if (dst->segs == NULL)
		return -ENOMEM;
	for (i = 0; i < src->n_segs; i++) {
		dst->segs[i] = src->segs[i];
		dst->segs[i].data = malloc(src->segs[i].filesz ? src->segs[i].filesz : 1);
		if (dst->segs[i].data == NULL) {
			dst->n_segs = i;
			ms_image_free(dst);
			return -ENOMEM;
		}
		if (src->segs[i].filesz > 0)
			memcpy(dst->segs[i].data, src->segs[i].data, src->segs[i].filesz);
	}
	return 0;
}

/* Make sure [a, a+len) is backed by regions, creating them from the image when needed. */
static int ensure_mapped(struct ms_rh_machine *m, uint32_t a, uint64_t len, bool exec,
                         struct ms_err *e)
{
	uint64_t end = (uint64_t)a + len;
	uint64_t p = a;

	while (p < end) {
		struct ms_rh_region *r = find_region(m, (uint32_t)p);
		uint32_t base, size;
		char name[32];
		int i, rc;

		if (r != NULL) {
			p = (uint64_t)r->base + r->size;
			continue;
		}
		base = (uint32_t)p & ~0xfffu;
		size = (uint32_t)(((end + 0xfff) & ~0xfffull) - base);
		/* Stop at the next region. */
		for (i = 0; i < m->n_regions; i++)
			if (m->regions[i].base > base && m->regions[i].base < (uint64_t)base + size)
				size = m->regions[i].base - base;
		snprintf(name, sizeof(name), "%s@%08x", exec ? "flash" : "ram", base);
		if ((rc = add_region(m, name, base, size, false, -1, false, e)) != 0)
			return rc;
		p = (uint64_t)base + size;
	}
	return 0;
}

int ms_rh_machine_load(struct ms_rh_machine *m, const struct ms_image *img, struct ms_err *e)
{
	struct ms_image copy;
	size_t i;
	int rc;

	if (img->format == MS_IMAGE_ELF &&
	    (img->elf_class != 32 || strcmp(img->arch, "arm") != 0 || img->big_endian))
		return ms_fail(e, 400, "bad_image",
		               "rehost runs 32-bit little-endian ARM images, not %s (class %d)",
		               img->arch[0] ? img->arch : "unknown", img->elf_class);
	if (img->n_segs == 0)
		return ms_fail(e, 400, "bad_image", "image has nothing to load");
	for (i = 0; i < img->n_segs; i++) {
		const struct ms_image_segment *s = &img->segs[i];

		if (s->memsz == 0)
			continue;
		if (s->addr + s->memsz > 0x100000000ull)
			return ms_fail(e, 400, "bad_image", "segment at 0x%" PRIx64 " beyond 4 GiB",
			               s->addr);
		if (in_periph_window((uint32_t)s->addr))
			return ms_fail(e, 400, "bad_image",
			               "segment at 0x%08" PRIx64 " lies in a peripheral window",
			               s->addr);
		if ((rc = ensure_mapped(m, (uint32_t)s->addr, s->memsz, (s->flags & 1) != 0, e)) !=
		    0)
			return rc;
	}
	if (copy_image(&copy, img) != 0)
		return ms_fail(e, 500, "internal", "out of memory");
	if (m->has_image)
		ms_image_free(&m->image);
	m->image = copy;
	m->has_image = true;
	/* The vector table is the lowest-addressed loaded segment (VTOR starts there). */
	m->boot_vtor = UINT32_MAX;
	for (i = 0; i < img->n_segs; i++)
		if (img->segs[i].filesz >= 8 && img->segs[i].addr < m->boot_vtor)
			m->boot_vtor = (uint32_t)img->segs[i].addr;
	if (m->boot_vtor == UINT32_MAX)
		return ms_fail(e, 400, "bad_image", "no segment holds a vector table");
	/* A board that boots through an alias at 0 (STM32) keeps VTOR at 0. */
	if (m->boot_vtor != 0 && find_region(m, 0) != NULL) {
		struct ms_rh_region *z = find_region(m, 0), *v = find_region(m, m->boot_vtor);

		if (z != NULL && v != NULL && z->host == v->host)
			m->boot_vtor = 0;
	}
	return ms_rh_machine_reset(m, e);
}

int ms_rh_machine_reset(struct ms_rh_machine *m, struct ms_err *e)
{
	uint32_t sp, pc, thumb, zero = 0;
	int i;
	size_t s;

	if (!m->has_image)
		return ms_fail(e, 409, "no_program", "no program loaded");
	for (i = 0; i < m->n_regions; i++)
		if (m->regions[i].alias_of < 0)
			ms__rh_zero(m->regions[i].host, m->regions[i].size);
	for (s = 0; s < m->image.n_segs; s++) {
		const struct ms_image_segment *seg = &m->image.segs[s];

		if (seg->filesz > 0 &&
		    ms_rh_mem_write(m, (uint32_t)seg->addr, seg->data, seg->filesz) != 0)
			return ms_fail(e, 500, "internal", "segment at 0x%08x not mapped",
			               (uint32_t)seg->addr);
	}
	/* Nothing was translated before the first run: no cache to drop then. */
	if (m->ran)
		ms__rh_flush_code(m);
	for (i = 0; i < m->n_devs; i++)
		if (m->devs[i].reset != NULL)
			m->devs[i].reset(&m->devs[i]);
	if (m->inf != NULL)
		ms_infer_reset(m->inf);
	ms__rh_scs_reset(m);
	m->scs.vtor = m->boot_vtor;
	/* Virtual time is monotonic across resets (a warm reset does not stop the clock). */
	m->locked_up = false;
	m->sleeping = false;
	m->crash[0] = 0;
	m->halted_for_debug = false;
	/* CPU registers: zero, then handler mode off, MSP selected, SP and PC from the vectors. */
	uc_reg_write(m->uc, UC_ARM_REG_XPSR, &zero);
	uc_reg_write(m->uc, UC_ARM_REG_CONTROL, &zero);
	uc_reg_write(m->uc, UC_ARM_REG_PRIMASK, &zero);
	if (!m->v6m) {
		uc_reg_write(m->uc, UC_ARM_REG_BASEPRI, &zero);
		uc_reg_write(m->uc, UC_ARM_REG_FAULTMASK, &zero);
	}
	for (i = UC_ARM_REG_R0; i <= UC_ARM_REG_R12; i++)
		uc_reg_write(m->uc, i, &zero);
	uc_reg_write(m->uc, UC_ARM_REG_PSP, &zero);
	if (ms_rh_mem_read(m, m->scs.vtor, &sp, 4) != 0 ||
	    ms_rh_mem_read(m, m->scs.vtor + 4, &pc, 4) != 0)
		return ms_fail(e, 400, "bad_image", "no vector table at 0x%08x", m->scs.vtor);
	uc_reg_write(m->uc, UC_ARM_REG_MSP, &sp);
	uc_reg_write(m->uc, UC_ARM_REG_SP, &sp);
	{
		uint32_t lr = 0xffffffff, xpsr = 0x01000000;

		uc_reg_write(m->uc, UC_ARM_REG_LR, &lr);
		uc_reg_write(m->uc, UC_ARM_REG_XPSR, &xpsr);
	}
	thumb = pc & 1;
	pc |= 1;
	uc_reg_write(m->uc, UC_ARM_REG_PC, &pc);
	if (find_region(m, pc & ~1u) == NULL) {
		char why[160];

		/*
		 * The architecture would take a HardFault on the first fetch; but
		 * any address may be mapped lazily here, so say it plainly instead
		 * of running zeros.
		 */
		snprintf(why, sizeof(why), "reset vector 0x%08x points outside memory", pc);
		ms__rh_lockup(m, why);
	} else if (!thumb) {
		/*
		 * EPSR.T clear: the first instruction raises INVSTATE, which
		 * escalates to HardFault (UsageFault is disabled at reset); the
		 * HardFault vector then decides, and a lockup follows if it is
		 * bad too.
		 */
		ms__rh_fault(m, 6, 1u << 17, false, 0);
	}
	return 0;
}

/* ---- the run loop ---- */

static uint64_t next_event(struct ms_rh_machine *m)
{
	uint64_t t = ms__rh_systick_next(m);
	int i;

	for (i = 0; i < m->n_devs; i++) {
		struct ms_rh_dev *d = &m->devs[i];

		if (d->next_event != NULL) {
			uint64_t n = d->next_event(d);

			if (n < t)
				t = n;
		}
	}
	if (m->inf != NULL) {
		uint64_t ns = ms_infer_next_event_ns(m->inf);

		if (ns != UINT64_MAX) {
			uint64_t n = ns_to_icount(m, ns);

			if (n < t)
				t = n;
		}
	}
	return t;
}

static void run_events(struct ms_rh_machine *m)
{
	int i, guard;

	for (guard = 0; guard < 64; guard++) {
		bool any = false;

		if (ms__rh_systick_next(m) <= m->icount) {
			ms__rh_systick_event(m);
			any = true;
		}
		for (i = 0; i < m->n_devs; i++) {
			struct ms_rh_dev *d = &m->devs[i];

			if (d->next_event != NULL && d->next_event(d) <= m->icount) {
				d->event(d);
				any = true;
			}
		}
		if (!any)
			break;
	}
	if (m->inf != NULL)
		ms_infer_tick(m->inf, ms_rh_machine_now_ns(m));
}

void ms__rh_recompute_deadline(struct ms_rh_machine *m)
{
	uint64_t t = next_event(m);

	m->deadline = t < m->slice_end ? t : m->slice_end;
}

void ms__rh_input_notify(struct ms_rh_machine *m)
{
	int i;

	for (i = 0; i < m->n_devs; i++)
		if (m->devs[i].input_ready != NULL)
			m->devs[i].input_ready(&m->devs[i]);
}

static uint16_t halfword_at(struct ms_rh_machine *m, uint32_t a)
{
	uint16_t hw = 0;

	if (ms_rh_mem_read(m, a, &hw, 2) != 0)
		return 0;
	return hw;
}

static bool after_wfi(struct ms_rh_machine *m, uint32_t pc)
{
	uint32_t w = 0;

	if (halfword_at(m, pc - 2) == 0xbf30)
		return true;
	return ms_rh_mem_read(m, pc - 4, &w, 4) == 0 && w == 0x8003f3afu;
}

static enum ms_rh_stop stop_with(struct ms_rh_machine *m, enum ms_rh_stop why)
{
	m->last_stop = why;
	return why;
}

static void fault_from_error(struct ms_rh_machine *m, uc_err err, uint32_t pc)
{
	switch (err) {
	case UC_ERR_READ_UNMAPPED:
	case UC_ERR_WRITE_UNMAPPED:
	case UC_ERR_WRITE_PROT:
	case UC_ERR_READ_PROT:
	case UC_ERR_READ_UNALIGNED:
	case UC_ERR_WRITE_UNALIGNED:
		/* BusFault, precise, BFAR valid. */
		ms__rh_fault(m, 5, 0x8200, true, m->fault_addr);
		break;
	case UC_ERR_FETCH_UNMAPPED:
	case UC_ERR_FETCH_PROT:
	case UC_ERR_FETCH_UNALIGNED:
		if (pc >= 0xe0000000u)
			ms__rh_fault(m, 4, 0x01, false, 0); /* MemManage IACCVIOL (XN) */
		else
			ms__rh_fault(m, 5, 0x0100, false, 0); /* BusFault IBUSERR */
		break;
	case UC_ERR_INSN_INVALID:
		ms__rh_fault(m, 6, 0x10000, false, 0); /* UsageFault UNDEFINSTR */
		break;
	case UC_ERR_EXCEPTION:
		ms__rh_fault(m, 6, 0x20000, false, 0); /* UsageFault INVSTATE */
		break;
	default: {
		char why[200];

		snprintf(why, sizeof(why), "unicorn stopped: %s", uc_strerror(err));
		ms__rh_lockup(m, why);
		break;
	}
	}
}

enum ms_rh_stop ms_rh_machine_run(struct ms_rh_machine *m, uint64_t max_insns)
{
	m->slice_end = max_insns > UINT64_MAX - m->icount ? UINT64_MAX : m->icount + max_insns;
	/* Input may have arrived from another thread since the last slice. */
	ms__rh_input_notify(m);
	for (;;) {
		uint32_t pc, start_pc;
		uc_err err;

		if (m->locked_up)
			return stop_with(m, MS_RH_STOP_LOCKUP);
		if (__atomic_exchange_n(&m->stop_request, 0, __ATOMIC_SEQ_CST))
			return stop_with(m, MS_RH_STOP_REQUEST);
		if (m->reset_request) {
			m->reset_request = false;
			m->sleeping = false;
			if (ms_rh_machine_reset(m, NULL) != 0)
				ms__rh_lockup(m, "reset failed");
			continue;
		}
		if (m->halted_for_debug) {
			m->halted_for_debug = false;
			return stop_with(m, MS_RH_STOP_BREAK);
		}
		run_events(m);
		if (ms__rh_take_pending(m))
			m->sleeping = false;
		if (m->locked_up)
			continue;
		if (m->icount >= m->slice_end)
			return stop_with(m, MS_RH_STOP_LIMIT);
		if (m->sleeping) {
			uint64_t t;

			if (ms__rh_wfi_wakes(m)) {
				m->sleeping = false;
				continue;
			}
			t = next_event(m);
			if (t == UINT64_MAX) {
				/* Nothing will ever happen without input: wait for the host. */
				m->attention = 1;
				return stop_with(m, MS_RH_STOP_IDLE);
			}
			m->icount = t < m->slice_end ? t : m->slice_end;
			continue;
		}
		ms__rh_recompute_deadline(m);
		m->attention = m->scs.any_pending;
		pc = start_pc = ms__rh_pc(m);
		m->ran = true;
		m->hook_stopped = false;
		err = uc_emu_start(m->uc, pc | 1, 0xffffffffu, 0, 0);
		pc = ms__rh_pc(m);
		if (err == UC_ERR_OK) {
			/* Unicorn also returns OK after WFI (the core halted): tell it from our stops. */
			if (!m->hook_stopped && !m->halted_for_debug && !m->locked_up &&
			    pc != start_pc && after_wfi(m, pc))
				m->sleeping = true;
			continue;
		}
		if (err == UC_ERR_INSN_INVALID && pc != start_pc) {
			uint16_t prev = halfword_at(m, pc - 2);

			/* WFE and YIELD stop Unicorn as invalid instructions, after them. */
			if (prev == 0xbf20) {
				if (m->scs.event_reg)
					m->scs.event_reg = false;
				else
					m->sleeping = true;
				continue;
			}
			if (prev == 0xbf10)
				continue;
		}
		fault_from_error(m, err, pc);
	}
}

json_t *ms_rh_machine_device_map(struct ms_rh_machine *m)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < m->n_regions; i++) {
		struct ms_rh_region *r = &m->regions[i];

		json_array_append_new(arr,
		                      json_pack("{s:s, s:I, s:I, s:s, s:b}", "name", r->name,
		                                "base", (json_int_t)r->base, "size",
		                                (json_int_t)r->size, "kind",
		                                r->alias_of >= 0  ? "alias"
		                                    : r->lazy     ? "lazy-memory"
		                                    : r->readonly ? "flash"
		                                                  : "memory",
		                                "readonly", r->readonly));
	}
	json_array_append_new(arr,
	                      json_pack("{s:s, s:I, s:I, s:s}", "name", "scs", "base",
	                                (json_int_t)0xe000e000, "size", (json_int_t)0x1000, "kind",
	                                "system"));
	for (i = 0; i < m->n_devs; i++) {
		struct ms_rh_dev *d = &m->devs[i];

		json_array_append_new(arr,
		                      json_pack("{s:s, s:I, s:I, s:s, s:s}", "name", d->name,
		                                "base", (json_int_t)d->base, "size",
		                                (json_int_t)d->size, "kind", "device", "type",
		                                d->type));
	}
	if (m->inf != NULL) {
		json_t *p = ms_infer_peripherals(m->inf);
		size_t k;
		json_t *it;

		json_array_foreach(p, k, it)
		{
			json_t *o = json_pack("{s:s, s:O, s:O, s:s, s:O}", "name", "inferred",
			                      "base", json_object_get(it, "base"), "size",
			                      json_object_get(it, "size"), "kind", "inferred",
			                      "source", json_object_get(it, "source"));

			if (o != NULL)
				json_array_append_new(arr, o);
		}
		json_decref(p);
	}
	return arr;
}
