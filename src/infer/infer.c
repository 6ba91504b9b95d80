/*
 * infer: the fault -> infer -> map -> resume loop and the register models
 * behind every inferred device (see infer.h for the boundary).
 *
 * Mapping. The first access to an unmodelled address of a served window
 * faults; we map the largest free span of that window around it with one
 * uc_mmio_map (a "window") and let Unicorn retry. Devices are 4 KiB pages
 * inside windows, created on their first access from the callback, with
 * the SVD's registers when one matches; registers are created on first
 * touch (word registers at aligned offsets, byte registers elsewhere) and
 * remember what the firmware writes.
 *
 * What a register does beyond that is learned from the code that uses it
 * (thumb.c runs it with candidate values):
 *  - a load/test/branch loop is solved: the value that leaves it is
 *    remembered per (PC, register), and stays set until the next write;
 *  - the first access after leaving names the role: reading another
 *    register of the device that the code uses (not a read-modify-write)
 *    makes the polled bits "data ready" for it, following the session's
 *    input; writing one makes it a transmit candidate, a console once it
 *    carried four bytes of text with no receive in between;
 *  - a branch on a never-written status register whose ready side writes a
 *    never-read register is an idle transmitter (write-if-ready drivers);
 *  - other branches keep their other side for exploration: while an
 *    interrupt we raised is handled, each takes its event side once;
 *  - a timer is a configured device with an enabled interrupt and a
 *    readable period (SVD PSC/ARR, PRESCALER/CC0; rules: a start write and
 *    a count); its never-written registers used as numbers count with
 *    virtual time.
 * Interrupts are raised only for a device the enabled vector's handler
 * uses (found by scanning the handler), that the firmware configured, and
 * when its event happened: input arrived (once per byte taken), transmit
 * became empty after the firmware armed an interrupt-driven transmitter,
 * a timer period elapsed. Never round-robin.
 *
 * Threads: the uc callbacks, on_unmapped, on_block and tick run on the
 * engine's owner thread. inf->lock guards every periph/reg, the windows
 * and the MMIO ring, so the JSON views and ms_infer_patch may run on HTTP
 * threads. Host callbacks are called with the lock held.
 */
#include "core/text.h"
#include "infer/infer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "infer/llm.h"
#include "infer/svd.h"
#include "infer/thumb.h"

#define PAGE 0x1000u
#define BLOCK 0x400u /* STM32-style peripheral spacing inside a page */
#define RING 4096u
#define DCACHE 4096u
#define MAX_PERIPHS 1024
#define LAT_SAMPLES 4096

enum model {
	RM_MEMORY = 0,
	RM_STATUS,
	RM_RX,
	RM_TX,
	RM_W1C,
	RM_SET,
	RM_CLR,
	RM_BSRR,
	RM_COUNTER,
	RM_CONST,
	RM__N
};
static const char *const model_names[RM__N] = {
    "memory", "status", "rx", "tx", "w1c", "set", "clear", "bsrr", "counter", "const",
};

enum source { SRC_RULES = 0, SRC_SVD, SRC_LLM, SRC_USER, SRC__N };
static const char *const source_names[SRC__N] = {"rules", "svd", "llm", "user"};

/* How a handler acknowledges an event flag, learned from its first write while the flag is set. */
enum ack { ACK_UNKNOWN = 0, ACK_W1C, ACK_W0C, ACK_READ };

enum pkind { PK_NONE = 0, PK_READY, PK_RX, PK_TX, PK_BRANCH, PK_STUCK, PK__N };
static const char *const pkind_names[PK__N] = {"none", "ready", "rx", "tx", "branch", "stuck"};

struct poll {
	uint32_t pc;
	uint8_t kind;
	uint8_t source;
	uint32_t mask, ready;
	int32_t data; /* PK_BRANCH: the other path reads this register next (-1: none) */
	uint32_t episode; /* PK_BRANCH: the interrupt episode that last took the other path */
	/*
	 * PK_TX answered by "the ready side transmits" (an interrupt handler
	 * testing its status once): other bits of the same test whose side
	 * reads a data register (received data), explored as PK_BRANCH is.
	 */
	uint32_t xmask, xready;
	int32_t xdata;
};

struct reg {
	uint32_t off;
	uint32_t value, reset;
	uint8_t model; /* enum model: how writes and reads behave */
	uint8_t source;
	uint8_t confidence;
	bool rx, tx; /* data register fed from input / sent to console */
	bool tx_cand; /* transmit candidate, bytes held in txbuf */
	bool dma_tx; /* a DMA pointer whose transfers reach the console (EasyDMA TXD.PTR) */
	uint8_t ndma;
	uint8_t dmabuf[8]; /* text moved through this pointer, not yet known to be a console */
	uint64_t wseq; /* when it was last written (inf->wseq) */
	bool tx_reject;
	bool user_category;
	char category[16]; /* when set by hand or from the SVD */
	uint8_t ntx;
	uint8_t txbuf[8];
	uint32_t alias; /* RM_SET/CLR/BSRR: offset of the register acted on */
	uint32_t w1c_mask;
	uint32_t idle_mask; /* bits set while the transmitter is idle (TC): ours always is */
	uint32_t rx_mask, rx_ready, rx_notready;
	int32_t rx_data; /* offset of the data register the rx bits announce */
	uint64_t reads, writes;
	uint32_t written_or;
	uint32_t sparse_or; /* OR of writes that are neither 0 nor "all but a flag" (~flag) */
	uint8_t size; /* bytes: 4, or 1/2 for byte and halfword registers */
	uint32_t input_mask; /* bits set from outside (injected pin levels): writes keep them */
	uint32_t event_mask; /* flags an injected event sets; the firmware can only clear them */
	uint8_t ack; /* enum ack: how the firmware clears event_mask bits, once seen */
	bool seen_set; /* the firmware read an event flag set since the last event */
	uint32_t chg[32]; /* inf->wstamp of the last write that changed each bit (enables) */
	uint64_t count_hz; /* RM_COUNTER: counting rate (0: the CPU clock) */
	uint32_t count_mask; /* RM_COUNTER: width (0: 32 bits) */
	struct poll *polls;
	int npolls, cappolls;
	char name[40];
	char reason[96];
};

struct periph {
	struct ms_infer *inf;
	uint32_t base;
	uint8_t source;
	int irq;
	/*
	 * A page that holds several small peripherals at 1 KiB steps (see
	 * periph_split): the interrupt line of each block, -1 none. irq is
	 * then the first line linked, kept for the views.
	 */
	int birq[PAGE / BLOCK];
	int timer_irq; /* the line a timer raises (its block's on a split page) */
	bool timer_fired; /* a period elapsed since the timer was recognised */
	char name[32];
	struct reg *regs;
	int nregs, cap;
	uint16_t index[PAGE]; /* byte offset -> reg index + 1 */
	bool uart;
	bool armed; /* the firmware configured it (a non-data write) */
	bool tx_irq_armed, tx_irq_event;
	/*
	 * The transmit interrupt's enable: the register and bits whose setting
	 * made the handler transmit (-1: not known; bits 0: none, every byte
	 * written is followed by a transmit-done event, as on Nordic UARTs).
	 */
	int32_t tx_ie_off;
	uint32_t tx_ie_bits;
	int32_t tx_data_off; /* the register the handler sends through (-1: not known) */
	/*
	 * The transmission-complete interrupt's enable (STM32 TCIE, set when
	 * the last byte was handed over): register and bits, -1 unknown. Its
	 * event is immediate, the transmitter being idle once a byte is written.
	 */
	int32_t tx_done_off;
	uint32_t tx_done_bits;
	bool tx_done_event;
	bool tx_probe; /* new bits were set: see at the next tick whether the handler would send */
	int32_t tx_probe_off;
	uint32_t tx_probe_bits;
	uint64_t tx_probe_seen; /* state hash of the last dry run that found no transmission */
	uint64_t rx_seen; /* state hash of the last receive dry run, and its answer */
	bool rx_listens;
	uint64_t rx_pend_consumed;
	bool rx_pended;
	int explore; /* reads left in which event bits may take their other branch */
	bool explore_timer; /* the exploration is for a timer period, not for input */
	uint32_t episode; /* counts the interrupts we raised for this device */
	bool timer; /* raises its interrupt every period_ns */
	uint8_t timer_source;
	uint64_t period_ns, next_ns;
	char timer_reason[80];
	uint64_t reads, writes;
	uint32_t extent;
	bool mapped;
	const struct ms__svd_periph *svdp[8];
	int nsvdp;
};

struct dslot {
	uint32_t addr;
	uint8_t state; /* 0 unknown, 1 not a delay loop, 2 delay loop */
	int8_t reg;
	uint16_t insns;
	uint32_t step;
	bool reported;
};

struct mrec {
	uint64_t seq;
	uint32_t pc, addr, value;
	uint8_t size;
	bool write;
};

/*
 * One uc_mmio_map'ed span of a peripheral window: the largest gap around
 * the first faulting address that nothing else occupies. Devices (pages)
 * inside it are created on their first access, without another fault.
 */
struct window {
	struct ms_infer *inf;
	uint64_t base, size;
};

#define MAX_WINDOWS 32

/*
 * What an external event on an interrupt line sets, found in the line's
 * handler (see evlink_find): the flag register the handler reads first and
 * the bit it tests, and the bit of an enable register that gates the line
 * in the peripheral.
 */
struct evlink {
	int irq;
	uint32_t in_addr, in_mask; /* the input the event changes: links are per (line, pin) */
	bool linked;
	bool level_only; /* the handler reads the input register itself: no flag */
	bool word; /* the flag is a whole register (an event word, as Nordic's EVENTS_x) */
	bool held; /* its last event was held back (disabled): raise when enabled */
	uint32_t flag_addr, flag_bit;
	uint32_t en_bit;
};

struct ms_infer {
	uc_engine *uc;
	struct ms_infer_host host;
	enum ms_infer_mode mode;
	uint64_t cpu_hz;
	bool no_delay_skip;
	pthread_mutex_t lock;
	struct ms__dis *dis;

	struct periph *p[MAX_PERIPHS];
	int np;
	struct periph *last; /* the device of the previous access */
	struct window win[MAX_WINDOWS];
	int nwin;
	uint64_t pending_map_ns; /* uc_mmio_map time of the fault that created a window */

	struct ms_infer_block blk; /* written by the engine at every block start */
	uint64_t cursor_serial; /* blk.serial that cursor belongs to */
	uint32_t cursor;

	struct dslot *dcache;

	uint64_t consumed;
	size_t last_avail;
	uint64_t wseq; /* counts register writes (reg.wseq) */

	struct mrec ring[RING];
	uint64_t seq;

	int irq_page[256]; /* page index+1 associated with irq, 0 none */
	struct evlink evl[64]; /* per (interrupt line, input pin): its event's flag */
	int nevl;
	uint32_t wstamp; /* counts register writes that changed bits (reg.chg) */
	/*
	 * Enabled vectors already linked (-1) or tried while the handler used
	 * no known device (the number of devices then, + 1: tried again when
	 * more exist, since a line is often enabled before its device is set up).
	 */
	int irq_seen[256];
	uint64_t ticks;

	struct ms__svd **svd;
	char **svd_path;
	int nsvd;
	int svd_pick;
	int svd_score[16];

	struct ms__llm *llm;
	bool any_console; /* a transmit register reached the console */

	/* stats */
	uint64_t n_region, n_reg, n_poll, n_rx, n_tx, n_irq, n_delay, n_delay_insns, n_explore;
	uint64_t n_llm, n_llm_rejected, n_import;
	uint64_t lat[LAT_SAMPLES];
	unsigned nlat;
	uint64_t lat_max;
};

/* ---- helpers ---------------------------------------------------------- */

static uint64_t host_now(struct ms_infer *inf)
{
	return inf->host.now_ns ? inf->host.now_ns(inf->host.ud) : 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static json_t *hex(uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "0x%" PRIx64, v);
	return json_string(b);
}

/* Accept 123, "123" or "0x7b" (at most 32 bits). */
static bool get_u32(json_t *j, uint32_t *out)
{
	uint64_t v;

	if (!ms_json_uint(j, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static void emit(struct ms_infer *inf, const char *type, json_t *data)
{
	if (inf->host.event)
		inf->host.event(inf->host.ud, type, data);
	json_decref(data);
}

bool ms_infer_is_peripheral_addr(uint64_t addr)
{
	if (addr >= 0x40000000ull && addr < 0x60000000ull)
		return true;
	if (addr >= 0x10000000ull && addr < 0x10001000ull)
		return true; /* Nordic FICR (or, written first, RAM such as STM32F4 CCM) */
	if (addr >= 0xA0000000ull && addr < 0xA0001000ull)
		return true;
	if (addr >= 0xE0000000ull && addr < 0xE000E000ull)
		return true;
	if (addr >= 0xE000F000ull && addr < 0xE0100000ull)
		return true;
	if (addr >= 0xE0100000ull && addr <= 0xFFFFFFFFull)
		return true;
	return false;
}

static struct periph *periph_find(struct ms_infer *inf, uint32_t page)
{
	for (int i = 0; i < inf->np; i++)
		if (inf->p[i]->base == page)
			return inf->p[i];
	return NULL;
}

static int periph_index(struct ms_infer *inf, struct periph *p)
{
	for (int i = 0; i < inf->np; i++)
		if (inf->p[i] == p)
			return i;
	return -1;
}

static struct reg *reg_find(struct periph *p, uint32_t off)
{
	uint16_t i = p->index[off & (PAGE - 1)];
	return i ? &p->regs[i - 1] : NULL;
}

/*
 * The register at byte offset off, created (plain, remembering writes) if
 * new: a word register at aligned offsets, a byte register elsewhere
 * (NXP/Freescale UARTs pack four 8-bit registers in a word).
 */
static struct reg *reg_get(struct periph *p, uint32_t off)
{
	off &= PAGE - 1;
	struct reg *r = reg_find(p, off);
	if (r)
		return r;
	if (p->nregs == p->cap) {
		int nc = p->cap ? p->cap * 2 : 16;
		struct reg *n = realloc(p->regs, (size_t)nc * sizeof(*n));
		if (!n)
			return NULL;
		p->regs = n;
		p->cap = nc;
	}
	r = &p->regs[p->nregs++];
	memset(r, 0, sizeof(*r));
	r->off = off;
	r->size = (off & 3) ? 1 : 4;
	r->rx_data = -1;
	r->confidence = 50;
	r->source = SRC_RULES;
	snprintf(r->reason, sizeof(r->reason), "first access: remembers writes");
	p->index[off] = (uint16_t)p->nregs;
	p->inf->n_reg++;
	return r;
}

/*
 * The register an access of size bytes at off reaches, and the bit shift
 * of the accessed part in it: a sub-word access inside a word register
 * reaches that register; otherwise the register at off itself.
 */
static struct reg *reg_access(struct periph *p, uint32_t off, unsigned size, unsigned *sh)
{
	off &= PAGE - 1;
	*sh = 0;
	if (off & 3) {
		struct reg *w = reg_find(p, off & ~3u);
		if (w && w->size == 4 && !reg_find(p, off)) {
			*sh = (off & 3) * 8;
			return w;
		}
	}
	struct reg *r = reg_get(p, off);
	if (r && r->reads + r->writes == 0 && !(off & 3) && size < 4 && r->source == SRC_RULES)
		r->size = (uint8_t)size;
	return r;
}

static struct periph *periph_new(struct ms_infer *inf, uint32_t page, uint8_t source)
{
	if (inf->np >= MAX_PERIPHS)
		return NULL;
	struct periph *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->inf = inf;
	p->base = page;
	p->source = source;
	p->irq = -1;
	for (unsigned b = 0; b < PAGE / BLOCK; b++)
		p->birq[b] = -1;
	p->timer_irq = -1;
	p->tx_ie_off = -1;
	p->tx_data_off = -1;
	p->tx_done_off = -1;
	snprintf(p->name, sizeof(p->name), "dev_%08x", page);
	inf->p[inf->np++] = p;
	return p;
}

static void periph_free(struct periph *p)
{
	for (int i = 0; i < p->nregs; i++)
		free(p->regs[i].polls);
	free(p->regs);
	free(p);
}

/*
 * Whether page p holds several small peripherals at 1 KiB steps, as STM32
 * parts pack them (USART1 at +0x800 beside SPI1 at +0x000; AFIO, EXTI and
 * GPIO ports 1 KiB each): registers touched in two or more 1 KiB blocks,
 * every one in the first 256 bytes of its block. A peripheral that fills
 * its page (Nordic: events at +0x100, configuration at +0x500) has
 * registers deeper in a block and stays one device.
 */
static bool periph_split(const struct periph *p)
{
	unsigned blocks = 0;
	for (int i = 0; i < p->nregs; i++) {
		if ((p->regs[i].off & (BLOCK - 1)) >= 0x100)
			return false;
		blocks |= 1u << (p->regs[i].off / BLOCK);
	}
	return __builtin_popcount(blocks) >= 2;
}

/* The interrupt line of the peripheral that holds offset off of page p (-1: none). */
static int irq_at(const struct periph *p, uint32_t off)
{
	if (periph_split(p))
		return p->birq[(off & (PAGE - 1)) / BLOCK];
	return p->irq;
}

/* Whether two offsets of p belong to the same peripheral (the same block of a split page). */
static bool same_unit(const struct periph *p, uint32_t a, uint32_t b)
{
	return !periph_split(p) || (a & (PAGE - 1)) / BLOCK == (b & (PAGE - 1)) / BLOCK;
}

/* Whether device address a is another register of the peripheral at addr (p's page). */
static bool same_dev(const struct periph *p, uint32_t a, uint32_t addr)
{
	return (a & ~(PAGE - 1)) == p->base && same_unit(p, a, addr);
}

/* Stored outright (not read back, not merged into other bits): a count or a setting. */
static bool outright(const struct reg *r)
{
	return r->writes && !r->reads;
}

static struct poll *poll_find(struct reg *r, uint32_t pc)
{
	for (int i = 0; i < r->npolls; i++)
		if (r->polls[i].pc == pc)
			return &r->polls[i];
	return NULL;
}

static struct poll *poll_add(struct reg *r, uint32_t pc)
{
	if (r->npolls == r->cappolls) {
		int nc = r->cappolls ? r->cappolls * 2 : 4;
		struct poll *n = realloc(r->polls, (size_t)nc * sizeof(*n));
		if (!n)
			return NULL;
		r->polls = n;
		r->cappolls = nc;
	}
	struct poll *q = &r->polls[r->npolls++];
	memset(q, 0, sizeof(*q));
	q->pc = pc;
	q->data = -1;
	q->xdata = -1;
	return q;
}

static void ring_add(struct ms_infer *inf, uint32_t pc, uint32_t addr, unsigned size, bool w,
                     uint32_t value)
{
	struct mrec *m = &inf->ring[inf->seq % RING];
	m->seq = inf->seq++;
	m->pc = pc;
	m->addr = addr;
	m->size = (uint8_t)size;
	m->write = w;
	m->value = value;
	if (inf->host.mmio)
		inf->host.mmio(inf->host.ud, pc, addr, size, w, value);
}

/* ---- SVD -------------------------------------------------------------- */

static bool name_ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/*
 * Choose the SVD whose peripherals match what the firmware touches: an
 * access that hits a register the file describes scores 2, one that only
 * falls in a described peripheral 1. The choice sticks once the leader
 * has matched a register and is ahead (or when only one file was given).
 */
static const struct ms__svd *svd_for(struct ms_infer *inf, uint32_t addr)
{
	if (!inf->nsvd)
		return NULL;
	if (inf->svd_pick >= 0)
		return inf->svd[inf->svd_pick];
	int best = -1, bests = 0, second = 0;
	for (int i = 0; i < inf->nsvd && i < 16; i++) {
		const struct ms__svd_periph *sp = ms__svd_find(inf->svd[i], addr);
		if (sp)
			inf->svd_score[i] += ms__svd_reg_at(sp, addr - sp->base) ? 2 : 1;
	}
	for (int i = 0; i < inf->nsvd && i < 16; i++) {
		if (inf->svd_score[i] > bests) {
			second = bests;
			bests = inf->svd_score[i];
			best = i;
		} else if (inf->svd_score[i] > second) {
			second = inf->svd_score[i];
		}
	}
	if (best < 0)
		return NULL;
	/*
	 * Trust a file only once it described a register the firmware really
	 * touched: an SVD of another part (wrong addresses) is never applied
	 * on the strength of a peripheral block that merely covers the page.
	 */
	if (bests >= 2 && bests > second) {
		inf->svd_pick = best;
		json_t *ev = json_pack("{s:s,s:s,s:i,s:s}", "svd", inf->svd_path[best], "device",
		                       inf->svd[best]->device, "score", bests, "reason",
		                       "its peripherals match the addresses the firmware touches");
		emit(inf, "infer.svd", ev);
		return inf->svd[best];
	}
	return NULL;
}

/* Registers of the SVD peripherals in this page, with names, resets, W1C and aliases. */
static void periph_apply_svd(struct ms_infer *inf, struct periph *p, uint32_t addr)
{
	const struct ms__svd *s = svd_for(inf, addr);
	if (!s)
		return;
	p->nsvdp = 0;
	for (int i = 0; i < s->np && p->nsvdp < 8; i++) {
		const struct ms__svd_periph *sp = &s->p[i];
		if (sp->base + (sp->size ? sp->size : 4) <= p->base || sp->base >= p->base + PAGE)
			continue;
		p->svdp[p->nsvdp++] = sp;
	}
	if (!p->nsvdp)
		return;
	p->source = SRC_SVD;
	/* Name and interrupt of the peripheral the firmware touched first. */
	const struct ms__svd_periph *first = ms__svd_find(s, addr);
	if (!first || first->base + first->size <= p->base || first->base >= p->base + PAGE)
		first = p->svdp[0];
	snprintf(p->name, sizeof(p->name), "%s", first->name);
	if (first->nirq > 0 && first->irq[0] >= 0 && first->irq[0] < 256)
		p->irq = first->irq[0];
	for (int k = 0; k < p->nsvdp; k++) {
		const struct ms__svd_periph *sp = p->svdp[k];
		if (p->irq < 0 && sp->nirq > 0 && sp->irq[0] >= 0 && sp->irq[0] < 256)
			p->irq = sp->irq[0];
		/* Each peripheral's own line for its block (STM32 packs several per page). */
		if (sp->nirq > 0 && sp->irq[0] >= 0 && sp->irq[0] < 256 && sp->base >= p->base &&
		    p->birq[(sp->base - p->base) / BLOCK] < 0)
			p->birq[(sp->base - p->base) / BLOCK] = sp->irq[0];
		for (int j = 0; j < sp->nregs; j++) {
			const struct ms__svd_reg *sr = &sp->regs[j];
			uint32_t a = sp->base + sr->off;
			if (a < p->base || a >= p->base + PAGE)
				continue;
			struct reg *r = reg_get(p, a - p->base);
			if (!r)
				return;
			if (sr->size && sr->size < 32)
				r->size = (uint8_t)((sr->size + 7) / 8);
			r->reset |= sr->reset;
			r->value = r->reset;
			r->source = SRC_SVD;
			r->confidence = 80;
			if (!r->name[0])
				snprintf(r->name, sizeof(r->name), "%s.%s", sp->name, sr->name);
			for (int f = 0; f < sr->nfields; f++)
				if (sr->fields[f].w1c) {
					uint32_t m = sr->fields[f].width >= 32
					    ? 0xffffffffu
					    : ((1u << sr->fields[f].width) - 1)
					        << sr->fields[f].lsb;
					r->w1c_mask |= m;
				}
			if (r->w1c_mask && r->model == RM_MEMORY)
				r->model = RM_W1C;
			if (sr->access == MS__SVD_RO)
				snprintf(r->category, sizeof(r->category), "status");
			snprintf(r->reason, sizeof(r->reason), "svd %s: reset 0x%x", s->device,
			         sr->reset);
		}
		/* Set/clear alias pairs: XSET/XCLR (nRF INTENSET/INTENCLR), BSRR/BRR -> ODR. */
		for (int j = 0; j < sp->nregs; j++) {
			const struct ms__svd_reg *sr = &sp->regs[j];
			uint32_t a = sp->base + sr->off;
			if (a < p->base || a >= p->base + PAGE)
				continue;
			struct reg *r = reg_find(p, a - p->base);
			if (!r)
				continue;
			char stem[40];
			snprintf(stem, sizeof(stem), "%s", sr->name);
			size_t n = strlen(stem);
			const char *target = NULL;
			uint8_t mode = RM_MEMORY;
			if (name_ends(sr->name, "SET") && n > 3) {
				stem[n - 3] = 0;
				mode = RM_SET;
			} else if (name_ends(sr->name, "CLR") && n > 3) {
				stem[n - 3] = 0;
				mode = RM_CLR;
			} else if (strcasecmp(sr->name, "BSRR") == 0) {
				target = "ODR";
				mode = RM_BSRR;
			} else if (strcasecmp(sr->name, "BRR") == 0) {
				target = "ODR";
				mode = RM_CLR;
			} else {
				continue;
			}
			if (!target)
				target = stem;
			/* The aliases act on the register named by the stem, else on the SET register. */
			const struct ms__svd_reg *t = NULL;
			for (int q = 0; q < sp->nregs; q++)
				if (strcasecmp(sp->regs[q].name, target) == 0)
					t = &sp->regs[q];
			if (!t && mode == RM_CLR) {
				char set[48];
				snprintf(set, sizeof(set), "%sSET", stem);
				for (int q = 0; q < sp->nregs; q++)
					if (strcasecmp(sp->regs[q].name, set) == 0)
						t = &sp->regs[q];
			}
			if (!t && mode == RM_SET)
				continue; /* a SET register alone keeps its own value */
			if (!t)
				continue;
			uint32_t ta = sp->base + t->off;
			if (ta < p->base || ta >= p->base + PAGE || ta == a)
				continue;
			if (!reg_find(p, ta - p->base))
				continue;
			r->model = mode;
			r->alias = ta - p->base;
			snprintf(r->reason, sizeof(r->reason), "svd: %s acts on %s", sr->name,
			         t->name);
		}
	}
}

/* ---- PC of the access --------------------------------------------------- */

static uint32_t locate(struct ms_infer *inf, const struct ms__cpu *cpu, bool write, uint32_t addr,
                       unsigned size, bool advance)
{
	bool have_block = inf->blk.serial != 0;
	if (!have_block)
		ms__cpu_need(cpu, 15);
	else if (inf->cursor_serial != inf->blk.serial) {
		/* A new block since the last access: search it from its start. */
		inf->cursor_serial = inf->blk.serial;
		inf->cursor = 0;
	}
	uint32_t block = have_block ? inf->blk.pc : cpu->r[15];
	uint32_t cur = have_block ? inf->cursor : 0;
	uint32_t pc;
	if (ms__locate(inf->dis, cpu, block, &cur, write, addr, size, &pc)) {
		if (advance && have_block)
			inf->cursor = cur;
		return pc;
	}
	/* The block start known to Unicorn is stale in MMIO callbacks: try it too. */
	ms__cpu_need(cpu, 15);
	if (have_block && cpu->r[15] != block) {
		cur = 0;
		if (ms__locate(inf->dis, cpu, cpu->r[15], &cur, write, addr, size, &pc))
			return pc;
	}
	return block;
}

/* ---- the status-poll solver ---------------------------------------------- */

static unsigned popcount32(uint32_t x)
{
	return (unsigned)__builtin_popcount(x);
}

static bool is_ram_addr(uint32_t v)
{
	return v >= 0x20000000u && v < 0x40000000u;
}

static void mark_tx_candidate(struct ms_infer *inf, struct periph *p, struct reg *d, bool have_byte,
                              uint32_t byte, uint32_t pc)
{
	/* A register holding a memory address is a DMA pointer, not data. */
	if (d->tx || d->tx_reject || d->tx_cand || is_ram_addr(d->value))
		return;
	d->tx_cand = true;
	d->ntx = 0;
	if (have_byte && byte <= 0xff)
		d->txbuf[d->ntx++] = (uint8_t)byte;
	json_t *ev = json_pack("{s:o,s:o,s:s,s:s}", "addr", hex(p->base + d->off), "pc", hex(pc),
	                       "model", "tx-candidate", "reason",
	                       "byte-sized writes next to a ready poll of the same device");
	emit(inf, "infer.register", ev);
}

static void tx_confirm(struct ms_infer *inf, struct periph *p, struct reg *d)
{
	d->tx = true;
	d->tx_cand = false;
	d->model = RM_TX;
	d->confidence = 90;
	snprintf(d->reason, sizeof(d->reason),
	         "transmit: bytes with text, each next to a ready poll");
	p->uart = true;
	p->timer = false; /* a console after all */
	inf->any_console = true;
	inf->n_tx++;
	json_t *ev = json_pack("{s:o,s:s,s:s,s:i,s:s}", "addr", hex(p->base + d->off), "model",
	                       "tx", "category", "data", "confidence", 90, "reason", d->reason);
	emit(inf, "infer.register", ev);
	if (d->ntx && inf->host.console_out)
		inf->host.console_out(inf->host.ud, d->txbuf, d->ntx);
	d->ntx = 0;
}

static void link_rx(struct ms_infer *inf, struct periph *p, struct reg *s, uint32_t mask,
                    uint32_t ready, uint32_t notready, uint32_t data_addr, uint32_t pc)
{
	uint32_t soff = s->off;
	struct reg *d = reg_get(p, data_addr - p->base);
	s = reg_find(p, soff); /* reg_get may have moved the array */
	if (!d || !s)
		return;
	s->rx_mask = mask;
	s->rx_ready = ready & mask;
	s->rx_notready = notready & mask;
	s->rx_data = (int32_t)d->off;
	s->confidence = 85;
	if (s->model == RM_MEMORY)
		s->model = RM_STATUS;
	snprintf(s->reason, sizeof(s->reason),
	         "data-ready bits 0x%x follow the input (data at +0x%x)", mask, d->off);
	d->rx = true;
	d->model = RM_RX;
	p->timer = false;
	d->confidence = 85;
	snprintf(d->reason, sizeof(d->reason),
	         "receive data: read after its ready bits, from input");
	inf->n_rx++;
	json_t *ev =
	    json_pack("{s:o,s:o,s:o,s:o,s:o,s:s,s:i,s:s}", "addr", hex(p->base + s->off), "pc",
	              hex(pc), "mask", hex(mask), "ready", hex(ready & mask), "data",
	              hex(data_addr), "model", "rx-ready", "confidence", 85, "reason", s->reason);
	emit(inf, "infer.register", ev);
}

/* The most recent access to page p before now (skipping reads of skip_addr). */
static const struct mrec *last_access(struct ms_infer *inf, uint32_t page, uint32_t skip_addr)
{
	for (uint64_t i = 0; i < 16 && i < inf->seq; i++) {
		const struct mrec *m = &inf->ring[(inf->seq - 1 - i) % RING];
		if ((m->addr & ~(PAGE - 1)) != page)
			continue;
		if (!m->write && m->addr == skip_addr)
			continue;
		return m;
	}
	return NULL;
}

static struct poll *ask_llm(struct ms_infer *inf, struct periph *p, struct reg *r, uint32_t pc,
                            const struct ms__cpu *cpu, uint32_t addr, uint32_t cur);
static const struct reg *reg_named(const struct periph *p, const char *suffix);

/*
 * The candidate (index into c) closest to cur whose side, reading the
 * device's configuration registers as they are, writes a byte taken from
 * memory to another register of the device: the transmitter is ready and
 * its interrupt enabled (`if ((SR & TXE) && (CR1 & TXEIE)) DR = *buf++`).
 * -1 when none. *target: the register written; *acked: that side first
 * cleared the status register itself (an event, not a level).
 */
static int ready_side_sends(struct ms_infer *inf, struct periph *p, const struct ms__cpu *cpu,
                            uint32_t pc, uint32_t addr, uint32_t cur, const uint32_t *c, int n,
                            uint32_t *target, bool *acked)
{
	int w = -1;
	ms__dis_peek_after(inf->dis, true);
	for (int i = 0; i < n; i++) {
		struct ms__run run;
		ms__simulate_follow(inf->dis, cpu, pc, addr, c[i], 160, &run);
		if (!run.acc || !run.acc_write || !run.acc_byte || run.acc_addr == addr ||
		    !same_dev(p, run.acc_addr, addr))
			continue;
		if (w < 0 || popcount32(c[i] ^ cur) < popcount32(c[w] ^ cur)) {
			w = i;
			*target = run.acc_addr;
			*acked = run.acked;
		}
	}
	ms__dis_peek_after(inf->dis, false);
	return w;
}

/*
 * A free-running counter: a register of a timer (by SVD name CNT/COUNTER,
 * or in a device found to be a timer) that the firmware never wrote but
 * reads and uses as a number. It then counts with virtual time, so that
 * elapsed-time arithmetic (tickless kernels, delays) sees time pass.
 */
static bool maybe_counter(struct ms_infer *inf, struct periph *p, struct reg *r, uint32_t pc)
{
	if (r->model != RM_MEMORY || r->written_or || r->rx || r->tx || r->rx_mask)
		return false;
	const char *dot = strrchr(r->name, '.');
	const char *nm = dot ? dot + 1 : r->name;
	bool named =
	    !strcasecmp(nm, "CNT") || !strcasecmp(nm, "COUNTER") || !strcasecmp(nm, "CVAL");
	if (!named && !(p->timer && ms__arithmetic_use(inf->dis, pc)))
		return false;
	r->model = RM_COUNTER;
	r->confidence = named ? 85 : 55;
	if (p->nsvdp) {
		const struct reg *psc = reg_named(p, "PSC"), *pre = reg_named(p, "PRESCALER");
		uint64_t hz = inf->cpu_hz ? inf->cpu_hz : 16000000ull;
		if (psc)
			r->count_hz = hz / (psc->value + 1);
		else if (pre && strncasecmp(p->name, "RTC", 3) == 0)
			r->count_hz = 32768 / (pre->value + 1);
		else if (pre)
			r->count_hz = 16000000ull >> (pre->value & 15);
		if (strncasecmp(p->name, "RTC", 3) == 0)
			r->count_mask = 0xffffff;
	}
	snprintf(r->reason, sizeof(r->reason), "%s",
	         named ? "svd: a timer's counter, counting with virtual time"
	               : "never written, read as a number in a timer: a counter");
	json_t *ev = json_pack("{s:o,s:o,s:s,s:i,s:I,s:s}", "addr", hex(p->base + r->off), "pc",
	                       hex(pc), "model", "counter", "confidence", r->confidence, "hz",
	                       (json_int_t)r->count_hz, "reason", r->reason);
	emit(inf, "infer.register", ev);
	return true;
}

/*
 * Whether a run leaves the test and then reads another register of the
 * peripheral at addr and uses the value (not a read-modify-write, not a
 * read for its side effect): the side that takes received data.
 */
static bool reads_data(struct ms_infer *inf, const struct periph *p, const struct ms__run *run,
                       uint32_t addr)
{
	return run->end == MS__LEAVE && run->branched && run->acc && !run->acc_write &&
	    run->acc_addr != addr && same_dev(p, run->acc_addr, addr) &&
	    !ms__read_modify_write(inf->dis, run->acc_pc) && ms__value_used(inf->dis, run->acc_pc);
}

/*
 * For a status test answered "transmitter ready" (q, PK_TX) that had no
 * receive side when it was solved (the handler's receive path was idle
 * then: `if (rx_state != BUSY_RX) return;`), look again now that input is
 * being delivered: the bits outside the ready mask whose side reads a
 * data register.
 */
static void refresh_read_side(struct ms_infer *inf, struct periph *p, struct poll *q,
                              const struct ms__cpu *cpu, uint32_t addr, uint32_t cur)
{
	uint32_t c[256];
	int n = ms__poll_candidates(inf->dis, q->pc, cur, c, 256);
	for (int i = 1; i < n; i++) {
		if ((c[i] ^ cur) & q->mask)
			continue;
		struct ms__run run;
		ms__simulate(inf->dis, cpu, q->pc, addr, c[i], 96, &run);
		if (!reads_data(inf, p, &run, addr))
			continue;
		q->xmask = c[i] ^ cur;
		q->xready = c[i] & q->xmask;
		q->xdata = (int32_t)(run.acc_addr - p->base);
		return;
	}
}

/*
 * Analyse the read of register r at pc: is it a poll, what leaves it, what
 * comes after. Creates and returns the memo for (pc, register).
 */
static struct poll *solve(struct ms_infer *inf, struct periph *p, struct reg *r, uint32_t pc,
                          const struct ms__cpu *cpu, uint32_t addr, uint32_t cur)
{
	uint32_t c[256];
	int n = ms__poll_candidates(inf->dis, pc, cur, c, 256);
	struct ms__run runs[256];
	int stay = -1, leave = -1, nstay = 0, nleave = 0;
	for (int i = 0; i < n; i++) {
		ms__simulate(inf->dis, cpu, pc, addr, c[i], 96, &runs[i]);
		if (runs[i].end == MS__LEAVE && runs[i].branched && !runs[i].acc) {
			/* What does the leaving side touch next, inside the helpers it calls? */
			struct ms__run f;
			ms__simulate_follow(inf->dis, cpu, pc, addr, c[i], 160, &f);
			if (f.acc && f.branched) {
				runs[i].acc = true;
				runs[i].acc_write = f.acc_write;
				runs[i].acc_addr = f.acc_addr;
				runs[i].acc_size = f.acc_size;
				runs[i].acc_pc = f.acc_pc;
			}
		}
		if (runs[i].end == MS__STAY) {
			nstay++;
			if (stay < 0 || popcount32(c[i] ^ cur) < popcount32(c[stay] ^ cur))
				stay = i;
		} else if (runs[i].end == MS__LEAVE) {
			nleave++;
			if (leave < 0 || popcount32(c[i] ^ cur) < popcount32(c[leave] ^ cur))
				leave = i;
		}
	}
	if (nstay && !nleave) {
		/* Maybe the caller's "loop" was the next call, not a retry: end at the return. */
		int s2 = -1, l2 = -1, ns2 = 0, nl2 = 0;
		for (int i = 0; i < n; i++) {
			ms__simulate_flat(inf->dis, cpu, pc, addr, c[i], 96, &runs[i]);
			if (runs[i].end == MS__STAY) {
				ns2++;
				if (s2 < 0 || popcount32(c[i] ^ cur) < popcount32(c[s2] ^ cur))
					s2 = i;
			} else if (runs[i].end == MS__LEAVE) {
				nl2++;
				if (l2 < 0 || popcount32(c[i] ^ cur) < popcount32(c[l2] ^ cur))
					l2 = i;
			}
		}
		stay = s2;
		leave = l2;
		nstay = ns2;
		nleave = nl2;
	}
	uint32_t off = r->off;
	struct poll *q = poll_add(r, pc);
	if (!q)
		return NULL;
	char insn[64];
	ms__dis_text(inf->dis, pc, insn, sizeof(insn));

	if (nstay && nleave) {
		/* A poll loop. */
		uint32_t lv = c[leave], sv = c[stay];
		uint32_t mask = lv ^ sv;
		if (!mask)
			mask = lv ^ cur;
		q->mask = mask;
		q->ready = lv & mask;
		q->kind = PK_READY;
		inf->n_poll++;
		const struct ms__run *lr = &runs[leave];
		const char *what = "ready";
		if (lr->acc && same_dev(p, lr->acc_addr, addr) && lr->acc_addr != addr &&
		    !lr->acc_write && !r->rx_mask && !ms__read_modify_write(inf->dis, lr->acc_pc) &&
		    ms__value_used(inf->dis, lr->acc_pc)) {
			q->kind = PK_RX;
			link_rx(inf, p, r, mask, lv, sv, lr->acc_addr, pc);
			r = reg_find(p, off);
			q = poll_find(r, pc);
			what = "rx-ready";
		} else if (lr->acc && same_dev(p, lr->acc_addr, addr) && lr->acc_write &&
		           lr->acc_addr != addr) {
			q->kind = PK_TX;
			struct reg *d = reg_get(p, lr->acc_addr - p->base);
			r = reg_find(p, off);
			q = poll_find(r, pc);
			if (d)
				mark_tx_candidate(inf, p, d, false, 0, pc);
			what = "tx-ready";
		} else {
			/* A write just before the poll (data, then wait until sent). */
			const struct mrec *m = last_access(inf, p->base, addr);
			if (m && m->write && m->addr != addr && m->value <= 0xff) {
				struct reg *d = reg_get(p, (m->addr & ~3u) - p->base);
				r = reg_find(p, off);
				q = poll_find(r, pc);
				if (d)
					mark_tx_candidate(inf, p, d, true, m->value, pc);
			}
		}
		if (r->model == RM_MEMORY)
			r->model = RM_STATUS;
		if (r->confidence < 85)
			r->confidence = 85;
		snprintf(r->reason, sizeof(r->reason), "poll at 0x%x leaves with bits 0x%x = 0x%x",
		         pc, q->mask, q->ready);
		json_t *ev =
		    json_pack("{s:o,s:o,s:s,s:s,s:o,s:o,s:i,s:s,s:i,s:i}", "addr", hex(addr), "pc",
		              hex(pc), "insn", insn, "model", what, "mask", hex(q->mask), "value",
		              hex(q->ready), "confidence", 85, "reason",
		              "value found by running the loop", "stay", nstay, "leave", nleave);
		emit(inf, "infer.poll", ev);
		return q;
	}
	if (nstay && !nleave) {
		q->kind = PK_STUCK;
		json_t *ev = json_pack("{s:o,s:o,s:s,s:s,s:i,s:s}", "addr", hex(addr), "pc",
		                       hex(pc), "insn", insn, "model", "stuck", "confidence", 20,
		                       "reason", "no value of this register leaves the loop");
		emit(inf, "infer.poll", ev);
		if (inf->llm) {
			struct poll *a = ask_llm(inf, p, r, pc, cpu, addr, cur);
			if (a)
				return a;
			r = reg_find(p, off);
			q = poll_find(r, pc);
		}
		return q;
	}
	/*
	 * Not a loop. "If the transmitter is ready, write the data register,
	 * else queue" (Arduino, interrupt-driven drivers): when one side of
	 * the branch on a never-written status register writes another
	 * register of the device that the firmware never reads, that side is
	 * the idle transmitter's: answer it, as an idle UART is ready.
	 */
	if (r->written_or == 0 && !r->rx_mask) {
		int w = -1;
		bool cur_writes = runs[0].acc && runs[0].acc_write;
		for (int i = 1; i < n && !cur_writes; i++) {
			if (runs[i].end != MS__LEAVE || !runs[i].branched || !runs[i].acc ||
			    !runs[i].acc_write || runs[i].acc_addr == addr ||
			    !same_dev(p, runs[i].acc_addr, addr))
				continue;
			struct reg *d = reg_find(p, runs[i].acc_addr - p->base);
			/* A register read back is not a transmitter, unless it also receives (STM32 DR). */
			if (d && d->reads && !d->rx)
				continue;
			if (w < 0 || popcount32(c[i] ^ cur) < popcount32(c[w] ^ cur))
				w = i;
		}
		/* The ready side may first check the interrupt enable (a handler): read it. */
		uint32_t wt = 0;
		if (w < 0 && !cur_writes) {
			bool acked;
			w = ready_side_sends(inf, p, cpu, pc, addr, cur, c, n, &wt, &acked);
			if (w == 0) {
				/* Ready already (an SVD reset value): no bits to learn, a transmitter. */
				struct reg *d = reg_get(p, wt - p->base);
				r = reg_find(p, off);
				q = poll_find(r, pc);
				if (d)
					mark_tx_candidate(inf, p, d, false, 0, pc);
				w = -1;
			} else if (w > 0) {
				runs[w].acc_addr = wt;
			}
		}
		if (w >= 0) {
			q->kind = PK_TX;
			q->mask = c[w] ^ cur;
			q->ready = c[w] & q->mask;
			/* Other bits whose side reads a register of the device: receive, explored later. */
			for (int i = 1; i < n; i++) {
				if ((c[i] ^ cur) & q->mask || !reads_data(inf, p, &runs[i], addr))
					continue;
				q->xmask = c[i] ^ cur;
				q->xready = c[i] & q->xmask;
				q->xdata = (int32_t)(runs[i].acc_addr - p->base);
				break;
			}
			struct reg *d = reg_get(p, runs[w].acc_addr - p->base);
			r = reg_find(p, off);
			q = poll_find(r, pc);
			/*
			 * Raised for a transmit event after the firmware wrote the
			 * data register itself (the first byte of a Nordic-style
			 * transfer): that byte is the first of the text.
			 */
			bool prev = d && p->tx_irq_armed && d->writes && d->value <= 0xff;
			if (d)
				mark_tx_candidate(inf, p, d, prev, prev ? d->value : 0, pc);
			if (r->model == RM_MEMORY)
				r->model = RM_STATUS;
			snprintf(r->reason, sizeof(r->reason),
			         "ready bits 0x%x: the ready side of the branch transmits",
			         q->mask);
			json_t *ev =
			    json_pack("{s:o,s:o,s:s,s:s,s:o,s:o,s:i,s:s}", "addr", hex(addr), "pc",
			              hex(pc), "insn", insn, "model", "tx-ready", "mask",
			              hex(q->mask), "value", hex(q->ready), "confidence", 60,
			              "reason", "the ready side of the branch writes the device");
			emit(inf, "infer.poll", ev);
			return q;
		}
	}
	/*
	 * A branch on the value. Keep another path for exploration, preferring
	 * one that goes on to read a data register of the device (received
	 * data) over one that only takes another branch (error flags first
	 * in HAL handlers).
	 */
	int base_i = 0; /* c[0] == cur */
	for (int i = 1; i < n; i++) {
		if (runs[i].end != MS__LEAVE || !runs[i].branched || !runs[i].acc ||
		    runs[i].acc_write || runs[i].acc_addr == addr ||
		    !same_dev(p, runs[i].acc_addr, addr) ||
		    (runs[0].acc && runs[0].acc_addr == runs[i].acc_addr) ||
		    ms__read_modify_write(inf->dis, runs[i].acc_pc) ||
		    !ms__value_used(inf->dis, runs[i].acc_pc))
			continue;
		q->kind = PK_BRANCH;
		q->mask = c[i] ^ cur;
		q->ready = c[i] & q->mask;
		q->data = (int32_t)(runs[i].acc_addr - p->base);
		return q;
	}
	for (int i = 1; i < n; i++) {
		if (runs[i].end == MS__UNKNOWN || runs[base_i].end == MS__UNKNOWN)
			continue;
		if (!runs[i].branched)
			continue;
		bool differ = runs[i].acc != runs[base_i].acc ||
		    runs[i].acc_addr != runs[base_i].acc_addr ||
		    runs[i].ninsn != runs[base_i].ninsn;
		if (differ) {
			q->kind = PK_BRANCH;
			q->mask = c[i] ^ cur;
			q->ready = c[i] & q->mask;
			if (runs[i].acc && !runs[i].acc_write && runs[i].acc_addr != addr &&
			    same_dev(p, runs[i].acc_addr, addr) &&
			    !ms__read_modify_write(inf->dis, runs[i].acc_pc) &&
			    ms__value_used(inf->dis, runs[i].acc_pc))
				q->data = (int32_t)(runs[i].acc_addr - p->base);
			break;
		}
	}
	return q;
}

/* ---- register reads and writes ------------------------------------------- */

static size_t input_avail(struct ms_infer *inf)
{
	return inf->host.input_avail ? inf->host.input_avail(inf->host.ud) : 0;
}

/*
 * Whether p's receive side takes the session input: a console (its
 * transmit register reached the console), or, while no console exists, a
 * device whose receive data register is also written (one data register
 * both ways, as on STM32 USARTs). Other receive paths (I2C, SPI, ADC) are
 * transfer-driven: always ready, reading what was last written.
 */
static bool input_owner(struct ms_infer *inf, struct periph *p, const struct reg *data)
{
	if (p->uart)
		return true;
	return !inf->any_console && data && data->writes;
}

/*
 * While an interrupt we raised is being handled, each branch on event bits
 * takes its other path once: that is the event the interrupt stands for.
 * For input, only registers the firmware never wrote (pure event/status
 * registers); for a timer period, bits the firmware never set itself
 * (flags it clears by writing); never bits driven from outside (outside:
 * injected levels, event flags). mask/ready: the other path's bits; data:
 * the register that path reads next (-1: none). Returns the value read.
 */
static uint32_t explore(struct ms_infer *inf, struct periph *p, struct reg *r, struct poll *q,
                        uint32_t mask, uint32_t ready, int32_t data, uint32_t v, uint32_t pc,
                        uint32_t outside)
{
	if (p->explore <= 0 || r->rx_mask || (mask & outside) || q->episode == p->episode)
		return v;
	if (p->explore_timer ? (mask & r->written_or) != 0
	                     : (r->written_or != 0 || !input_avail(inf)))
		return v;
	q->episode = p->episode;
	v = (v & ~mask) | ready;
	inf->n_explore++;
	/* Raised for input, and the other path reads a register of this device: received data. */
	if (!p->explore_timer && data >= 0 && (uint32_t)data != r->off)
		link_rx(inf, p, r, mask, ready, r->value & mask, p->base + (uint32_t)data, pc);
	return v;
}

static uint32_t reg_read_model(struct ms_infer *inf, struct periph *p, struct reg *r, uint32_t pc,
                               const struct ms__cpu *cpu, uint32_t addr)
{
	uint32_t off = r->off;
	r->reads++;
	if (r->model == RM_COUNTER) {
		uint64_t hz = r->count_hz ? r->count_hz : (inf->cpu_hz ? inf->cpu_hz : 16000000ull);
		uint64_t t = host_now(inf);
		/* Split to avoid overflowing 64 bits after a few minutes at MHz rates. */
		uint64_t ticks =
		    (t / 1000000000ull) * hz + ((t % 1000000000ull) * hz) / 1000000000ull;
		uint32_t v = (uint32_t)ticks;
		return r->count_mask ? (v & r->count_mask) : v;
	}
	if (r->rx) {
		for (int i = 0; i < p->nregs; i++)
			if (p->regs[i].tx_cand)
				p->regs[i].ntx = 0;
		if (!input_owner(inf, p, r))
			return r->value;
		int b = inf->host.input_get ? inf->host.input_get(inf->host.ud) : -1;
		if (b >= 0) {
			inf->consumed++;
			p->explore = 0;
			r->value = (uint32_t)b;
		}
		return r->value;
	}
	if (r->model == RM_CONST)
		return r->value;
	uint32_t v = r->value | (r->idle_mask & ~(r->input_mask | r->event_mask));
	if (r->model == RM_SET || r->model == RM_CLR || r->model == RM_BSRR) {
		struct reg *t = reg_find(p, r->alias);
		if (t)
			v = t->value;
	}
	if (r->rx_mask) {
		struct reg *d = r->rx_data >= 0 ? reg_find(p, (uint32_t)r->rx_data) : NULL;
		bool ready = input_owner(inf, p, d) ? input_avail(inf) > 0 : true;
		v = (v & ~r->rx_mask) | (ready ? r->rx_ready : r->rx_notready);
	}
	struct poll *q = poll_find(r, pc);
	if (!q && maybe_counter(inf, p, r, pc))
		return reg_read_model(inf, p, r, pc, cpu, addr);
	if (!q) {
		q = solve(inf, p, r, pc, cpu, addr, v);
		r = reg_find(p, off);
		if (!q)
			return v;
	}
	/*
	 * Bits driven from outside (injected pin levels, event flags) are
	 * never answered: a loop on them waits for the event, as on hardware.
	 */
	uint32_t outside = r->input_mask | r->event_mask;
	switch (q->kind) {
	case PK_READY:
	case PK_TX: {
		uint32_t m = q->mask & ~outside;
		v = (v & ~m) | (q->ready & m);
		/*
		 * Ready stays ready: later checks elsewhere (HAL's "is HSERDY
		 * still set?") see the state the loop waited for, until the
		 * firmware writes the register.
		 */
		r->value = (r->value & ~m) | (q->ready & m);
		if (q->kind == PK_TX && !q->xmask && p->explore > 0 && !p->explore_timer &&
		    q->episode != p->episode && !r->written_or && input_avail(inf))
			refresh_read_side(inf, p, q, cpu, addr, v);
		if (q->xmask)
			v = explore(inf, p, r, q, q->xmask, q->xready, q->xdata, v, pc, outside);
		break;
	}
	case PK_BRANCH:
		v = explore(inf, p, r, q, q->mask, q->ready, q->data, v, pc, outside);
		break;
	default:
		break;
	}
	if (p->explore > 0)
		p->explore--;
	return v;
}

/*
 * A read of r. Event flags set by an injected event are noted as seen
 * (ms_infer_inject learns clear-on-read from a flag seen and never
 * written) and, once the device is known to clear them on read (Atmel
 * PIO_ISR), cleared after the value is taken.
 */
static uint32_t reg_read(struct ms_infer *inf, struct periph *p, struct reg *r, uint32_t pc,
                         const struct ms__cpu *cpu, uint32_t addr)
{
	uint32_t off = r->off;
	uint32_t v = reg_read_model(inf, p, r, pc, cpu, addr);
	r = reg_find(p, off); /* the model may have created registers */
	if (r && (r->value & r->event_mask)) {
		if (r->ack == ACK_READ)
			r->value &= ~r->event_mask;
		else
			r->seen_set = true;
	}
	return v;
}

static bool handler_transmits(struct ms_infer *inf, struct periph *p);

/*
 * Note which bits of r a write acted on, with a global order: the enable
 * of an interrupt line is the bit the firmware acted on last (see
 * line_enabled). A write acts on the bits it changes; on a register the
 * firmware never reads (a command or a set/clear alias such as INTENSET),
 * every 1 it writes is an action, even when the value stays the same.
 */
static void stamp(struct ms_infer *inf, struct reg *r, uint32_t old, uint32_t written)
{
	uint32_t d = old ^ r->value;
	if (!r->reads)
		d |= written;
	if (!d)
		return;
	inf->wstamp++;
	while (d) {
		r->chg[__builtin_ctz(d)] = inf->wstamp;
		d &= d - 1;
	}
}

/*
 * A write to a register holding event flags (set by ms_infer_inject). Its
 * first write while a flag is set tells how this device acknowledges:
 * writing 1 to the flag (STM32 EXTI PR, "rc_w1") or 0 (Nordic EVENTS_x = 0,
 * STM32 TIM SR "rc_w0", where the other bits are written 1 to leave them).
 * Nobody writes 1 to keep a flag the hardware set, nor clears a flag by
 * writing the value it holds in a plain register, so that one write is
 * enough. Bits written the other way are left alone: `PR = 1` must not
 * clear a pending line 1.
 */
static void ack_events(struct ms_infer *inf, struct periph *p, struct reg *r, uint32_t v,
                       uint32_t wmask, uint32_t pc)
{
	uint32_t ev = r->event_mask & wmask;
	uint32_t set = r->value & ev;
	if (r->ack == ACK_UNKNOWN && set) {
		r->ack = (v & set) ? ACK_W1C : ACK_W0C;
		if (r->ack == ACK_W1C) {
			r->w1c_mask |= r->event_mask;
			if (r->model == RM_MEMORY)
				r->model = RM_W1C;
		}
		r->confidence = 85;
		snprintf(r->reason, sizeof(r->reason),
		         "event flags 0x%x: set by the event, cleared by writing %d", r->event_mask,
		         r->ack == ACK_W1C);
		emit(inf, "infer.register",
		     json_pack("{s:o,s:o,s:s,s:o,s:s,s:i,s:s}", "addr", hex(p->base + r->off), "pc",
		               hex(pc), "model", "event-flag", "mask", hex(r->event_mask), "clear",
		               r->ack == ACK_W1C ? "write-1" : "write-0", "confidence", 85,
		               "reason", r->reason));
	}
	uint32_t clr = r->ack == ACK_W1C ? (v & ev) : r->ack == ACK_W0C ? (~v & ev) : 0;
	r->value &= ~clr;
}

/* Bytes of a transfer to the console, or to the text check of a DMA pointer not yet known. */
static void dma_bytes(struct ms_infer *inf, struct periph *p, struct reg *ptr, const uint8_t *b,
                      uint32_t n, uint32_t pc)
{
	if (ptr->dma_tx) {
		if (inf->host.console_out)
			inf->host.console_out(inf->host.ud, b, n);
		return;
	}
	/* One console: text a bus moves by DMA once another device prints is not output. */
	if (inf->any_console)
		return;
	for (uint32_t i = 0; i < n; i++) {
		bool text =
		    (b[i] >= 0x20 && b[i] < 0x7f) || b[i] == '\n' || b[i] == '\r' || b[i] == '\t';
		if (!text) {
			ptr->ndma = 0;
			continue;
		}
		if (ptr->ndma < sizeof(ptr->dmabuf))
			ptr->dmabuf[ptr->ndma++] = b[i];
		if (ptr->ndma < 4)
			continue;
		ptr->dma_tx = true;
		ptr->confidence = 85;
		snprintf(ptr->reason, sizeof(ptr->reason),
		         "dma transmit: text from the memory it points at, sent by a start write");
		p->uart = true;
		p->timer = false;
		inf->any_console = true;
		inf->n_tx++;
		emit(inf, "infer.register",
		     json_pack("{s:o,s:o,s:s,s:s,s:i,s:s}", "addr", hex(p->base + ptr->off), "pc",
		               hex(pc), "model", "dma-tx", "category", "control", "confidence", 85,
		               "reason", ptr->reason));
		if (inf->host.console_out)
			inf->host.console_out(inf->host.ud, ptr->dmabuf, ptr->ndma);
		ptr->ndma = 0;
		if (i + 1 < n && inf->host.console_out)
			inf->host.console_out(inf->host.ud, b + i + 1, n - i - 1);
		return;
	}
}

/*
 * A write of 1 (a start task) to a device that was given a memory address
 * and, in the next register, a count (Nordic EasyDMA TXD.PTR/TXD.MAXCNT,
 * Atmel PDC TPR/TCR): the transfer set up last moves those bytes. Bytes
 * that read as text four in a row make that pointer the console's
 * transmitter (Zephyr's UARTE poll_out sends one byte per transfer); a
 * receive buffer (zeroed, or not text) never does. Receiving through DMA
 * is not modelled.
 */
static void dma_start(struct ms_infer *inf, struct periph *p, const struct reg *task, uint32_t pc)
{
	struct reg *ptr = NULL;
	for (int i = 0; i < p->nregs; i++) {
		struct reg *r = &p->regs[i];
		if (r == task || !is_ram_addr(r->value) || !outright(r))
			continue;
		const struct reg *cnt = reg_find(p, r->off + 4);
		if (!cnt || cnt == task || !cnt->writes || cnt->value == 0 || cnt->value > 4096)
			continue;
		if (!ptr || r->wseq > ptr->wseq)
			ptr = r;
	}
	if (!ptr)
		return;
	uint32_t n = reg_find(p, ptr->off + 4)->value;
	uint8_t buf[256];
	for (uint32_t done = 0; done < n;) {
		uint32_t k = n - done < sizeof(buf) ? n - done : (uint32_t)sizeof(buf);
		if (uc_mem_read(inf->uc, ptr->value + done, buf, k) != UC_ERR_OK)
			return;
		dma_bytes(inf, p, ptr, buf, k, pc);
		done += k;
	}
}

static void reg_write(struct ms_infer *inf, struct periph *p, struct reg *r, uint32_t v,
                      uint32_t wmask, uint32_t pc)
{
	r->writes++;
	r->wseq = ++inf->wseq;
	r->written_or |= v & wmask;
	if ((v & wmask) && popcount32(v & wmask) < 24)
		r->sparse_or |= v & wmask;
	if (r->tx || r->tx_cand) {
		uint8_t b = (uint8_t)v;
		/* The byte goes out at once: transmit empty again. */
		if (p->tx_irq_armed)
			p->tx_irq_event = true;
		if (r->tx) {
			if (inf->host.console_out)
				inf->host.console_out(inf->host.ud, &b, 1);
		} else if ((v & wmask) > 0xff) {
			r->tx_cand = false;
			r->tx_reject = true;
		} else if ((b >= 0x20 && b < 0x7f) || b == '\n' || b == '\r' || b == '\t') {
			/*
			 * Text, four bytes in a row with no receive in between: a
			 * console. Bus transfers (I2C/SPI) read their data register
			 * between writes, which restarts the count.
			 */
			if (r->ntx < sizeof(r->txbuf))
				r->txbuf[r->ntx++] = b;
			if (r->ntx >= 4)
				tx_confirm(inf, p, r);
		} else {
			r->ntx = 0;
		}
		if (!r->rx)
			r->value = v;
		return;
	}
	/* Event flags are set by the outside only; the firmware can only acknowledge them. */
	if (r->event_mask & wmask)
		ack_events(inf, p, r, v, wmask, pc);
	wmask &= ~r->event_mask;
	uint32_t old = r->value;
	/* A byte for the interrupt-driven transmitter before its data register is named. */
	if (p->tx_irq_armed && p->tx_data_off >= 0 && r->off == (uint32_t)p->tx_data_off)
		p->tx_irq_event = true;
	/* Injected input levels are not the firmware's to change. */
	wmask &= ~r->input_mask;
	switch (r->model) {
	case RM_SET:
	case RM_CLR:
	case RM_BSRR: {
		struct reg *t = reg_find(p, r->alias);
		if (!t)
			break;
		uint32_t told = t->value;
		if (r->model == RM_SET)
			t->value |= v & wmask;
		else if (r->model == RM_CLR)
			t->value &= ~(v & wmask);
		else
			t->value = (t->value | (v & 0xffff)) & ~(v >> 16);
		stamp(inf, t, told, 0);
		stamp(inf, r, r->value, v & wmask);
		return;
	}
	case RM_W1C:
		r->value = (old & ~(v & wmask & r->w1c_mask)) |
		    (((old & ~wmask) | (v & wmask)) & ~r->w1c_mask);
		break;
	case RM_CONST:
		return;
	default:
		r->value = (old & ~wmask) | (v & wmask);
		break;
	}
	stamp(inf, r, old, v & wmask);
	if ((v & wmask) == 1 && inf->uc)
		dma_start(inf, p, r, pc);
	uint32_t set = (v & wmask) & ~old, cleared = old & ~r->value;
	/*
	 * A timer's count or prescaler changed while it is being set up: its
	 * period is read again at the next tick. Once it has fired, changes
	 * are the running timer's (a compare value advanced in its handler).
	 */
	if (p->timer && !p->timer_fired && p->timer_source != SRC_USER && r->value != old &&
	    outright(r))
		p->timer = false;
	if (p->tx_ie_off >= 0) {
		/* The transmit interrupt's enable is known: it follows those bits. */
		if ((uint32_t)p->tx_ie_off == r->off && (set & p->tx_ie_bits)) {
			p->tx_irq_armed = true;
			p->tx_irq_event = true;
		} else if ((uint32_t)p->tx_ie_off == r->off && (cleared & p->tx_ie_bits)) {
			p->tx_irq_armed = false;
		}
	}
	/* A configuration write: the device is set up; newly set bits may arm an interrupt. */
	if (!r->rx_mask && (v & wmask)) {
		p->armed = true;
		/*
		 * Input waiting is a level: newly enabled bits (RXNEIE set when
		 * a receive starts) see it again, even if an earlier interrupt
		 * for it found the receiver not listening.
		 */
		if (p->uart && set)
			p->rx_pended = false;
		if (p->tx_ie_off >= 0) {
			/* Other bits of a known transmitter: maybe its transmission-complete enable. */
			uint32_t other =
			    (uint32_t)p->tx_ie_off == r->off ? set & ~p->tx_ie_bits : set;
			if (p->tx_done_off >= 0 && (uint32_t)p->tx_done_off == r->off &&
			    (set & p->tx_done_bits))
				p->tx_done_event = true;
			else if (other && p->tx_done_off < 0) {
				p->tx_probe = true;
				p->tx_probe_off = (int32_t)r->off;
				p->tx_probe_bits = other;
			}
		} else if (p->uart && set && handler_transmits(inf, p)) {
			p->tx_irq_armed = true;
			p->tx_irq_event = true;
		} else if (set && !p->tx_irq_armed) {
			/* Maybe a transmit interrupt enable: the next tick asks the handler. */
			p->tx_probe = true;
			p->tx_probe_off = (int32_t)r->off;
			p->tx_probe_bits = set;
		}
	}
	if (p->tx_ie_off < 0 && p->uart && cleared && r->model != RM_W1C && !r->rx_mask &&
	    !poll_find(r, pc))
		p->tx_irq_armed = false;
}

static struct periph *periph_touch(struct ms_infer *inf, uint32_t addr, bool write,
                                   const struct ms__cpu *cpu, uint32_t pc);

static uint64_t mmio_read_cb(uc_engine *uc, uint64_t offset, unsigned size, void *ud)
{
	struct window *w = ud;
	struct ms_infer *inf = w->inf;
	pthread_mutex_lock(&inf->lock);
	uint32_t addr = (uint32_t)(w->base + offset);
	struct ms__cpu cpu;
	ms__cpu_lazy(uc, &cpu);
	uint32_t pc = locate(inf, &cpu, false, addr, size, true);
	uint32_t v = 0;
	struct periph *p = periph_touch(inf, addr, false, &cpu, pc);
	uint32_t off = addr & (PAGE - 1);
	unsigned sh = 0;
	struct reg *r = p ? reg_access(p, off, size, &sh) : NULL;
	if (r)
		v = reg_read(inf, p, r, pc, &cpu, addr);
	if (p) {
		p->reads++;
		if (off + size > p->extent)
			p->extent = off + size;
	}
	v >>= sh;
	if (size == 1)
		v &= 0xff;
	else if (size == 2)
		v &= 0xffff;
	ring_add(inf, pc, addr, size, false, v);
	pthread_mutex_unlock(&inf->lock);
	return v;
}

static void mmio_write_cb(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *ud)
{
	struct window *w = ud;
	struct ms_infer *inf = w->inf;
	pthread_mutex_lock(&inf->lock);
	uint32_t addr = (uint32_t)(w->base + offset);
	struct ms__cpu cpu;
	ms__cpu_lazy(uc, &cpu);
	uint32_t pc = locate(inf, &cpu, true, addr, size, true);
	struct periph *p = periph_touch(inf, addr, true, &cpu, pc);
	uint32_t off = addr & (PAGE - 1);
	unsigned sh = 0;
	struct reg *r = p ? reg_access(p, off, size, &sh) : NULL;
	uint32_t wmask = size >= 4 ? 0xffffffffu : (((1u << (size * 8)) - 1) << sh);
	uint32_t v = (uint32_t)value << sh;
	if (r)
		reg_write(inf, p, r, v, wmask, pc);
	if (p) {
		p->writes++;
		if (off + size > p->extent)
			p->extent = off + size;
	}
	ring_add(inf, pc, addr, size, true, (uint32_t)value);
	pthread_mutex_unlock(&inf->lock);
}

/* ---- regions ------------------------------------------------------------ */

/* The window [lo, hi) of the served address space that holds addr. */
static bool window_bounds(uint64_t addr, uint64_t *lo, uint64_t *hi)
{
	static const uint64_t spans[][2] = {
	    {0x10000000ull, 0x10001000ull},  {0x40000000ull, 0x60000000ull},
	    {0xA0000000ull, 0xA0001000ull},  {0xE0000000ull, 0xE000E000ull},
	    {0xE000F000ull, 0xE0100000ull},  {0xE0100000ull, 0xFFFF0000ull},
	    {0xFFFF0000ull, 0x100000000ull},
	};
	for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++)
		if (addr >= spans[i][0] && addr < spans[i][1]) {
			*lo = spans[i][0];
			*hi = spans[i][1];
			return true;
		}
	return false;
}

static bool window_covers(const struct ms_infer *inf, uint64_t addr)
{
	for (int i = 0; i < inf->nwin; i++)
		if (addr >= inf->win[i].base && addr - inf->win[i].base < inf->win[i].size)
			return true;
	return false;
}

/*
 * Map the largest free span of addr's window around addr as one MMIO
 * region: one uc_mmio_map per window instead of one per device, so that
 * later devices in it cost no fault at all. Spans the engine mapped itself
 * (its own device models, RAM) are left alone.
 */
static bool window_map(struct ms_infer *inf, uint64_t addr)
{
	if (window_covers(inf, addr))
		return true;
	uint64_t lo, hi;
	if (!window_bounds(addr, &lo, &hi) || inf->nwin >= MAX_WINDOWS)
		return false;
	uc_mem_region *rs = NULL;
	uint32_t n = 0;
	if (uc_mem_regions(inf->uc, &rs, &n) == UC_ERR_OK) {
		for (uint32_t i = 0; i < n; i++) {
			uint64_t b = rs[i].begin, e = rs[i].end + 1;
			if (e <= lo || b >= hi)
				continue;
			if (b <= addr && addr < e) {
				uc_free(rs);
				return false; /* mapped already: not ours */
			}
			if (e <= addr && e > lo)
				lo = e;
			if (b > addr && b < hi)
				hi = b;
		}
		uc_free(rs);
	}
	lo = (lo + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	hi &= ~(uint64_t)(PAGE - 1);
	if (hi <= lo)
		return false;
	struct window *w = &inf->win[inf->nwin];
	w->inf = inf;
	w->base = lo;
	w->size = hi - lo;
	if (uc_mmio_map(inf->uc, lo, (size_t)(hi - lo), mmio_read_cb, w, mmio_write_cb, w) !=
	    UC_ERR_OK)
		return false;
	inf->nwin++;
	return true;
}

static bool periph_map(struct ms_infer *inf, struct periph *p)
{
	if (!p->mapped && inf->uc)
		p->mapped = window_map(inf, p->base);
	return p->mapped;
}

/* Registers that are known by their address on every Cortex-M part. */
static void fact(struct periph *p, uint32_t off, uint32_t v, const char *name, const char *why)
{
	struct reg *r = reg_get(p, off);
	if (!r)
		return;
	r->reset = r->value = v;
	r->model = RM_CONST;
	r->confidence = 80;
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->reason, sizeof(r->reason), "%s", why);
}

static void periph_apply_arch(struct ms_infer *inf, struct periph *p)
{
	if (p->base == 0x10000000u) {
		/*
		 * Nordic FICR (factory information), read-only: flash page size
		 * and count size flash loops and file systems; zero would make
		 * them spin. nRF52 parts have 4 KiB pages and at least 64 KiB of
		 * RAM, nRF51 1 KiB pages: the initial stack pointer tells which.
		 */
		uint32_t vt = inf->host.vtor ? inf->host.vtor(inf->host.ud) : 0, sp = 0;
		uc_mem_read(inf->uc, vt, &sp, 4);
		bool n52 = sp > 0x20008000u;
		fact(p, 0x010, n52 ? 4096 : 1024, "FICR.CODEPAGESIZE",
		     "nordic ficr: flash page size");
		fact(p, 0x014, n52 ? 128 : 256, "FICR.CODESIZE", "nordic ficr: flash pages");
		fact(p, 0x028, 0xffffffffu, "FICR.CLENR0", "nordic ficr: no code region 0");
		fact(p, 0x02c, 0xffffffffu, "FICR.PPFC", "nordic ficr: no pre-programmed code");
		fact(p, 0x034, n52 ? 8 : 2, "FICR.NUMRAMBLOCK", "nordic ficr: ram blocks");
		fact(p, 0x038, n52 ? 8192 : 8192, "FICR.SIZERAMBLOCKS",
		     "nordic ficr: ram block size");
		fact(p, 0x060, 0x4d534d53u, "FICR.DEVICEID0", "nordic ficr: a fixed device id");
		fact(p, 0x064, 0x00000001u, "FICR.DEVICEID1", "nordic ficr: a fixed device id");
		fact(p, 0x0a0, 0xffffffffu, "FICR.DEVICEADDRTYPE", "nordic ficr: random address");
		fact(p, 0x0a4, 0x4d534d53u, "FICR.DEVICEADDR0", "nordic ficr: a fixed address");
		fact(p, 0x0a8, 0x0000c0deu, "FICR.DEVICEADDR1", "nordic ficr: a fixed address");
		snprintf(p->name, sizeof(p->name), "FICR");
		p->source = SRC_RULES;
	}
	if (p->base == 0xE0001000u) {
		struct reg *r = reg_get(p, 0x004); /* DWT CYCCNT */
		if (r) {
			r->model = RM_COUNTER;
			r->confidence = 95;
			snprintf(r->name, sizeof(r->name), "DWT.CYCCNT");
			snprintf(r->reason, sizeof(r->reason), "architectural cycle counter");
		}
		snprintf(p->name, sizeof(p->name), "DWT");
	}
}

/* A device the rules create for page (the access at addr made it), mapped in its window. */
static struct periph *periph_create(struct ms_infer *inf, uint32_t page, uint32_t addr)
{
	struct periph *p = periph_new(inf, page, SRC_RULES);
	if (!p)
		return NULL;
	p->mapped = true;
	inf->n_region++;
	periph_apply_svd(inf, p, addr);
	periph_apply_arch(inf, p);
	return p;
}

/*
 * The device of addr, created on its first access: region choice (a page,
 * with the SVD's peripherals or the architecture's known registers), and
 * the decision event with the fault context (PC, instruction, registers,
 * recent MMIO history). Called with inf->lock held.
 */
static struct periph *periph_touch(struct ms_infer *inf, uint32_t addr, bool write,
                                   const struct ms__cpu *cpu, uint32_t pc)
{
	uint32_t page = addr & ~(PAGE - 1);
	if (inf->last && inf->last->base == page)
		return inf->last;
	struct periph *p = periph_find(inf, page);
	if (p) {
		inf->last = p;
		return p;
	}
	uint64_t t0 = mono_ns();
	p = periph_create(inf, page, addr);
	if (!p)
		return NULL;
	int pi = periph_index(inf, p);
	for (int i = 0; i < 256; i++)
		if (inf->irq_page[i] == pi + 1 && p->irq < 0)
			p->irq = i;
	inf->last = p;
	/* Fault to resume: the window mapping (when this access faulted) plus the choice. */
	uint64_t dt = mono_ns() - t0 + inf->pending_map_ns;
	uint64_t map_ns = inf->pending_map_ns;
	inf->pending_map_ns = 0;
	inf->lat[inf->nlat++ % LAT_SAMPLES] = dt;
	if (dt > inf->lat_max)
		inf->lat_max = dt;
	char insn[64];
	ms__dis_text(inf->dis, pc, insn, sizeof(insn));
	ms__cpu_need(cpu, -1);
	json_t *regs = json_object();
	static const char *const names[13] = {"r0", "r1", "r2", "r3",  "r4",  "r5", "r6",
	                                      "r7", "r8", "r9", "r10", "r11", "r12"};
	for (int i = 0; i < 13; i++)
		json_object_set_new(regs, names[i], hex(cpu->r[i]));
	json_object_set_new(regs, "sp", hex(cpu->r[13]));
	json_object_set_new(regs, "lr", hex(cpu->r[14]));
	json_t *hist = json_array();
	for (uint64_t i = inf->seq > 8 ? inf->seq - 8 : 0; i < inf->seq; i++) {
		const struct mrec *m = &inf->ring[i % RING];
		json_array_append_new(hist,
		                      json_pack("{s:o,s:o,s:s,s:o}", "pc", hex(m->pc), "addr",
		                                hex(m->addr), "dir", m->write ? "w" : "r", "value",
		                                hex(m->value)));
	}
	json_t *ev = json_pack(
	    "{s:o,s:o,s:s,s:s,s:o,s:i,s:s,s:s,s:s,s:i,s:s,s:o,s:o,s:I,s:I}", "addr", hex(addr),
	    "pc", hex(pc), "insn", insn, "access", write ? "write" : "read", "base", hex(page),
	    "size", (int)PAGE, "name", p->name, "source", source_names[p->source], "model",
	    "device", "confidence", p->source == SRC_SVD ? 90 : 60, "reason",
	    p->source == SRC_SVD ? "peripheral described by the SVD"
	                         : "unmodelled peripheral window: a 4 KiB device page",
	    "registers", regs, "history", hist, "latency_ns", (json_int_t)dt, "map_ns",
	    (json_int_t)map_ns);
	emit(inf, "infer.region", ev);
	return p;
}

/*
 * The device of an external event's input register, created when the
 * firmware has not touched its page yet: a pin level can be set before the
 * firmware first reads it (an input left in its reset mode is never
 * configured; its handler reads it for the first time). Only in the
 * windows this module serves, and not the 0x10000000 page (factory data or
 * RAM, decided by the firmware's first access). Called with inf->lock held
 * on the owner thread, outside any access.
 */
static struct periph *periph_for_event(struct ms_infer *inf, uint32_t addr)
{
	uint32_t page = addr & ~(PAGE - 1);
	struct periph *p = periph_find(inf, page);
	if (p)
		return p;
	if (!ms_infer_is_peripheral_addr(addr) || page == 0x10000000u || !inf->uc ||
	    !window_map(inf, addr))
		return NULL;
	p = periph_create(inf, page, addr);
	if (!p)
		return NULL;
	emit(inf, "infer.region",
	     json_pack("{s:o,s:o,s:i,s:s,s:s,s:s,s:i,s:s}", "addr", hex(addr), "base", hex(page),
	               "size", (int)PAGE, "name", p->name, "source", source_names[p->source],
	               "model", "device", "confidence", 50, "reason",
	               "an external event's input register, before the firmware reads it"));
	return p;
}

bool ms_infer_on_unmapped(struct ms_infer *inf, int type, uint64_t addr, int size, int64_t value)
{
	(void)size;
	(void)value;
	if (type == UC_MEM_FETCH_UNMAPPED || type == UC_MEM_FETCH_PROT)
		return false;
	if (!ms_infer_is_peripheral_addr(addr))
		return false;
	/*
	 * Nordic FICR: factory data the firmware only reads. A first access
	 * that writes means RAM instead (STM32F4 CCM at the same address):
	 * map it as memory, as undeclared memory is elsewhere.
	 */
	if (addr >= 0x10000000ull && addr < 0x10001000ull && type != UC_MEM_READ_UNMAPPED) {
		if (uc_mem_map(inf->uc, 0x10000000ull, PAGE, UC_PROT_ALL) != UC_ERR_OK)
			return false;
		pthread_mutex_lock(&inf->lock);
		emit(inf, "infer.memory",
		     json_pack("{s:o,s:o,s:i,s:s,s:s}", "addr", hex(addr), "base", hex(0x10000000u),
		               "size", (int)PAGE, "model", "memory", "reason",
		               "written before read: memory, not factory information"));
		pthread_mutex_unlock(&inf->lock);
		return true;
	}
	uint64_t t0 = mono_ns();
	pthread_mutex_lock(&inf->lock);
	bool ok = window_map(inf, addr);
	/* The device itself is chosen by the retried access, in the callback. */
	inf->pending_map_ns = mono_ns() - t0;
	pthread_mutex_unlock(&inf->lock);
	return ok;
}

/* ---- delay loops -------------------------------------------------------- */

struct ms_infer_block *ms_infer_block_slot(struct ms_infer *inf)
{
	return &inf->blk;
}

/* The delay-loop cache slot of the block at addr, classified on first use. */
static struct dslot *delay_slot(struct ms_infer *inf, uint32_t addr, uint32_t size)
{
	struct dslot *d = &inf->dcache[(addr >> 1) & (DCACHE - 1)];
	if (d->addr != addr || d->state == 0) {
		int reg;
		uint32_t step, insns, end;
		memset(d, 0, sizeof(*d));
		d->addr = addr;
		d->state = 1;
		if (ms__delay_loop(inf->dis, addr, size, &reg, &step, &insns, &end)) {
			d->state = 2;
			d->reg = (int8_t)reg;
			d->step = step;
			d->insns = (uint16_t)insns;
		}
	}
	return d;
}

bool ms_infer_block_has_work(struct ms_infer *inf, uint32_t addr, uint32_t size)
{
	return !inf->no_delay_skip && delay_slot(inf, addr, size)->state == 2;
}

uint64_t ms_infer_on_block(struct ms_infer *inf, uint64_t addr, uint32_t size)
{
	inf->blk.pc = (uint32_t)addr;
	inf->blk.serial++;
	if (inf->no_delay_skip)
		return 0;
	struct dslot *d = delay_slot(inf, (uint32_t)addr, size);
	if (d->state != 2)
		return 0;
	uint32_t v;
	int id = ms__uc_reg(d->reg);
	uc_reg_read(inf->uc, id, &v);
	if (v <= d->step * 2 || v % d->step)
		return 0;
	uint64_t iters = v / d->step - 1;
	uint32_t nv = d->step;
	uc_reg_write(inf->uc, id, &nv);
	uint64_t skipped = iters * d->insns;
	pthread_mutex_lock(&inf->lock);
	inf->n_delay++;
	inf->n_delay_insns += skipped;
	if (!d->reported) {
		d->reported = true;
		char insn[64];
		ms__dis_text(inf->dis, (uint32_t)addr, insn, sizeof(insn));
		json_t *ev =
		    json_pack("{s:o,s:s,s:s,s:i,s:I,s:s}", "pc", hex(addr), "insn", insn, "model",
		              "delay-loop", "confidence", 90, "skipped_insns", (json_int_t)skipped,
		              "reason", "register-only countdown with no side effect");
		emit(inf, "infer.delay", ev);
	}
	pthread_mutex_unlock(&inf->lock);
	return skipped;
}

/* ---- interrupts ----------------------------------------------------------- */

static void note_ref(struct ms_infer *inf, uint32_t v, int *hits, int weight)
{
	if (!ms_infer_is_peripheral_addr(v))
		return;
	struct periph *p = periph_find(inf, v & ~(PAGE - 1));
	if (!p)
		return;
	hits[periph_index(inf, p)] += weight;
}

/* Walk a handler (and the functions it calls, two levels) for device addresses it uses. */
static void scan_code(struct ms_infer *inf, uint32_t a, int depth, int *budget, int *hits,
                      int32_t store_off, bool *stores)
{
	uint32_t movw[16] = {0};
	for (int i = 0; i < 80 && *budget > 0; i++, (*budget)--) {
		const cs_insn *in = ms__dis_at(inf->dis, a);
		if (!in)
			return;
		const cs_arm *ar = &in->detail->arm;
		if (stores &&
		    (in->id == ARM_INS_STR || in->id == ARM_INS_STRB || in->id == ARM_INS_STRH) &&
		    ar->op_count >= 2 && ar->operands[1].type == ARM_OP_MEM &&
		    ar->operands[1].mem.index == ARM_REG_INVALID &&
		    ar->operands[1].mem.disp == store_off)
			*stores = true;
		if ((in->id == ARM_INS_LDR) && ar->op_count == 2 &&
		    ar->operands[1].type == ARM_OP_MEM && ar->operands[1].mem.base == ARM_REG_PC) {
			uint32_t lit = ((a + 4) & ~3u) + (uint32_t)ar->operands[1].mem.disp;
			uint32_t v;
			if (uc_mem_read(inf->uc, lit, &v, 4) == UC_ERR_OK) {
				note_ref(inf, v, hits, 4);
				/* A handle in RAM whose first words point at the device (HAL style). */
				if (v >= 0x20000000u && v < 0x40000000u) {
					uint32_t w[4];
					if (uc_mem_read(inf->uc, v, w, sizeof(w)) == UC_ERR_OK)
						for (int k = 0; k < 4; k++)
							note_ref(inf, w[k], hits, 2);
				}
			}
		} else if (in->id == ARM_INS_MOV && ar->op_count == 2 &&
		           ar->operands[1].type == ARM_OP_IMM) {
			/* mov.w rX, #0x40000000: a modified immediate holding a base. */
			note_ref(inf, (uint32_t)ar->operands[1].imm, hits, 4);
		} else if (in->id == ARM_INS_MOVW && ar->operands[0].type == ARM_OP_REG) {
			int r = ar->operands[0].reg - ARM_REG_R0;
			if (r >= 0 && r < 16)
				movw[r] = (uint32_t)ar->operands[1].imm & 0xffff;
		} else if (in->id == ARM_INS_MOVT && ar->operands[0].type == ARM_OP_REG) {
			int r = ar->operands[0].reg - ARM_REG_R0;
			if (r >= 0 && r < 16)
				note_ref(inf, movw[r] | ((uint32_t)ar->operands[1].imm << 16), hits,
				         4);
		} else if (in->id == ARM_INS_BL && depth < 2 &&
		           ar->operands[0].type == ARM_OP_IMM) {
			scan_code(inf, (uint32_t)ar->operands[0].imm, depth + 1, budget, hits,
			          store_off, stores);
		} else if (in->id == ARM_INS_B && ar->cc == ARM_CC_AL) {
			uint32_t t = (uint32_t)ar->operands[0].imm;
			if (t > a && t - a < 0x400) {
				a = t;
				continue;
			}
			if (depth < 2 && (t < a || t - a >= 0x400))
				scan_code(inf, t, depth + 1, budget, hits, store_off,
				          stores); /* tail call */
			return;
		} else if (in->id == ARM_INS_BX ||
		           (in->id == ARM_INS_POP && ar->op_count &&
		            ar->operands[ar->op_count - 1].reg == ARM_REG_PC)) {
			return;
		}
		a += in->size;
	}
}

/*
 * Whether the interrupt handler of p stores to its transmit data register
 * (an interrupt-driven transmitter): only then does arming the device
 * count as a "transmit empty" event.
 */
static bool handler_transmits(struct ms_infer *inf, struct periph *p)
{
	int32_t tx = -1;
	for (int i = 0; i < p->nregs; i++)
		if (p->regs[i].tx)
			tx = (int32_t)p->regs[i].off;
	if (tx < 0 || !inf->host.vtor)
		return false;
	int irq = irq_at(p, (uint32_t)tx);
	if (irq < 0)
		return false;
	uint32_t h;
	uint32_t vt = inf->host.vtor(inf->host.ud);
	if (uc_mem_read(inf->uc, vt + 4u * (16u + (uint32_t)irq), &h, 4) != UC_ERR_OK || !h)
		return false;
	int hits[MAX_PERIPHS];
	memset(hits, 0, sizeof(int) * (size_t)inf->np);
	int budget = 400;
	bool stores = false;
	/*
	 * Devices smaller than a page sit at an offset in it (STM32: 0x400
	 * blocks): when every register touched lies in one 1 KiB block, the
	 * handler addresses the data register relative to that block.
	 */
	uint32_t lo = PAGE, hi = 0;
	for (int i = 0; i < p->nregs; i++) {
		if (p->regs[i].off < lo)
			lo = p->regs[i].off;
		if (p->regs[i].off > hi)
			hi = p->regs[i].off;
	}
	int32_t off = (lo >> 10) == (hi >> 10) || periph_split(p) ? (tx & 0x3ff) : tx;
	scan_code(inf, h & ~1u, 0, &budget, hits, off, &stores);
	return stores;
}

/* Link an enabled vector to the device its handler uses; false when it uses none known. */
static bool associate_irq(struct ms_infer *inf, int irq)
{
	if (!inf->host.vtor)
		return true;
	uint32_t vt = inf->host.vtor(inf->host.ud);
	uint32_t h;
	if (uc_mem_read(inf->uc, vt + 4u * (16u + (uint32_t)irq), &h, 4) != UC_ERR_OK || !h)
		return true;
	int hits[MAX_PERIPHS];
	memset(hits, 0, sizeof(int) * (size_t)inf->np);
	int budget = 400;
	scan_code(inf, h & ~1u, 0, &budget, hits, -1, NULL);
	int best = -1;
	for (int i = 0; i < inf->np; i++)
		if (hits[i] && (best < 0 || hits[i] > hits[best]))
			best = i;
	if (best < 0)
		return false;
	struct periph *p = inf->p[best];
	/*
	 * Which peripheral of the page: the block of the handler's first
	 * device read in it (a dry run; the literal may be the page, with the
	 * block in the displacement: `mov r3, #0x40004000; ldr r0, [r3, #0x400]`).
	 */
	int block = -1;
	struct ms__cpu cpu;
	struct ms__devload loads[4];
	ms__cpu_read(inf->uc, &cpu);
	cpu.r[13] -= 32;
	cpu.r[14] = 0xfffffff9u;
	int nl = ms__device_loads(inf->dis, &cpu, 16u + (uint32_t)irq, h, 256, loads, 4);
	for (int i = 0; i < nl && block < 0; i++)
		if ((loads[i].addr & ~(PAGE - 1)) == p->base)
			block = (int)((loads[i].addr & (PAGE - 1)) / BLOCK);
	int known = block >= 0 && periph_split(p) ? p->birq[block] : p->irq;
	if (known >= 0 && known != irq && p->source == SRC_SVD)
		return true;
	if (known == irq && inf->irq_page[irq] == best + 1)
		return true; /* known already (from the SVD or a device map) */
	inf->irq_page[irq] = best + 1;
	if (p->irq < 0)
		p->irq = irq;
	if (block >= 0 && p->birq[block] < 0)
		p->birq[block] = irq;
	json_t *ev = json_pack(
	    "{s:i,s:o,s:o,s:o,s:s,s:i,s:s}", "irq", irq, "handler", hex(h), "base", hex(p->base),
	    "unit", hex(p->base + (block >= 0 ? (uint32_t)block * BLOCK : 0)), "model", "irq-line",
	    "confidence", 75, "reason", "the enabled vector's handler uses this device");
	emit(inf, "infer.irq", ev);
	return true;
}

static const struct reg *reg_named(const struct periph *p, const char *suffix)
{
	for (int i = 0; i < p->nregs; i++) {
		const char *n = p->regs[i].name;
		const char *dot = strrchr(n, '.');
		if (strcasecmp(dot ? dot + 1 : n, suffix) == 0)
			return &p->regs[i];
	}
	return NULL;
}

/* Whether register r lies in block b of its page (b < 0: the whole page). */
static bool in_block(const struct reg *r, int b)
{
	return b < 0 || r->off / BLOCK == (uint32_t)b;
}

static const struct reg *reg_named_in(const struct periph *p, const char *suffix, int b)
{
	for (int i = 0; i < p->nregs; i++) {
		const char *n = p->regs[i].name;
		const char *dot = strrchr(n, '.');
		if (in_block(&p->regs[i], b) && strcasecmp(dot ? dot + 1 : n, suffix) == 0)
			return &p->regs[i];
	}
	return NULL;
}

/* Whether an SVD peripheral of p (in block b, or anywhere for b < 0) is a timer by name. */
static bool svd_is_timer(const struct periph *p, int b)
{
	static const char *const kinds[] = {"TIM", "TIMER", "RTC", "LPTIM", "TC", "PIT", "GPT"};
	for (int k = 0; k < p->nsvdp; k++) {
		const struct ms__svd_periph *sp = p->svdp[k];
		if (b >= 0 && (sp->base < p->base || (sp->base - p->base) / BLOCK != (uint32_t)b))
			continue;
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			size_t n = strlen(kinds[i]);
			if (strncasecmp(sp->group, kinds[i], n) == 0 ||
			    strncasecmp(sp->name, kinds[i], n) == 0)
				return sp->name[n] == 0 ||
				    (sp->name[n] >= '0' && sp->name[n] <= '9') ||
				    strncasecmp(sp->group, kinds[i], n) == 0;
		}
	}
	return false;
}

/*
 * The period of a timer in rules mode, in CPU cycles, from what the
 * firmware wrote to block b (b < 0: the page); 0 when it is no timer:
 * there must be a start (a 1 stored) and a count (a value of 100..2^24
 * stored outright, the largest; a single set bit counts only beside a
 * prescaler, alone it is more often an enable mask such as INTENSET =
 * 1 << 16). The prescaler is recognised by where it sits:
 *  - stored just below the count (STM32 PSC at +0x28, ARR at +0x2c): both
 *    count from zero, (P+1) * (N+1) cycles;
 *  - else a small value (2..9) stored below the count in the same
 *    256-byte area (Nordic PRESCALER at +0x510, CC[0] at +0x540): a
 *    power-of-two divider, N << P cycles;
 *  - else the count alone, in CPU cycles: a guess (confidence 30).
 * The timer clock is taken to be the CPU clock (--cpu-hz, 16 MHz by
 * default): what the firmware set in its clock tree is not read here.
 */
static uint64_t rules_period(const struct periph *p, int b, int *conf, const char **why)
{
	bool started = false;
	const struct reg *count = NULL;
	for (int i = 0; i < p->nregs; i++) {
		const struct reg *r = &p->regs[i];
		if (!in_block(r, b))
			continue;
		if (r->value == 1 && r->writes)
			started = true;
		if (!outright(r) || r->value < 100 || r->value >= (1u << 24))
			continue;
		bool bit = popcount32(r->value) == 1;
		bool cbit = count && popcount32(count->value) == 1;
		if (!count || (cbit && !bit) || (cbit == bit && r->value > count->value))
			count = r;
	}
	if (!started || !count)
		return 0;
	bool single = popcount32(count->value) == 1;
	/* The larger value may be the prescaler of an STM32 pair: the reload sits above it. */
	const struct reg *above = reg_find((struct periph *)p, count->off + 4);
	if (above && in_block(above, b) && outright(above) && above->value >= 2 &&
	    above->value < (1u << 24) && count->value < (1u << 16)) {
		*conf = 55;
		*why = "rules: prescaler and reload stored side by side (PSC, ARR): (P+1)*(N+1) "
		       "cycles of the CPU clock";
		return (uint64_t)(count->value + 1) * (above->value + 1);
	}
	const struct reg *below =
	    count->off >= 4 ? reg_find((struct periph *)p, count->off - 4) : NULL;
	if (below && in_block(below, b) && outright(below) && below->value < (1u << 16)) {
		*conf = 55;
		*why = "rules: prescaler and reload stored side by side (PSC, ARR): (P+1)*(N+1) "
		       "cycles of the CPU clock";
		return (uint64_t)(below->value + 1) * (count->value + 1);
	}
	const struct reg *pw = NULL;
	for (int i = 0; i < p->nregs; i++) {
		const struct reg *r = &p->regs[i];
		if (in_block(r, b) && outright(r) && r->value >= 2 && r->value <= 9 &&
		    r->off < count->off && count->off - r->off < 0x100 && (!pw || r->off > pw->off))
			pw = r;
	}
	if (pw) {
		*conf = 50;
		*why = "rules: a small value stored below the compare value (PRESCALER, CC[0]): "
		       "N << P cycles of the CPU clock";
		return single ? 0 : (uint64_t)count->value << pw->value;
	}
	if (single)
		return 0;
	*conf = 30;
	*why = "rules, guessed: no prescaler recognised, the count taken as CPU cycles";
	return count->value;
}

/*
 * A timer: a configured device whose interrupt the firmware enabled, that
 * is neither a console nor a bus, with a period we can read. With an SVD,
 * the peripheral is a timer by name and its period comes from PSC/ARR
 * (STM32) or PRESCALER/CC[0] (Nordic); without one, rules_period reads
 * it from the values stored. b: the block of a split page (-1: the page),
 * irq: its line. Returns whether p became a timer.
 */
static bool timer_try(struct ms_infer *inf, struct periph *p, int b, int irq, uint64_t now_ns)
{
	/* An interrupt-driven transmitter is no timer (its bytes are no counts). */
	if (p->tx_data_off >= 0 && (b < 0 || (uint32_t)p->tx_data_off / BLOCK == (uint32_t)b))
		return false;
	/*
	 * Consoles and buses (data registers, data-ready polls) are not
	 * timers, nor are devices with inputs or events from outside.
	 */
	for (int i = 0; i < p->nregs; i++) {
		const struct reg *r = &p->regs[i];
		if (!in_block(r, b))
			continue;
		if (r->rx || r->tx || r->rx_mask || r->tx_cand || r->input_mask || r->event_mask)
			return false;
		for (int k = 0; k < r->npolls; k++)
			if (r->polls[k].kind == PK_TX || r->polls[k].kind == PK_RX)
				return false;
	}
	uint64_t hz = inf->cpu_hz ? inf->cpu_hz : 16000000ull;
	uint64_t cycles = 0;
	int conf = 40;
	const char *why = NULL;
	if (p->nsvdp) {
		if (!svd_is_timer(p, b))
			return false;
		const struct reg *arr = reg_named_in(p, "ARR", b), *psc = reg_named_in(p, "PSC", b);
		const struct reg *pre = reg_named_in(p, "PRESCALER", b);
		const struct reg *cc = reg_named_in(p, "CC0", b);
		if (!cc)
			cc = reg_named_in(p, "CC[0]", b);
		if (arr && arr->value) {
			cycles = (uint64_t)(arr->value + 1) * ((psc ? psc->value : 0) + 1);
			why = "svd: (PSC+1)*(ARR+1) timer clock cycles";
		} else if (cc && cc->value) {
			bool rtc = strncasecmp(p->name, "RTC", 3) == 0;
			uint64_t tick_hz = rtc ? 32768 / ((pre ? pre->value : 0) + 1)
			                       : 16000000ull >> ((pre ? pre->value : 0) & 15);
			cycles = cc->value * hz / (tick_hz ? tick_hz : 1);
			why = "svd: CC[0] ticks of the prescaled timer clock";
		}
		conf = 80;
	} else {
		cycles = rules_period(p, b, &conf, &why);
	}
	if (!cycles)
		return false;
	p->period_ns = cycles * 1000000000ull / hz;
	if (p->period_ns < 10000)
		p->period_ns = 10000; /* not faster than 100 kHz of interrupts */
	p->timer = true;
	p->timer_fired = false;
	p->timer_irq = irq;
	p->timer_source = p->nsvdp ? SRC_SVD : SRC_RULES;
	p->next_ns = now_ns + p->period_ns;
	snprintf(p->timer_reason, sizeof(p->timer_reason), "%s", why);
	json_t *ev = json_pack("{s:o,s:o,s:i,s:s,s:I,s:I,s:i,s:s}", "base", hex(p->base), "unit",
	                       hex(p->base + (b >= 0 ? (uint32_t)b * BLOCK : 0)), "irq", irq,
	                       "model", "timer", "period_ns", (json_int_t)p->period_ns, "cycles",
	                       (json_int_t)cycles, "confidence", conf, "reason", why);
	emit(inf, "infer.timer", ev);
	return true;
}

/* Each peripheral of p (each block of a split page) whose line the firmware enabled. */
static void timer_detect(struct ms_infer *inf, struct periph *p, uint64_t now_ns)
{
	if (p->uart || !p->armed || !inf->host.irq_enabled)
		return;
	bool split = periph_split(p);
	for (int b = split ? 0 : -1; b < (split ? (int)(PAGE / BLOCK) : 0); b++) {
		int irq = b >= 0 ? p->birq[b] : p->irq;
		if (irq < 0 || !inf->host.irq_enabled(inf->host.ud, irq))
			continue;
		if (timer_try(inf, p, b, irq, now_ns))
			return;
	}
}

/* The offset of p's serial data register (transmit or receive), 0 when none is known. */
static uint32_t serial_off(const struct periph *p)
{
	for (int i = 0; i < p->nregs; i++)
		if (p->regs[i].tx || p->regs[i].rx || p->regs[i].tx_cand)
			return p->regs[i].off;
	return p->tx_ie_off >= 0 ? (uint32_t)p->tx_ie_off : 0;
}

static bool line_enabled(struct periph *fp, uint32_t flag_off, uint32_t en_bit, char *why,
                         size_t cap);

/* Dry-run filter: registers of the device the firmware never set (status candidates). */
struct probe_ctx {
	struct periph *p;
	uint32_t off; /* a register of the peripheral probed */
};

static bool probe_want(void *ud, uint32_t addr)
{
	struct probe_ctx *c = ud;
	if (!same_dev(c->p, addr, c->p->base + c->off))
		return false;
	struct reg *r = reg_find(c->p, addr & (PAGE - 1));
	return !r || (!r->written_or && !r->rx && !r->tx && !r->tx_cand);
}

/*
 * For a device already known to transmit by interrupt, new bits set in
 * its configuration (q: p->tx_probe_off/bits) may enable the
 * transmission-complete interrupt (STM32 TCIE, set with the last byte;
 * HAL waits for it before the next transmit). It is if a status value
 * makes the handler write that configuration register (turning the enable
 * off again: the completion handled). Those status bits then read set, the
 * transmitter being idle, and the interrupt is raised now. Returns whether
 * it was one.
 */
static bool ready_side_ends(struct ms_infer *inf, struct periph *p, const struct ms__cpu *cpu,
                            uint32_t pc, uint32_t addr, uint32_t cur, const uint32_t *c, int n,
                            int irq, uint32_t handler)
{
	uint32_t en = p->base + (uint32_t)p->tx_probe_off;
	int w = -1;
	ms__dis_peek_after(inf->dis, true);
	for (int i = 1; i < n; i++) {
		struct ms__run run;
		ms__simulate_follow(inf->dis, cpu, pc, addr, c[i], 160, &run);
		if (!run.acc || !run.acc_write || run.acc_addr != en)
			continue;
		if (w < 0 || popcount32(c[i] ^ cur) < popcount32(c[w] ^ cur))
			w = i;
	}
	ms__dis_peek_after(inf->dis, false);
	struct reg *sr = reg_find(p, addr & (PAGE - 1));
	if (w < 0 || !sr)
		return false;
	sr->idle_mask |= (c[w] ^ cur) & c[w];
	p->tx_done_off = p->tx_probe_off;
	p->tx_done_bits = p->tx_probe_bits;
	p->tx_done_event = true;
	json_t *ev = json_pack("{s:i,s:o,s:o,s:o,s:o,s:o,s:s,s:i,s:s}", "irq", irq, "handler",
	                       hex(handler), "base", hex(p->base), "enable", hex(en), "enable_bits",
	                       hex(p->tx_done_bits), "status_bits", hex(sr->idle_mask), "model",
	                       "tx-done-irq", "confidence", 60, "reason",
	                       "with these status bits the handler turns the bits just set off "
	                       "again: a transmission-complete interrupt, due at once");
	emit(inf, "infer.irq", ev);
	return true;
}

/* A digest of what the firmware configured in p (the values a dry run depends on). */
static uint64_t config_digest(const struct periph *p)
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < p->nregs; i++) {
		if (!p->regs[i].writes)
			continue;
		h = (h ^ p->regs[i].off) * 1099511628211ull;
		h = (h ^ p->regs[i].value) * 1099511628211ull;
	}
	return h;
}

/*
 * The firmware set new bits in p, whose interrupt is enabled in the NVIC:
 * is that the transmit interrupt's enable (or a transfer's first byte)? A
 * dry run of the handler answers it, without raising anything: run to its
 * first read of a status candidate, then try the status values (as the
 * poll solver does), reading configuration as the firmware left it. When
 * one of them makes the handler write a byte from memory to the device, an
 * idle transmitter would interrupt now: arm the transmit event. A handler
 * that checks an enable bit still clear (TXEIE) does not send, so nothing
 * is raised. The digest keeps one dry run per configuration.
 */
static void tx_probe(struct ms_infer *inf, struct periph *p, int irq)
{
	p->tx_probe = false;
	if (!inf->host.vtor)
		return;
	uint32_t h;
	uint32_t vt = inf->host.vtor(inf->host.ud);
	if (uc_mem_read(inf->uc, vt + 4u * (16u + (uint32_t)irq), &h, 4) != UC_ERR_OK || !h)
		return;
	uint64_t dg = config_digest(p) ^ h;
	if (dg == p->tx_probe_seen)
		return;
	struct ms__cpu cpu, at;
	ms__cpu_read(inf->uc, &cpu);
	/* Exception entry: the frame is pushed, LR holds EXC_RETURN. */
	cpu.r[13] -= 32;
	cpu.r[14] = 0xfffffff9u;
	struct probe_ctx ctx = {p, (uint32_t)p->tx_probe_off};
	uint32_t pc, addr, target = 0;
	bool acked = false;
	int w = -1;
	if (ms__run_to_read(inf->dis, &cpu, h, 256, probe_want, &ctx, &pc, &addr, &at)) {
		struct reg *r = reg_find(p, addr & (PAGE - 1));
		uint32_t cur = r ? r->value : 0;
		uint32_t c[256];
		int n = ms__poll_candidates(inf->dis, pc, cur, c, 256);
		if (p->tx_ie_off >= 0) {
			/* A known transmitter: is this its transmission-complete enable? */
			if (ready_side_ends(inf, p, &at, pc, addr, cur, c, n, irq, h))
				return;
		} else {
			w = ready_side_sends(inf, p, &at, pc, addr, cur, c, n, &target, &acked);
		}
	}
	if (w < 0) {
		p->tx_probe_seen = dg;
		return;
	}
	bool data_trigger = (uint32_t)p->tx_probe_off == (target & (PAGE - 1));
	p->tx_ie_off = p->tx_probe_off;
	p->tx_data_off = (int32_t)(target & (PAGE - 1));
	/* The trigger was the data register itself: an event per byte, no enable bit. */
	p->tx_ie_bits = data_trigger ? 0 : p->tx_probe_bits;
	p->tx_irq_armed = true;
	/*
	 * A level (STM32 TXE: an idle transmitter asks at once) interrupts now;
	 * an event the handler acknowledges (Nordic TXDRDY) only after a byte
	 * went out: at the next write of the data register.
	 */
	p->tx_irq_event = !acked || data_trigger;
	json_t *ev = json_pack(
	    "{s:i,s:o,s:o,s:o,s:o,s:o,s:s,s:i,s:s}", "irq", irq, "handler", hex(h), "base",
	    hex(p->base), "enable", hex(p->base + (uint32_t)p->tx_ie_off), "enable_bits",
	    hex(p->tx_ie_bits), "data", hex(target), "model", "tx-irq", "confidence", 70, "reason",
	    "a dry run of the handler with the bits just set writes a byte from memory to the "
	    "device when its status says ready: an interrupt-driven transmitter");
	emit(inf, "infer.irq", ev);
}

/*
 * Whether the handler of a console's line would take input now: a dry run
 * (as for transmit) to its first status read, then the status values the
 * solver tries, configuration as the firmware left it; true when one of
 * them makes it read another register of the device (the received data).
 * A receive interrupt whose enable the firmware has not set (RXNEIE) is
 * not raised. When the dry run cannot tell (code it does not interpret, a
 * receive path it does not reach), the answer is yes, as before. One dry
 * run per configuration.
 */
static bool rx_listens(struct ms_infer *inf, struct periph *p, int irq)
{
	uint32_t h;
	if (!inf->host.vtor ||
	    uc_mem_read(inf->uc, inf->host.vtor(inf->host.ud) + 4u * (16u + (uint32_t)irq), &h,
	                4) != UC_ERR_OK ||
	    !h)
		return true;
	uint64_t dg = (config_digest(p) ^ h) * 31 + 1;
	if (dg == p->rx_seen)
		return p->rx_listens;
	struct ms__cpu cpu, at;
	ms__cpu_read(inf->uc, &cpu);
	cpu.r[13] -= 32;
	cpu.r[14] = 0xfffffff9u;
	struct probe_ctx ctx = {p, serial_off(p)};
	uint32_t pc, addr;
	bool listens = true;
	if (ms__run_to_read(inf->dis, &cpu, h, 256, probe_want, &ctx, &pc, &addr, &at)) {
		struct reg *r = reg_find(p, addr & (PAGE - 1));
		uint32_t cur = r ? r->value : 0;
		uint32_t c[256];
		int n = ms__poll_candidates(inf->dis, pc, cur, c, 256);
		/*
		 * Configuration as it is, then with every enable on: a receive
		 * path seen only in the second run is switched off (RXNEIE
		 * clear). Seen in neither (a callback beyond the calls the
		 * dry run follows), it cannot tell: raise, as before.
		 */
		bool now = false, all_on = false;
		ms__dis_peek_after(inf->dis, true);
		for (int pass = 0; pass < 2 && !now; pass++) {
			ms__dis_peek_all_set(inf->dis, pass == 1);
			bool found = false;
			for (int i = 0; i < n && !found; i++) {
				struct ms__run run;
				ms__simulate_follow(inf->dis, &at, pc, addr, c[i], 160, &run);
				found = run.acc && !run.acc_write && run.acc_addr != addr &&
				    same_dev(p, run.acc_addr, addr);
			}
			if (pass == 0)
				now = found;
			else
				all_on = found;
		}
		ms__dis_peek_all_set(inf->dis, false);
		ms__dis_peek_after(inf->dis, false);
		listens = now || !all_on;
	}
	p->rx_seen = dg;
	p->rx_listens = listens;
	return listens;
}

void ms_infer_tick(struct ms_infer *inf, uint64_t now_ns)
{
	(void)now_ns;
	pthread_mutex_lock(&inf->lock);
	inf->ticks++;
	/* Link enabled vectors to devices, once each, when the firmware enables them. */
	if (inf->host.irq_enabled) {
		for (int irq = 0; irq < 128; irq++) {
			if (inf->irq_seen[irq] < 0 || inf->irq_seen[irq] == inf->np + 1)
				continue;
			if (!inf->host.irq_enabled(inf->host.ud, irq))
				continue;
			inf->irq_seen[irq] = associate_irq(inf, irq) ? -1 : inf->np + 1;
		}
	}
	size_t avail = input_avail(inf);
	for (int i = 0; i < inf->np; i++) {
		struct periph *p = inf->p[i];
		if (!inf->host.irq_set_pending || !inf->host.irq_enabled || !p->armed)
			continue;
		if (p->tx_probe) {
			int pirq = irq_at(p, (uint32_t)p->tx_probe_off);
			if (pirq >= 0 && inf->host.irq_enabled(inf->host.ud, pirq))
				tx_probe(inf, p, pirq);
		}
		if (!p->uart && !p->tx_irq_armed)
			continue;
		/* The serial peripheral's own line (its block's on a split page). */
		int irq = irq_at(p, serial_off(p));
		if (irq < 0 || !inf->host.irq_enabled(inf->host.ud, irq))
			continue;
		/* Input arrived: once per byte the firmware takes (level while unread is up to it). */
		if (p->uart && avail > 0 &&
		    (!p->rx_pended || inf->consumed != p->rx_pend_consumed ||
		     inf->last_avail == 0) &&
		    rx_listens(inf, p, irq)) {
			p->rx_pended = true;
			p->rx_pend_consumed = inf->consumed;
			bool learned = false;
			for (int k = 0; k < p->nregs; k++)
				if (p->regs[k].rx_mask)
					learned = true;
			if (!learned) {
				p->explore = 64;
				p->explore_timer = false;
				p->episode++;
			}
			inf->host.irq_set_pending(inf->host.ud, irq);
			inf->n_irq++;
		} else if (p->tx_irq_event && p->tx_irq_armed) {
			p->tx_irq_event = false;
			inf->host.irq_set_pending(inf->host.ud, irq);
			inf->n_irq++;
		} else if (p->tx_done_event) {
			p->tx_done_event = false;
			inf->host.irq_set_pending(inf->host.ud, irq);
			inf->n_irq++;
		}
	}
	inf->last_avail = avail;
	/*
	 * An external event held back because its line was disabled in the
	 * peripheral: its flag stays pending, and enabling the line raises the
	 * interrupt then (flag and enable are a level, on EXTI as on GPIOTE).
	 * Acknowledged meanwhile (polled and cleared), it is forgotten.
	 */
	for (int i = 0; i < inf->nevl && inf->host.irq_set_pending; i++) {
		struct evlink *l = &inf->evl[i];
		if (!l->held)
			continue;
		struct periph *fp = periph_find(inf, l->flag_addr & ~(PAGE - 1));
		struct reg *fr = fp ? reg_find(fp, l->flag_addr & (PAGE - 1)) : NULL;
		char why[128];
		if (!fr || !(fr->value & (1u << l->flag_bit))) {
			l->held = false;
			continue;
		}
		if (!inf->host.irq_enabled || !inf->host.irq_enabled(inf->host.ud, l->irq) ||
		    !line_enabled(fp, fr->off, l->en_bit, why, sizeof(why)))
			continue;
		l->held = false;
		inf->host.irq_set_pending(inf->host.ud, l->irq);
		inf->n_irq++;
		emit(inf, "infer.irq",
		     json_pack("{s:i,s:o,s:s,s:s}", "irq", l->irq, "addr", hex(l->flag_addr),
		               "model", "event-pending", "reason", why));
	}
	for (int i = 0; i < inf->np; i++) {
		struct periph *p = inf->p[i];
		if (!p->timer)
			timer_detect(inf, p, now_ns);
		int irq = p->timer_irq >= 0 ? p->timer_irq : p->irq;
		if (!p->timer || irq < 0 || !inf->host.irq_set_pending || !inf->host.irq_enabled ||
		    !p->armed)
			continue;
		if (!p->next_ns) {
			/* A timer from a device map: its first period starts when it is set up. */
			p->next_ns = now_ns + p->period_ns;
			continue;
		}
		if (now_ns < p->next_ns)
			continue;
		/* Late ticks are not replayed in a burst: one event, then the next period. */
		p->next_ns = now_ns - (now_ns - p->next_ns) % p->period_ns + p->period_ns;
		if (!inf->host.irq_enabled(inf->host.ud, irq))
			continue;
		p->episode++;
		p->explore = 64;
		p->explore_timer = true;
		p->timer_fired = true;
		inf->host.irq_set_pending(inf->host.ud, irq);
		inf->n_irq++;
	}
	pthread_mutex_unlock(&inf->lock);
}

uint64_t ms_infer_next_event_ns(struct ms_infer *inf)
{
	uint64_t t = UINT64_MAX;
	pthread_mutex_lock(&inf->lock);
	/* next_ns 0 is a timer not started yet (one imported from a device map): no deadline. */
	for (int i = 0; i < inf->np; i++)
		if (inf->p[i]->timer && inf->p[i]->next_ns != 0 && inf->p[i]->next_ns < t)
			t = inf->p[i]->next_ns;
	pthread_mutex_unlock(&inf->lock);
	return t;
}

/* ---- LLM --------------------------------------------------------------- */

static struct poll *ask_llm(struct ms_infer *inf, struct periph *p, struct reg *r, uint32_t pc,
                            const struct ms__cpu *cpu, uint32_t addr, uint32_t cur)
{
	uint32_t off = r->off;
	json_t *loop = json_array();
	struct ms__walk w;
	const cs_insn *in;
	ms__walk_from(&w, inf->dis, pc, 12);
	while ((in = ms__walk_next(&w))) {
		char t[80];
		snprintf(t, sizeof(t), "%08x: %s %s", (uint32_t)in->address, in->mnemonic,
		         in->op_str);
		json_array_append_new(loop, json_string(t));
	}
	json_t *ctx = json_pack("{s:o,s:o,s:o,s:o,s:s,s:o}", "address", hex(addr), "pc", hex(pc),
	                        "current", hex(cur), "peripheral", hex(p->base), "rules",
	                        "no value of this register leaves the loop", "code", loop);
	json_t *ans = NULL;
	int cached = 0;
	char err[256];
	int rc = ms__llm_ask(inf->llm, ctx, &ans, &cached, err, sizeof(err));
	json_decref(ctx);
	inf->n_llm++;
	if (rc < 0) {
		emit(inf, "infer.llm",
		     json_pack("{s:o,s:o,s:s}", "addr", hex(addr), "pc", hex(pc), "error", err));
		return NULL;
	}
	uint32_t v = 0, mask = 0xffffffffu;
	get_u32(json_object_get(ans, "value"), &v);
	get_u32(json_object_get(ans, "mask"), &mask);
	uint32_t cand = (cur & ~mask) | (v & mask);
	/* Check by replay: the proposed value must leave the loop. */
	struct ms__run run;
	ms__simulate(inf->dis, cpu, pc, addr, cand, 96, &run);
	r = reg_find(p, off);
	struct poll *q = poll_find(r, pc);
	if (run.end != MS__LEAVE) {
		inf->n_llm_rejected++;
		emit(inf, "infer.llm",
		     json_pack("{s:o,s:o,s:o,s:s,s:b}", "addr", hex(addr), "pc", hex(pc), "value",
		               hex(cand), "reason", "rejected: replay stays in the loop", "cached",
		               cached));
		json_decref(ans);
		return NULL;
	}
	q->kind = PK_READY;
	q->source = SRC_LLM;
	q->mask = cand ^ cur ? cand ^ cur : mask;
	q->ready = cand & q->mask;
	r->source = SRC_LLM;
	r->confidence = 60;
	snprintf(r->reason, sizeof(r->reason), "llm: %s",
	         json_string_value(json_object_get(ans, "reason")) ?: "value leaves the loop");
	emit(inf, "infer.llm",
	     json_pack("{s:o,s:o,s:o,s:o,s:s,s:b,s:i}", "addr", hex(addr), "pc", hex(pc), "mask",
	               hex(q->mask), "value", hex(q->ready), "reason",
	               "accepted: replay leaves the loop", "cached", cached, "confidence", 60));
	json_decref(ans);
	return q;
}

/* ---- lifecycle ------------------------------------------------------------ */

static int load_models_file(struct ms_infer *inf, const char *path, struct ms_err *e)
{
	json_error_t je;
	FILE *f = fopen(path, "rb");
	if (!f)
		return ms_fail(e, 400, "bad_models", "cannot open models file %s: %s", path,
		               strerror(errno));
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fclose(f);
	if (sz > 64l * 1024 * 1024)
		return ms_fail(e, 413, "bad_models", "models file %s is too large", path);
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		return ms_fail(e, 400, "bad_models", "models file %s: line %d: %s", path, je.line,
		               je.text);
	int rc = ms_infer_import(inf, j, e);
	json_decref(j);
	return rc;
}

/*
 * The interpreter's side-effect-free read of one of our registers (lock
 * held). After the decision only configuration registers answer (written
 * by the firmware, not data): a status or data read there is what the
 * decision leads to.
 */
static bool peek_reg(void *ud, uint32_t addr, bool after, uint32_t *v)
{
	struct ms_infer *inf = ud;
	struct periph *p = periph_find(inf, addr & ~(PAGE - 1));
	if (!p)
		return false;
	struct reg *r = reg_find(p, addr & (PAGE - 1));
	if (!r)
		r = reg_find(p, addr & (PAGE - 4));
	if (after && (!r || !r->written_or || r->rx || r->tx || r->tx_cand || r->rx_mask))
		return false;
	*v = r ? r->value : 0;
	return true;
}

static bool is_our_page(void *ud, uint32_t addr)
{
	struct ms_infer *inf = ud;
	return window_covers(inf, addr) || periph_find(inf, addr & ~(PAGE - 1)) != NULL;
}

struct ms_infer *ms_infer_new(uc_engine *uc, const struct ms_infer_host *host,
                              const struct ms_infer_opts *opts, struct ms_err *e)
{
	struct ms_infer *inf = calloc(1, sizeof(*inf));
	if (!inf) {
		ms_fail(e, 500, "internal", "out of memory");
		return NULL;
	}
	inf->uc = uc;
	if (host)
		inf->host = *host;
	inf->mode = opts ? opts->mode : MS_INFER_RULES;
	inf->cpu_hz = opts && opts->cpu_hz ? opts->cpu_hz : 16000000ull;
	inf->no_delay_skip = opts && opts->no_delay_skip;
	inf->svd_pick = -1;
	pthread_mutex_init(&inf->lock, NULL);
	inf->dis = ms__dis_new(uc);
	if (inf->dis) {
		ms__dis_set_device_test(inf->dis, is_our_page, inf);
		ms__dis_set_peek(inf->dis, peek_reg, inf);
	}
	inf->dcache = calloc(DCACHE, sizeof(*inf->dcache));
	if (!inf->dis || !inf->dcache) {
		ms_fail(e, 500, "internal", "cannot open the disassembler");
		ms_infer_free(inf);
		return NULL;
	}
	if (opts && opts->n_svd) {
		if (opts->n_svd > 16) {
			ms_fail(e, 400, "bad_svd", "at most 16 svd files");
			ms_infer_free(inf);
			return NULL;
		}
		inf->svd = calloc(opts->n_svd, sizeof(*inf->svd));
		inf->svd_path = calloc(opts->n_svd, sizeof(*inf->svd_path));
		for (size_t i = 0; i < opts->n_svd; i++) {
			char err[256];
			struct ms__svd *s;
			if (ms__svd_load(opts->svd_paths[i], &s, err, sizeof(err)) < 0) {
				ms_fail(e, 400, "bad_svd", "%s: %s", opts->svd_paths[i], err);
				ms_infer_free(inf);
				return NULL;
			}
			inf->svd[inf->nsvd] = s;
			inf->svd_path[inf->nsvd] = strdup(opts->svd_paths[i]);
			inf->nsvd++;
		}
	} else if (opts && opts->mode == MS_INFER_SVD) {
		ms_fail(e, 400, "bad_svd", "svd mode needs at least one svd file");
		ms_infer_free(inf);
		return NULL;
	}
	if (opts && opts->mode == MS_INFER_LLM) {
		struct ms__llm_cfg c = {
		    .base_url = opts->llm_base_url,
		    .model = opts->llm_model,
		    .key = opts->llm_key,
		    .cache_dir = opts->llm_cache_dir,
		    .firmware_hash = opts->firmware_hash,
		    .timeout_ms = opts->llm_timeout_ms,
		    .budget = opts->llm_budget,
		};
		char err[256];
		inf->llm = ms__llm_new(&c, err, sizeof(err));
		if (!inf->llm) {
			ms_fail(e, 400, "bad_llm", "%s", err);
			ms_infer_free(inf);
			return NULL;
		}
	}
	if (opts && opts->models_path) {
		if (load_models_file(inf, opts->models_path, e) < 0) {
			ms_infer_free(inf);
			return NULL;
		}
	}
	return inf;
}

void ms_infer_free(struct ms_infer *inf)
{
	if (!inf)
		return;
	for (int i = 0; i < inf->np; i++)
		periph_free(inf->p[i]);
	for (int i = 0; i < inf->nsvd; i++) {
		ms__svd_free(inf->svd[i]);
		free(inf->svd_path[i]);
	}
	free(inf->svd);
	free(inf->svd_path);
	ms__llm_free(inf->llm);
	ms__dis_free(inf->dis);
	free(inf->dcache);
	pthread_mutex_destroy(&inf->lock);
	free(inf);
}

void ms_infer_reset(struct ms_infer *inf)
{
	pthread_mutex_lock(&inf->lock);
	for (int i = 0; i < inf->np; i++) {
		struct periph *p = inf->p[i];
		for (int k = 0; k < p->nregs; k++) {
			p->regs[k].value = p->regs[k].reset;
			p->regs[k].ntx = 0;
		}
		p->armed = false;
		p->tx_irq_armed = p->tx_irq_event = p->tx_done_event = false;
		p->rx_pended = false;
		p->explore = 0;
	}
	/* No external event is pending after a reset (the links are knowledge: kept). */
	for (int i = 0; i < inf->nevl; i++)
		inf->evl[i].held = false;
	inf->blk.serial = 0;
	inf->cursor_serial = 0;
	pthread_mutex_unlock(&inf->lock);
}

/* ---- state, export, import ---------------------------------------------- */

json_t *ms_infer_state_save(struct ms_infer *inf)
{
	pthread_mutex_lock(&inf->lock);
	json_t *ps = json_array();
	for (int i = 0; i < inf->np; i++) {
		struct periph *p = inf->p[i];
		json_t *vals = json_array();
		for (int k = 0; k < p->nregs; k++)
			json_array_append_new(vals,
			                      json_pack("[I,I,i]", (json_int_t)p->regs[k].off,
			                                (json_int_t)p->regs[k].value,
			                                p->regs[k].ntx));
		json_array_append_new(
		    ps,
		    json_pack("{s:I,s:b,s:b,s:b,s:b,s:b,s:I,s:i,s:o}", "base", (json_int_t)p->base,
		              "armed", p->armed, "tx_armed", p->tx_irq_armed, "tx_event",
		              p->tx_irq_event, "tx_done", p->tx_done_event, "rx_pended",
		              p->rx_pended, "rx_mark", (json_int_t)p->rx_pend_consumed, "explore",
		              p->explore, "regs", vals));
	}
	json_t *st =
	    json_pack("{s:i,s:I,s:I,s:o}", "version", 1, "consumed", (json_int_t)inf->consumed,
	              "last_avail", (json_int_t)inf->last_avail, "periphs", ps);
	pthread_mutex_unlock(&inf->lock);
	return st;
}

int ms_infer_state_load(struct ms_infer *inf, json_t *state, struct ms_err *e)
{
	json_t *ps = json_object_get(state, "periphs");
	if (!json_is_object(state) || json_integer_value(json_object_get(state, "version")) != 1 ||
	    !json_is_array(ps))
		return ms_fail(e, 400, "bad_state", "inference state: wrong shape or version");
	/* Validate completely before changing anything. */
	size_t i;
	json_t *pj;
	json_array_foreach(ps, i, pj)
	{
		if (!json_is_integer(json_object_get(pj, "base")) ||
		    !json_is_array(json_object_get(pj, "regs")))
			return ms_fail(e, 400, "bad_state",
			               "inference state: peripheral %zu malformed", i);
	}
	pthread_mutex_lock(&inf->lock);
	for (int k = 0; k < inf->np; k++) {
		struct periph *p = inf->p[k];
		for (int q = 0; q < p->nregs; q++) {
			p->regs[q].value = p->regs[q].reset;
			p->regs[q].ntx = 0;
		}
		p->armed = p->tx_irq_armed = p->tx_irq_event = p->rx_pended = false;
		p->tx_done_event = false;
		p->explore = 0;
	}
	/* Held-back events belong to the state left behind, not to the one restored. */
	for (int k = 0; k < inf->nevl; k++)
		inf->evl[k].held = false;
	inf->consumed = (uint64_t)json_integer_value(json_object_get(state, "consumed"));
	inf->last_avail = (size_t)json_integer_value(json_object_get(state, "last_avail"));
	json_array_foreach(ps, i, pj)
	{
		uint32_t base = (uint32_t)json_integer_value(json_object_get(pj, "base"));
		struct periph *p = periph_find(inf, base);
		if (!p)
			continue; /* inferred after the snapshot was taken: cannot exist in it */
		p->armed = json_is_true(json_object_get(pj, "armed"));
		p->tx_irq_armed = json_is_true(json_object_get(pj, "tx_armed"));
		p->tx_irq_event = json_is_true(json_object_get(pj, "tx_event"));
		p->tx_done_event = json_is_true(json_object_get(pj, "tx_done"));
		p->rx_pended = json_is_true(json_object_get(pj, "rx_pended"));
		p->rx_pend_consumed = (uint64_t)json_integer_value(json_object_get(pj, "rx_mark"));
		p->explore = (int)json_integer_value(json_object_get(pj, "explore"));
		size_t k;
		json_t *rv;
		json_array_foreach(json_object_get(pj, "regs"), k, rv)
		{
			struct reg *r =
			    reg_get(p, (uint32_t)json_integer_value(json_array_get(rv, 0)));
			if (!r)
				continue;
			r->value = (uint32_t)json_integer_value(json_array_get(rv, 1));
			r->ntx = (uint8_t)json_integer_value(json_array_get(rv, 2));
		}
	}
	pthread_mutex_unlock(&inf->lock);
	return 0;
}

static const char *reg_category(const struct reg *r)
{
	if (r->category[0])
		return r->category;
	/* A transmit candidate only ever given 0 and 1 is a task or an acknowledge. */
	if (r->rx || r->tx || (r->tx_cand && r->written_or > 1))
		return "data";
	bool polled = r->rx_mask != 0;
	uint32_t tested = r->rx_mask; /* bits the code branches on */
	for (int i = 0; i < r->npolls; i++)
		if (r->polls[i].kind != PK_NONE) {
			polled = true;
			tested |= r->polls[i].mask;
		}
	if (r->model == RM_COUNTER || r->model == RM_CONST)
		return "status";
	/* Flags the firmware only acknowledges (0, ~flag or the flag itself): status. */
	if (polled && (r->sparse_or & ~tested) == 0)
		return "status";
	/* Testing only bits it set itself: the firmware reads back its configuration (TXEIE). */
	if (polled && (tested & ~r->written_or) == 0)
		return "control";
	if (polled)
		return "control+status";
	if (r->writes)
		return "control";
	if (r->reads)
		return "status";
	return "unknown";
}

static json_t *reg_json(const struct periph *p, const struct reg *r, bool full)
{
	json_t *o = json_pack("{s:o,s:o,s:s,s:s,s:s,s:o,s:o,s:i,s:I,s:I,s:s,s:s}", "offset",
	                      hex(r->off), "addr", hex(p->base + r->off), "name", r->name,
	                      "category", reg_category(r), "model", model_names[r->model], "value",
	                      hex(r->value), "reset", hex(r->reset), "confidence", r->confidence,
	                      "reads", (json_int_t)r->reads, "writes", (json_int_t)r->writes,
	                      "source", source_names[r->source], "reason", r->reason);
	if (r->rx_mask) {
		json_object_set_new(o, "rx_mask", hex(r->rx_mask));
		json_object_set_new(o, "rx_ready", hex(r->rx_ready));
		json_object_set_new(o, "rx_notready", hex(r->rx_notready));
		json_object_set_new(o, "rx_data", hex((uint32_t)r->rx_data));
	}
	if (r->size && r->size < 4)
		json_object_set_new(o, "size", json_integer(r->size));
	if (r->w1c_mask)
		json_object_set_new(o, "w1c_mask", hex(r->w1c_mask));
	if (r->idle_mask)
		json_object_set_new(o, "idle_mask", hex(r->idle_mask));
	if (r->model == RM_SET || r->model == RM_CLR || r->model == RM_BSRR)
		json_object_set_new(o, "alias_of", hex(r->alias));
	if (r->rx)
		json_object_set_new(o, "rx", json_true());
	if (r->tx)
		json_object_set_new(o, "tx", json_true());
	if (r->dma_tx)
		json_object_set_new(o, "dma_tx", json_true());
	if (full || r->npolls) {
		json_t *pa = json_array();
		for (int i = 0; i < r->npolls; i++)
			json_array_append_new(
			    pa,
			    json_pack("{s:o,s:s,s:o,s:o,s:s}", "pc", hex(r->polls[i].pc), "kind",
			              pkind_names[r->polls[i].kind], "mask", hex(r->polls[i].mask),
			              "value", hex(r->polls[i].ready), "source",
			              source_names[r->polls[i].source]));
		json_object_set_new(o, "polls", pa);
	}
	return o;
}

static uint32_t periph_size(const struct periph *p)
{
	uint32_t s = 0x400;
	while (s < p->extent && s < PAGE)
		s <<= 1;
	return s;
}

static json_t *periph_json(const struct periph *p, bool full)
{
	json_t *regs = json_array();
	for (int i = 0; i < p->nregs; i++)
		json_array_append_new(regs, reg_json(p, &p->regs[i], full));
	json_t *o =
	    json_pack("{s:o,s:i,s:i,s:s,s:s,s:b,s:I,s:I,s:o}", "base", hex(p->base), "size",
	              (int)periph_size(p), "map_size", (int)PAGE, "name", p->name, "source",
	              source_names[p->source], "uart", p->uart, "reads", (json_int_t)p->reads,
	              "writes", (json_int_t)p->writes, "registers", regs);
	json_object_set_new(o, "irq", p->irq >= 0 ? json_integer(p->irq) : json_null());
	if (periph_split(p)) {
		json_t *units = json_array();
		for (unsigned b = 0; b < PAGE / BLOCK; b++)
			if (p->birq[b] >= 0)
				json_array_append_new(units,
				                      json_pack("{s:o,s:i}", "offset",
				                                hex(b * BLOCK), "irq", p->birq[b]));
		json_object_set_new(o, "irqs", units);
	}
	if (p->timer)
		json_object_set_new(o, "timer",
		                    json_pack("{s:I,s:s,s:i}", "period_ns",
		                              (json_int_t)p->period_ns, "reason", p->timer_reason,
		                              "irq", p->timer_irq >= 0 ? p->timer_irq : p->irq));
	return o;
}

/* Every device as JSON (for_export: the device-map form); caller holds inf->lock. */
static json_t *periph_array(struct ms_infer *inf, bool for_export)
{
	json_t *a = json_array();
	for (int i = 0; i < inf->np; i++)
		json_array_append_new(a, periph_json(inf->p[i], for_export));
	return a;
}

json_t *ms_infer_peripherals(struct ms_infer *inf)
{
	pthread_mutex_lock(&inf->lock);
	json_t *a = periph_array(inf, false);
	pthread_mutex_unlock(&inf->lock);
	return a;
}

json_t *ms_infer_export(struct ms_infer *inf)
{
	pthread_mutex_lock(&inf->lock);
	json_t *a = periph_array(inf, true);
	json_t *o = json_pack("{s:s,s:i,s:o}", "format", "machineserver-device-map", "version", 1,
	                      "peripherals", a);
	pthread_mutex_unlock(&inf->lock);
	return o;
}

static int model_from_name(const char *s)
{
	for (int i = 0; i < RM__N; i++)
		if (s && strcmp(s, model_names[i]) == 0)
			return i;
	return -1;
}

static int pkind_from_name(const char *s)
{
	for (int i = 0; i < PK__N; i++)
		if (s && strcmp(s, pkind_names[i]) == 0)
			return i;
	return -1;
}

static int source_from_name(const char *s)
{
	for (int i = 0; i < SRC__N; i++)
		if (s && strcmp(s, source_names[i]) == 0)
			return i;
	return -1;
}

/* Check one register entry of a device map; message names what is wrong. */
static int check_reg(json_t *rj, char *err, size_t cap)
{
	uint32_t v;
	if (!json_is_object(rj)) {
		snprintf(err, cap, "register is not an object");
		return -1;
	}
	if (!get_u32(json_object_get(rj, "offset"), &v) || v >= PAGE) {
		snprintf(err, cap, "register offset missing or outside the page");
		return -1;
	}
	json_t *m = json_object_get(rj, "model");
	if (m && model_from_name(json_string_value(m)) < 0) {
		snprintf(err, cap, "unknown model at offset 0x%x", v);
		return -1;
	}
	static const char *const nums[] = {"value",    "reset",       "rx_mask",
	                                   "rx_ready", "rx_notready", "rx_data",
	                                   "w1c_mask", "alias_of",    "idle_mask"};
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		json_t *x = json_object_get(rj, nums[i]);
		uint32_t t;
		if (x && !get_u32(x, &t)) {
			snprintf(err, cap, "%s at offset 0x%x is not a 32-bit number", nums[i], v);
			return -1;
		}
	}
	json_t *pl = json_object_get(rj, "polls");
	if (pl && !json_is_array(pl)) {
		snprintf(err, cap, "polls at offset 0x%x is not an array", v);
		return -1;
	}
	size_t i;
	json_t *q;
	json_array_foreach(pl, i, q)
	{
		uint32_t t;
		if (!json_is_object(q) || !get_u32(json_object_get(q, "pc"), &t) ||
		    !get_u32(json_object_get(q, "mask"), &t) ||
		    !get_u32(json_object_get(q, "value"), &t) ||
		    pkind_from_name(json_string_value(json_object_get(q, "kind"))) < 0) {
			snprintf(err, cap, "poll %zu at offset 0x%x malformed", i, v);
			return -1;
		}
	}
	json_t *nm = json_object_get(rj, "name");
	if (nm && (!json_is_string(nm) || strlen(json_string_value(nm)) >= 40)) {
		snprintf(err, cap, "name at offset 0x%x is not a short string", v);
		return -1;
	}
	return 0;
}

int ms_infer_import(struct ms_infer *inf, json_t *map, struct ms_err *e)
{
	char err[160];
	json_t *ps = json_object_get(map, "peripherals");
	if (!json_is_object(map) ||
	    strcmp(json_string_value(json_object_get(map, "format")) ?: "",
	           "machineserver-device-map") ||
	    json_integer_value(json_object_get(map, "version")) != 1 || !json_is_array(ps))
		return ms_fail(
		    e, 400, "bad_models",
		    "device map: expected {\"format\":\"machineserver-device-map\",\"version\":1,"
		    "\"peripherals\":[...]}");
	if (json_array_size(ps) > MAX_PERIPHS)
		return ms_fail(e, 413, "bad_models", "device map: more than %d peripherals",
		               MAX_PERIPHS);
	size_t i;
	json_t *pj;
	json_array_foreach(ps, i, pj)
	{
		uint32_t base;
		if (!json_is_object(pj) || !get_u32(json_object_get(pj, "base"), &base) ||
		    (base & (PAGE - 1)) || !ms_infer_is_peripheral_addr(base))
			return ms_fail(
			    e, 400, "bad_models",
			    "device map: peripheral %zu: base missing, unaligned or outside the "
			    "peripheral windows",
			    i);
		json_t *regs = json_object_get(pj, "registers");
		if (!json_is_array(regs) || json_array_size(regs) > PAGE)
			return ms_fail(e, 400, "bad_models",
			               "device map: peripheral %zu: bad registers", i);
		json_t *irq = json_object_get(pj, "irq");
		if (irq && !json_is_null(irq) &&
		    (!json_is_integer(irq) || json_integer_value(irq) < 0 ||
		     json_integer_value(irq) > 255))
			return ms_fail(e, 400, "bad_models", "device map: peripheral %zu: bad irq",
			               i);
		json_t *units = json_object_get(pj, "irqs"), *u;
		size_t ui;
		if (units && !json_is_array(units))
			return ms_fail(e, 400, "bad_models",
			               "device map: peripheral %zu: irqs is not an array", i);
		json_array_foreach(units, ui, u)
		{
			uint32_t uo;
			json_t *ul = json_object_get(u, "irq");
			if (!get_u32(json_object_get(u, "offset"), &uo) || uo % BLOCK ||
			    uo >= PAGE || !json_is_integer(ul) || json_integer_value(ul) < 0 ||
			    json_integer_value(ul) > 255)
				return ms_fail(
				    e, 400, "bad_models",
				    "device map: peripheral %zu: irqs entry %zu needs an "
				    "offset (a multiple of 0x400 in the page) and an irq 0..255",
				    i, ui);
		}
		size_t k;
		json_t *rj;
		json_array_foreach(regs, k, rj)
		{
			if (check_reg(rj, err, sizeof(err)) < 0)
				return ms_fail(e, 400, "bad_models",
				               "device map: peripheral %zu: %s", i, err);
		}
		for (size_t j = 0; j < i; j++) {
			uint32_t b2 = 0;
			get_u32(json_object_get(json_array_get(ps, j), "base"), &b2);
			if (b2 == base)
				return ms_fail(e, 400, "bad_models", "device map: base 0x%x twice",
				               base);
		}
	}
	pthread_mutex_lock(&inf->lock);
	json_array_foreach(ps, i, pj)
	{
		uint32_t base = 0; /* validated above */
		get_u32(json_object_get(pj, "base"), &base);
		struct periph *p = periph_find(inf, base);
		if (!p)
			p = periph_new(inf, base, SRC_USER);
		if (!p)
			break;
		int src = source_from_name(json_string_value(json_object_get(pj, "source")));
		p->source = src >= 0 ? (uint8_t)src : SRC_USER;
		const char *nm = json_string_value(json_object_get(pj, "name"));
		if (nm)
			snprintf(p->name, sizeof(p->name), "%s", nm);
		json_t *irq = json_object_get(pj, "irq");
		p->irq = json_is_integer(irq) ? (int)json_integer_value(irq) : -1;
		json_t *u;
		size_t ui;
		json_array_foreach(json_object_get(pj, "irqs"), ui, u)
		{
			uint32_t uo = 0; /* validated above */
			get_u32(json_object_get(u, "offset"), &uo);
			int ul = (int)json_integer_value(json_object_get(u, "irq"));
			p->birq[uo / BLOCK] = ul;
			inf->irq_page[ul] = periph_index(inf, p) + 1;
		}
		p->uart = json_is_true(json_object_get(pj, "uart"));
		if (p->uart)
			inf->any_console = true;
		if (p->irq >= 0)
			inf->irq_page[p->irq] = periph_index(inf, p) + 1;
		json_int_t period =
		    json_integer_value(json_object_get(json_object_get(pj, "timer"), "period_ns"));
		if (period >= 10000 && period <= 60ll * 1000000000ll) {
			p->timer = true;
			p->timer_source = SRC_USER;
			json_t *ti = json_object_get(json_object_get(pj, "timer"), "irq");
			p->timer_irq = json_is_integer(ti) && json_integer_value(ti) >= 0 &&
			        json_integer_value(ti) <= 255
			    ? (int)json_integer_value(ti)
			    : p->irq;
			p->period_ns = (uint64_t)period;
			p->next_ns = 0;
			snprintf(p->timer_reason, sizeof(p->timer_reason),
			         "imported from a device map");
		}
		size_t k;
		json_t *rj;
		json_array_foreach(json_object_get(pj, "registers"), k, rj)
		{
			uint32_t off = 0, t;
			get_u32(json_object_get(rj, "offset"), &off);
			struct reg *r = reg_get(p, off);
			if (!r)
				break;
			int m = model_from_name(json_string_value(json_object_get(rj, "model")));
			if (m >= 0)
				r->model = (uint8_t)m;
			if (get_u32(json_object_get(rj, "reset"), &t))
				r->reset = t;
			r->value = r->reset;
			if (get_u32(json_object_get(rj, "w1c_mask"), &t))
				r->w1c_mask = t;
			if (get_u32(json_object_get(rj, "idle_mask"), &t))
				r->idle_mask = t;
			if (get_u32(json_object_get(rj, "size"), &t) &&
			    (t == 1 || t == 2 || t == 4))
				r->size = (uint8_t)t;
			if (get_u32(json_object_get(rj, "alias_of"), &t))
				r->alias = t & (PAGE - 1);
			if (get_u32(json_object_get(rj, "rx_mask"), &t))
				r->rx_mask = t;
			if (get_u32(json_object_get(rj, "rx_ready"), &t))
				r->rx_ready = t;
			if (get_u32(json_object_get(rj, "rx_notready"), &t))
				r->rx_notready = t;
			if (get_u32(json_object_get(rj, "rx_data"), &t))
				r->rx_data = (int32_t)(t & (PAGE - 1));
			r->rx = json_is_true(json_object_get(rj, "rx"));
			r->tx = json_is_true(json_object_get(rj, "tx"));
			r->dma_tx = json_is_true(json_object_get(rj, "dma_tx"));
			if (r->tx)
				r->model = RM_TX;
			if (r->rx)
				r->model = RM_RX;
			const char *rn = json_string_value(json_object_get(rj, "name"));
			if (rn)
				snprintf(r->name, sizeof(r->name), "%s", rn);
			int rs = source_from_name(json_string_value(json_object_get(rj, "source")));
			r->source = rs >= 0 ? (uint8_t)rs : SRC_USER;
			json_int_t cf = json_integer_value(json_object_get(rj, "confidence"));
			r->confidence = cf > 0 && cf <= 100 ? (uint8_t)cf : 70;
			snprintf(r->reason, sizeof(r->reason), "imported from a device map");
			size_t qi;
			json_t *qj;
			json_array_foreach(json_object_get(rj, "polls"), qi, qj)
			{
				uint32_t pc = 0;
				get_u32(json_object_get(qj, "pc"), &pc);
				struct poll *q = poll_find(r, pc);
				if (!q)
					q = poll_add(r, pc);
				if (!q)
					break;
				q->kind = (uint8_t)pkind_from_name(
				    json_string_value(json_object_get(qj, "kind")));
				get_u32(json_object_get(qj, "mask"), &q->mask);
				get_u32(json_object_get(qj, "value"), &q->ready);
				q->ready &= q->mask;
				int qs = source_from_name(
				    json_string_value(json_object_get(qj, "source")));
				q->source = qs >= 0 ? (uint8_t)qs : SRC_USER;
			}
		}
		inf->n_import++;
		if (inf->uc)
			periph_map(inf, p);
	}
	pthread_mutex_unlock(&inf->lock);
	emit(inf, "infer.import", json_pack("{s:i}", "peripherals", (int)json_array_size(ps)));
	return 0;
}

int ms_infer_patch(struct ms_infer *inf, json_t *patch, struct ms_err *e)
{
	uint32_t addr;
	if (!json_is_object(patch) || !get_u32(json_object_get(patch, "addr"), &addr))
		return ms_fail(e, 400, "bad_patch", "patch needs \"addr\" (a number)");
	const char *model = json_string_value(json_object_get(patch, "model"));
	json_t *mj = json_object_get(patch, "model");
	if (mj && model_from_name(model) < 0)
		return ms_fail(e, 400, "bad_patch",
		               "unknown model (one of memory, status, rx, tx, w1c, "
		               "set, clear, bsrr, counter, const)");
	static const char *const nums[] = {"reset", "value", "ready_mask", "ready_value",
	                                   "w1c_mask"};
	uint32_t nv[5];
	bool has[5];
	for (int i = 0; i < 5; i++) {
		json_t *x = json_object_get(patch, nums[i]);
		has[i] = x != NULL;
		if (x && !get_u32(x, &nv[i]))
			return ms_fail(e, 400, "bad_patch", "%s is not a 32-bit number", nums[i]);
	}
	json_t *cj = json_object_get(patch, "category");
	const char *cat = json_string_value(cj);
	if (cj &&
	    (!cat ||
	     (strcmp(cat, "control") && strcmp(cat, "status") && strcmp(cat, "data") &&
	      strcmp(cat, "control+status"))))
		return ms_fail(e, 400, "bad_patch",
		               "category is one of control, status, data, "
		               "control+status");
	json_t *nj = json_object_get(patch, "name");
	if (nj && (!json_is_string(nj) || strlen(json_string_value(nj)) >= 40))
		return ms_fail(e, 400, "bad_patch", "name must be a string under 40 bytes");
	pthread_mutex_lock(&inf->lock);
	struct periph *p = periph_find(inf, addr & ~(PAGE - 1));
	struct reg *r = p ? reg_find(p, addr & (PAGE - 1)) : NULL;
	if (!r && p)
		r = reg_find(p, addr & (PAGE - 4));
	if (!r) {
		pthread_mutex_unlock(&inf->lock);
		return ms_fail(e, 404, "register_not_found", "no inferred register at 0x%x", addr);
	}
	if (mj) {
		r->model = (uint8_t)model_from_name(model);
		r->rx = r->model == RM_RX;
		r->tx = r->model == RM_TX;
		if (r->tx)
			p->uart = true;
	}
	if (has[0])
		r->reset = nv[0];
	if (has[1])
		r->value = nv[1];
	if (has[4])
		r->w1c_mask = nv[4];
	if (has[2] || has[3]) {
		/* A hand-given ready answer applies to every poll of this register. */
		uint32_t m = has[2] ? nv[2] : 0xffffffffu;
		uint32_t v = has[3] ? nv[3] : m;
		for (int i = 0; i < r->npolls; i++) {
			r->polls[i].kind = PK_READY;
			r->polls[i].mask = m;
			r->polls[i].ready = v & m;
			r->polls[i].source = SRC_USER;
		}
		r->value = (r->value & ~m) | (v & m);
		r->reset = (r->reset & ~m) | (v & m);
	}
	if (cat)
		snprintf(r->category, sizeof(r->category), "%s", cat);
	if (nj)
		snprintf(r->name, sizeof(r->name), "%s", json_string_value(nj));
	r->source = SRC_USER;
	r->confidence = 100;
	snprintf(r->reason, sizeof(r->reason), "set by hand");
	pthread_mutex_unlock(&inf->lock);
	emit(inf, "infer.patch", json_pack("{s:o}", "addr", hex(addr)));
	return 0;
}

/* ---- external events ------------------------------------------------------ */

static bool run_differs(const struct ms__run *a, const struct ms__run *b)
{
	return a->end != b->end || a->acc != b->acc || a->acc_addr != b->acc_addr ||
	    a->acc_write != b->acc_write || a->ninsn != b->ninsn;
}

/* SVD names of interrupt enable or mask registers (a ...CLR alias only clears them). */
static bool enable_name(const char *name)
{
	static const char *const names[] = {"IMR",      "IER",     "IE",   "DIER", "INTEN",
	                                    "INTENSET", "INTMASK", "IMSC", "IENR", "IENF"};
	const char *dot = strrchr(name, '.');
	const char *n = dot ? dot + 1 : name;
	if (name_ends(n, "CLR"))
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(n, names[i]) == 0)
			return true;
	return false;
}

/*
 * Whether the firmware enabled the event's interrupt in the peripheral fp,
 * whose flag register is at offset flag_off. Only registers in the flag's
 * 1 KiB block count (STM32 packs several peripherals per page: the AFIO
 * and GPIO writes beside EXTI are not its enables). With an SVD, the
 * block's interrupt enable/mask registers by name (EXTI IMR, GPIOTE
 * INTENSET) decide. Without one, the enable is the register whose en_bit
 * the firmware acted on last (see stamp): configuring a line writes its
 * trigger and its mask bit (the mask usually last, and a disable writes it
 * again), while unrelated configuration leaves that bit alone. When that
 * register is never read and another never-read register 4 bytes below
 * carries the same bit, the two are a set/clear pair (INTENSET/INTENCLR,
 * IER/IDR) and the last action was a clear; 4 bytes above, a set. Called
 * with inf->lock held; why explains the answer.
 */
static bool line_enabled(struct periph *fp, uint32_t flag_off, uint32_t en_bit, char *why,
                         size_t cap)
{
	uint32_t e = 1u << en_bit;
	const struct reg *named = NULL, *last = NULL;
	bool any_named = false;
	for (int i = 0; i < fp->nregs; i++) {
		const struct reg *c = &fp->regs[i];
		if (c->off == flag_off || c->event_mask || (c->off >> 10) != (flag_off >> 10))
			continue;
		if (c->name[0] && enable_name(c->name)) {
			any_named = true;
			if (!named || (c->value & e))
				named = c;
		}
		if (c->chg[en_bit] && (!last || c->chg[en_bit] > last->chg[en_bit]))
			last = c;
	}
	if (any_named) {
		snprintf(why, cap, "%s bit %u is %s", named->name, en_bit,
		         (named->value & e) ? "set" : "clear");
		return (named->value & e) != 0;
	}
	if (!last) {
		snprintf(why, cap, "the firmware never set bit %u in a register of the device",
		         en_bit);
		return false;
	}
	if (!last->reads) {
		const struct reg *below = last->off >= 4 ? reg_find(fp, last->off - 4) : NULL;
		const struct reg *above = reg_find(fp, last->off + 4);
		if (below && !below->reads && (below->written_or & e)) {
			snprintf(why, cap,
			         "bit %u last written to +0x%x, the clear half of a set/clear pair",
			         en_bit, last->off);
			return false;
		}
		if (above && !above->reads && (above->written_or & e)) {
			snprintf(why, cap,
			         "bit %u last written to +0x%x, the set half of a set/clear pair",
			         en_bit, last->off);
			return true;
		}
	}
	snprintf(why, cap,
	         "bit %u of +0x%x (the last register whose bit %u the firmware acted on) is %s",
	         en_bit, last->off, en_bit, (last->value & e) ? "set" : "clear");
	return (last->value & e) != 0;
}

#define MAX_FLAG_CANDIDATES 8

/*
 * Find what an external event on interrupt line irq, changing the input
 * bits in_mask at in_addr, sets, from the line's handler alone, so that it
 * works for any part: an interrupt handler reads the register that says
 * which event happened and tests a bit of it (STM32 `if (EXTI->PR & 1)`,
 * Nordic `if (NRF_GPIOTE->EVENTS_IN[0])`, HAL's __HAL_GPIO_EXTI_GET_IT),
 * one after the other when a line serves several inputs (EXTI9_5, a loop
 * over GPIOTE channels). The handler is walked from its vector through its
 * device loads (thumb.c: as if each read 0, "not this one"), and from each
 * load it is run with each single bit set: the bits that change its course
 * are the ones it tests. When nearly every bit does, the register is an
 * event word compared with zero (Nordic EVENTS_x) that the event sets to
 * 1. The flag chosen is, in order: a tested bit equal to the injected
 * pin's bit (EXTI lines are numbered as pins); the first candidate whose
 * interrupt the firmware enabled in the peripheral (the channel it set up
 * for this line); the first candidate. Its enable bit is the tested bit,
 * or for an event word the word's index (offset / 4, modulo 32): the
 * layout in which each event register has one interrupt-enable bit by
 * position (Nordic's INTEN, where EVENTS_IN[0] at 0x100 is bit 0). A
 * handler that reads the input register and tests no flag has none (the
 * level is the event). Called with inf->lock held; NULL when the handler
 * cannot be read this way. The link is kept per (line, input).
 */
static struct evlink *evlink_find(struct ms_infer *inf, int irq, uint32_t in_addr, uint32_t in_mask)
{
	for (int i = 0; i < inf->nevl; i++) {
		struct evlink *l = &inf->evl[i];
		if (l->irq == irq && l->in_addr == (in_addr & ~3u) && l->in_mask == in_mask)
			return l;
	}
	if (!inf->host.vtor || inf->nevl >= (int)(sizeof(inf->evl) / sizeof(inf->evl[0])))
		return NULL;
	uint32_t h = 0;
	uint32_t vt = inf->host.vtor(inf->host.ud);
	if (uc_mem_read(inf->uc, vt + 4u * (16u + (uint32_t)irq), &h, 4) != UC_ERR_OK || !h)
		return NULL;
	/* The register file at handler entry: an exception frame below the stack, EXC_RETURN. */
	struct ms__cpu cpu;
	ms__cpu_read(inf->uc, &cpu);
	cpu.r[13] -= 32;
	cpu.r[14] = 0xfffffff9u;
	cpu.r[15] = h & ~1u;
	struct ms__devload c[MAX_FLAG_CANDIDATES];
	int n =
	    ms__device_loads(inf->dis, &cpu, 16u + (uint32_t)irq, h, 1024, c, MAX_FLAG_CANDIDATES);
	struct evlink cand = {.irq = irq, .in_addr = in_addr & ~3u, .in_mask = in_mask};
	struct evlink first = {0}, enabled = {0}, pin = {0}, level = {0};
	uint32_t first_pc = 0, enabled_pc = 0, pin_pc = 0, level_pc = 0, tested_first = 0,
	         tested_enabled = 0, tested_pin = 0;
	for (int i = 0; i < n && !pin.linked; i++) {
		if (!ms_infer_is_peripheral_addr(c[i].addr))
			continue;
		if ((c[i].addr & ~3u) == (in_addr & ~3u)) {
			/* The handler reads the pin: the level may be the whole event. */
			if (!level.linked) {
				level = cand;
				level.linked = level.level_only = true;
				level.flag_addr = c[i].addr;
				level_pc = c[i].pc;
			}
			continue;
		}
		struct ms__run base, run;
		uint32_t tested = 0;
		ms__simulate(inf->dis, &c[i].at, c[i].pc, c[i].addr, 0, 96, &base);
		for (int b = 0; b < 32; b++) {
			ms__simulate(inf->dis, &c[i].at, c[i].pc, c[i].addr, 1u << b, 96, &run);
			if (run_differs(&run, &base))
				tested |= 1u << b;
		}
		if (!tested)
			continue;
		struct evlink l = cand;
		l.linked = true;
		l.word = popcount32(tested) >= 24;
		l.flag_addr = c[i].addr;
		l.flag_bit = l.word ? 0 : (uint32_t)__builtin_ctz(tested);
		if (!l.word && (tested & in_mask)) {
			l.flag_bit = (uint32_t)__builtin_ctz(tested & in_mask);
			l.en_bit = l.flag_bit;
			pin = l;
			pin_pc = c[i].pc;
			tested_pin = tested;
			break;
		}
		l.en_bit = l.word ? ((c[i].addr & (PAGE - 1)) / 4) % 32 : l.flag_bit;
		if (!first.linked) {
			first = l;
			first_pc = c[i].pc;
			tested_first = tested;
		}
		struct periph *fp = periph_find(inf, c[i].addr & ~(PAGE - 1));
		char why[128];
		if (!enabled.linked && fp &&
		    line_enabled(fp, c[i].addr & (PAGE - 1), l.en_bit, why, sizeof(why))) {
			enabled = l;
			enabled_pc = c[i].pc;
			tested_enabled = tested;
		}
	}
	const char *reason;
	uint32_t pc, tested;
	struct evlink *l = &inf->evl[inf->nevl];
	if (pin.linked) {
		*l = pin;
		pc = pin_pc;
		tested = tested_pin;
		reason = "the handler tests the pin's bit in this register";
	} else if (enabled.linked) {
		*l = enabled;
		pc = enabled_pc;
		tested = tested_enabled;
		reason = "of the flags the handler tests, the one whose interrupt is enabled";
	} else if (first.linked) {
		*l = first;
		pc = first_pc;
		tested = tested_first;
		reason = l->word
		    ? "the handler's first read, compared as a whole: an event word"
		    : "the handler's first read and the bit it tests: the pending flag";
	} else if (level.linked) {
		*l = level;
		pc = level_pc;
		tested = 0;
		reason = "the handler reads the input register and no flag: the level is the event";
	} else {
		return NULL;
	}
	inf->nevl++;
	char insn[64];
	ms__dis_text(inf->dis, pc, insn, sizeof(insn));
	emit(inf, "infer.irq",
	     json_pack("{s:i,s:o,s:o,s:s,s:s,s:o,s:o,s:i,s:i,s:i,s:s}", "irq", irq, "addr",
	               hex(l->flag_addr), "pc", hex(pc), "insn", insn, "model",
	               l->level_only ? "event-level" : "event-flag", "mask",
	               hex(l->level_only ? 0 : 1u << l->flag_bit), "tested", hex(tested),
	               "enable_bit", (int)l->en_bit, "candidates", n, "confidence",
	               pin.linked ? 80 : 70, "reason", reason));
	return l;
}

int ms_infer_inject(struct ms_infer *inf, json_t *ev, struct ms_err *e)
{
	return ms_infer_inject_ex(inf, ev, NULL, e);
}

int ms_infer_inject_ex(struct ms_infer *inf, json_t *ev, json_t **decision, struct ms_err *e)
{
	uint32_t addr, mask, value;
	if (decision)
		*decision = NULL;
	const char *kind = json_string_value(json_object_get(ev, "kind"));
	if (!json_is_object(ev) || !kind || strcmp(kind, "gpio") ||
	    !get_u32(json_object_get(ev, "addr"), &addr) ||
	    !get_u32(json_object_get(ev, "mask"), &mask) ||
	    !get_u32(json_object_get(ev, "value"), &value))
		return ms_fail(
		    e, 400, "bad_event",
		    "event needs {\"kind\":\"gpio\",\"addr\",\"mask\",\"value\"[,\"irq\"]}");
	json_t *irqj = json_object_get(ev, "irq");
	int irq = -1;
	if (irqj) {
		if (!json_is_integer(irqj) || json_integer_value(irqj) < 0 ||
		    json_integer_value(irqj) > 255)
			return ms_fail(e, 400, "bad_event",
			               "irq must be an interrupt number 0..255");
		irq = (int)json_integer_value(irqj);
	}
	pthread_mutex_lock(&inf->lock);
	if (irq >= 0 && !(inf->host.irq_enabled && inf->host.irq_enabled(inf->host.ud, irq))) {
		pthread_mutex_unlock(&inf->lock);
		return ms_fail(e, 409, "irq_disabled",
		               "interrupt %d is not enabled by the firmware", irq);
	}
	struct periph *p = periph_for_event(inf, addr);
	if (!p) {
		pthread_mutex_unlock(&inf->lock);
		return ms_fail(e, 404, "device_not_found",
		               "0x%x is not in a peripheral window the inference serves", addr);
	}
	struct reg *r = reg_get(p, addr & (PAGE - 1));
	if (r) {
		r->input_mask |= mask;
		r->value = (r->value & ~mask) | (value & mask);
		if (r->category[0] == 0)
			snprintf(r->category, sizeof(r->category), "status");
		snprintf(r->reason, sizeof(r->reason), "input levels injected from outside");
	}
	bool raised = false;
	char why[128] = "";
	json_t *flag = json_null();
	if (irq >= 0) {
		struct evlink *l = evlink_find(inf, irq, addr, mask);
		struct periph *fp =
		    l && !l->level_only ? periph_find(inf, l->flag_addr & ~(PAGE - 1)) : NULL;
		if (l && l->level_only) {
			raised = true;
			snprintf(why, sizeof(why), "the handler reads the level itself");
		} else if (l && !fp) {
			/* The firmware never touched the flag's device: it set nothing up there. */
			snprintf(why, sizeof(why),
			         "the handler's flag device 0x%x is not configured",
			         l->flag_addr & ~(PAGE - 1));
		} else if (l) {
			/*
			 * The event happened: its flag reads set (also when the line
			 * is not enabled, as pending/event registers are on
			 * hardware) until the firmware acknowledges it.
			 */
			struct reg *fr = reg_get(fp, l->flag_addr & (PAGE - 1));
			if (fr && fr->ack == ACK_UNKNOWN && (fr->value & fr->event_mask) &&
			    fr->seen_set) {
				/*
				 * The firmware read the last event's flag set and never
				 * wrote the register: reading cleared it (Atmel PIO_ISR).
				 */
				fr->ack = ACK_READ;
				fr->value &= ~fr->event_mask;
				snprintf(fr->reason, sizeof(fr->reason),
				         "event flags 0x%x: set by the event, cleared by reading",
				         fr->event_mask);
				emit(inf, "infer.register",
				     json_pack("{s:o,s:s,s:o,s:s,s:i,s:s}", "addr",
				               hex(l->flag_addr), "model", "event-flag", "mask",
				               hex(fr->event_mask), "clear", "read", "confidence",
				               70, "reason", fr->reason));
			}
			if (fr) {
				uint32_t b = 1u << l->flag_bit;
				fr->seen_set = false;
				fr->event_mask |= b;
				fr->value |= b;
				if (fr->category[0] == 0)
					snprintf(fr->category, sizeof(fr->category), "status");
				flag = json_pack("{s:o,s:o}", "addr", hex(l->flag_addr), "mask",
				                 hex(b));
				raised = line_enabled(fp, fr->off, l->en_bit, why, sizeof(why));
				l->held = !raised;
			}
		} else {
			/*
			 * The handler could not be read: its branches on event bits
			 * each take their event side once instead.
			 */
			struct periph *q = inf->irq_page[irq] ? inf->p[inf->irq_page[irq] - 1] : p;
			q->episode++;
			q->explore = 64;
			q->explore_timer = true;
			raised = true;
			snprintf(why, sizeof(why),
			         "flag not found in the handler: exploring its branches");
		}
		if (raised && inf->host.irq_set_pending) {
			inf->host.irq_set_pending(inf->host.ud, irq);
			inf->n_irq++;
		}
	}
	json_t *d = json_pack("{s:o,s:o,s:o,s:i,s:b,s:s,s:o}", "addr", hex(addr), "mask", hex(mask),
	                      "value", hex(value & mask), "irq", irq, "raised", raised, "reason",
	                      why, "flag", flag);
	if (decision && d)
		*decision = json_incref(d);
	emit(inf, "infer.inject", d);
	pthread_mutex_unlock(&inf->lock);
	return 0;
}

json_t *ms_infer_mmio_recent(struct ms_infer *inf, uint64_t from, size_t limit)
{
	pthread_mutex_lock(&inf->lock);
	uint64_t first = inf->seq > RING ? inf->seq - RING : 0;
	if (from < first)
		from = first;
	if (limit > RING)
		limit = RING;
	json_t *a = json_array();
	uint64_t s = from;
	for (; s < inf->seq && json_array_size(a) < limit; s++) {
		const struct mrec *m = &inf->ring[s % RING];
		json_array_append_new(a,
		                      json_pack("{s:I,s:o,s:o,s:i,s:s,s:o}", "seq",
		                                (json_int_t)m->seq, "pc", hex(m->pc), "addr",
		                                hex(m->addr), "size", m->size, "dir",
		                                m->write ? "w" : "r", "value", hex(m->value)));
	}
	json_t *o = json_pack("{s:I,s:I,s:o}", "next", (json_int_t)s, "first", (json_int_t)first,
	                      "entries", a);
	pthread_mutex_unlock(&inf->lock);
	return o;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

json_t *ms_infer_stats(struct ms_infer *inf)
{
	pthread_mutex_lock(&inf->lock);
	unsigned n = inf->nlat < LAT_SAMPLES ? inf->nlat : LAT_SAMPLES;
	uint64_t med = 0;
	if (n) {
		uint64_t *tmp = malloc(n * sizeof(*tmp));
		if (tmp) {
			memcpy(tmp, inf->lat, n * sizeof(*tmp));
			qsort(tmp, n, sizeof(*tmp), cmp_u64);
			med = tmp[n / 2];
			free(tmp);
		}
	}
	int nregs = 0;
	for (int i = 0; i < inf->np; i++)
		nregs += inf->p[i]->nregs;
	json_t *o = json_pack(
	    "{s:i,s:i,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:i},s:I}",
	    "peripherals", inf->np, "registers", nregs, "decisions", "region",
	    (json_int_t)inf->n_region, "poll", (json_int_t)inf->n_poll, "rx", (json_int_t)inf->n_rx,
	    "tx", (json_int_t)inf->n_tx, "irq", (json_int_t)inf->n_irq, "delay",
	    (json_int_t)inf->n_delay, "explore", (json_int_t)inf->n_explore, "llm",
	    (json_int_t)inf->n_llm, "llm_rejected", (json_int_t)inf->n_llm_rejected, "import",
	    (json_int_t)inf->n_import, "fault_to_resume_ns", "median", (json_int_t)med, "max",
	    (json_int_t)inf->lat_max, "samples", (int)n, "delay_insns_skipped",
	    (json_int_t)inf->n_delay_insns);
	if (inf->llm)
		json_object_set_new(o, "llm", ms__llm_stats(inf->llm));
	if (inf->svd_pick >= 0)
		json_object_set_new(o, "svd", json_string(inf->svd_path[inf->svd_pick]));
	pthread_mutex_unlock(&inf->lock);
	return o;
}
