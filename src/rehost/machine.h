/*
 * machine: the rehost engine — one emulated Cortex-M microcontroller on
 * Unicorn (QEMU's TCG core as a library).
 *
 * A machine owns a uc_engine, its memory (host buffers mapped with
 * uc_mem_map_ptr, so a snapshot is a memcpy), the Cortex-M system
 * (NVIC, SCB, SysTick, exception entry and return: armv7m.c), the devices
 * modelled by hand for its board (cmsdk.c), the peripheral inference
 * module for everything else (src/infer/), a virtual clock derived from the
 * instruction count, and optional coverage, MMIO log and GDB server.
 *
 * Time: the instruction count is accumulated per basic block in a
 * UC_HOOK_BLOCK callback (instructions per block are counted once and
 * cached); virtual nanoseconds = icount * 1e9 / cpu_hz. Interrupts are
 * taken at block boundaries. Same firmware, input and configuration give
 * the same trace.
 *
 * Threads: a machine belongs to one thread (the "owner") from creation to
 * ms_rh_machine_free; every function here must be called on it, except
 * ms_rh_machine_input_push and ms_rh_machine_request_stop, which any thread
 * may call (they take m->in_lock / use an atomic flag).
 *
 * Ownership: ms_rh_machine_new returns a machine freed by
 * ms_rh_machine_free. Snapshots are owned by the caller
 * (ms_rh_snapshot_free).
 */
#ifndef MS_RH_MACHINE_H
#define MS_RH_MACHINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <unicorn/unicorn.h>

#include "core/err.h"
#include "core/image.h"
#include "rehost/board.h"
#include "infer/infer.h"

struct ms_infer;
struct ms_infer_locator;
struct ms_rh_gdb;
struct ms_rh_cov;

/* Why ms_rh_machine_run returned. */
enum ms_rh_stop {
	MS_RH_STOP_LIMIT = 0, /* the slice's instruction budget is used up */
	MS_RH_STOP_IDLE, /* WFI with nothing scheduled: waiting for input */
	MS_RH_STOP_REQUEST, /* ms_rh_machine_request_stop was called */
	MS_RH_STOP_BREAK, /* breakpoint, watchpoint or step done (gdb) */
	MS_RH_STOP_LOCKUP, /* unrecoverable fault: m->crash holds the report */
	MS_RH_STOP_HOST_ERROR, /* Unicorn failed in a way we cannot map: m->crash */
};

/* Up to 240 external interrupts, as ARMv7-M allows. */
#define MS_RH_MAX_IRQ 240
#define MS_RH_NEXC (16 + MS_RH_MAX_IRQ)

/*
 * The System Control Space and exception state (armv7m.c). Plain data so
 * that a snapshot is a struct copy.
 */
struct ms_rh_scs {
	uint8_t prio[MS_RH_NEXC]; /* raw priority bytes (SHPR / NVIC_IPR) */
	uint8_t enabled[MS_RH_NEXC]; /* external IRQs: ISER */
	uint8_t pending[MS_RH_NEXC];
	uint8_t active[MS_RH_NEXC];
	uint8_t level[MS_RH_NEXC]; /* device interrupt lines currently asserted */
	uint32_t vtor;
	uint32_t prigroup;
	uint32_t ccr;
	uint32_t scr;
	uint32_t shcsr_en; /* SHCSR enable bits 16..18 */
	uint32_t cfsr, hfsr, dfsr, mmfar, bfar, afsr;
	uint32_t cpacr, fpccr, fpcar, fpdscr;
	/* SysTick */
	uint32_t syst_csr; /* ENABLE, TICKINT, CLKSOURCE; COUNTFLAG kept apart */
	uint32_t syst_rvr;
	bool syst_countflag;
	uint32_t syst_cvr; /* counter value while disabled */
	uint64_t syst_next; /* icount at which the counter next reaches 0 */
	bool event_reg; /* WFE event register */
	bool any_pending; /* some pending[] bit is set (fast path) */
	bool nocp_hit; /* an FP instruction ran while CPACR denied it: NOCP to raise */
	uint8_t fp_trap; /* lazy FP save in progress through the SCS trap window */
};

/* A region of guest memory backed by a host buffer. */
struct ms_rh_region {
	char name[32];
	uint32_t base;
	uint32_t size;
	uint8_t *host; /* owned unless alias_of >= 0 */
	int alias_of; /* index of the region this one mirrors, or -1 */
	bool readonly; /* guest writes fault (flash) */
	bool lazy; /* created on first touch */
};

#define MS_RH_MAX_REGIONS 64

/* A device modelled by hand (board file), mapped with uc_mmio_map. */
struct ms_rh_dev {
	char name[32];
	char type[32];
	uint32_t base, size;
	void *state; /* plain data, state_size bytes (snapshotted) */
	size_t state_size;
	uint64_t (*read)(struct ms_rh_dev *d, uint32_t off, unsigned size);
	void (*write)(struct ms_rh_dev *d, uint32_t off, unsigned size, uint64_t val);
	void (*reset)(struct ms_rh_dev *d);
	/* icount of the next timed event (UINT64_MAX: none); run it with event(). */
	uint64_t (*next_event)(struct ms_rh_dev *d);
	void (*event)(struct ms_rh_dev *d);
	/* Called after input arrives (UART receive). */
	void (*input_ready)(struct ms_rh_dev *d);
	struct ms_rh_machine *m;
	bool console; /* transmit goes to the console, receive takes input */
	int irq[4];
};

#define MS_RH_MAX_DEVS 32

/* Called with every byte the guest sends to its console UART. */
typedef void (*ms_rh_console_fn)(void *ud, const uint8_t *bytes, size_t n);
/* Called with inference/engine events (data borrowed). */
typedef void (*ms_rh_event_fn)(void *ud, const char *type, json_t *data);

struct ms_rh_opts {
	const char *board; /* board name or NULL */
	const char *cpu; /* cpu name when no board, or override */
	uint64_t cpu_hz; /* 0: board's, else 25 MHz */
	json_t *memory_map; /* extra regions [{name, base, size, readonly}], or NULL */
	bool no_infer; /* do not load the inference module */
	const char *const *svd_paths; /* for inference */
	size_t n_svd;
	const char *models_path;
	const char *firmware_hash;
	ms_rh_console_fn console;
	ms_rh_event_fn event;
	void *ud;
	FILE *mmio_log; /* JSON lines, or NULL; not closed by us */
};

struct ms_rh_machine {
	uc_engine *uc;
	struct ms_rh_board board;
	int cpu_model; /* UC_CPU_ARM_* */
	bool has_fpu;
	bool v6m; /* ARMv6-M (M0/M0+): no BASEPRI/FAULTMASK, fewer faults */
	uint64_t cpu_hz;
	uint32_t nirq;

	struct ms_rh_region regions[MS_RH_MAX_REGIONS];
	int n_regions;
	struct ms_rh_dev devs[MS_RH_MAX_DEVS];
	int n_devs;
	struct ms_rh_scs scs;

	/* Time. */
	uint64_t icount;
	uint64_t deadline; /* stop at a block boundary when icount reaches it */
	uint64_t slice_end;
	volatile int attention; /* re-check interrupts/stop at the next block */
	volatile int stop_request; /* atomic: set by any thread */

	/* Instructions per block, counted once (direct-mapped cache). */
	struct ms_rh_bbc {
		uint32_t addr;
		uint16_t size;
		uint16_t n;
		uint16_t infer_work; /* ms_infer_block_has_work said yes */
		uint32_t cov_epoch; /* == m->cov_epoch: already recorded in m->cov */
	} * bbc;
	uint32_t bbc_mask;
	uint32_t cov_epoch; /* bumped by ms_rh_machine_cov_attach */

	/* The image, kept for reset. */
	struct ms_image image;
	bool has_image;
	uint32_t boot_vtor;

	/* Console input queue (any thread pushes; owner pops). */
	pthread_mutex_t in_lock;
	uint8_t *in_buf;
	size_t in_head, in_len, in_cap;

	/* What stopped us, for MS_RH_STOP_LOCKUP / HOST_ERROR. */
	char crash[1024];
	enum ms_rh_stop last_stop;
	bool locked_up;
	bool sleeping; /* in WFI/WFE, waiting for an event */
	bool ran; /* code has been translated at least once */
	bool hook_stopped; /* the block hook ended the last uc_emu_start */
	bool reset_request; /* AIRCR.SYSRESETREQ: reset at the next boundary */
	uint32_t fault_addr; /* address of the last failed access */
	/* What armv7m.c last put in the CPU's own FPCCR (Unicorn keeps a copy it acts on). */
	struct ms_rh_fp_env {
		bool valid, lspact, aspen;
		uint32_t fpdscr;
	} fp_env;
	bool halted_for_debug; /* BKPT/watch: reason in gdb */

	/* Host side. */
	ms_rh_console_fn console;
	ms_rh_event_fn event;
	void *ud;
	FILE *mmio_log;
	struct ms_infer *inf;
	/*
	 * The current block, written by hook_block for whoever needs the PC of
	 * an access: the inference module's slot when it is loaded, else
	 * own_block while an MMIO log is open, else NULL (nothing written).
	 */
	struct ms_infer_block *cur_block;
	struct ms_infer_block own_block;
	struct ms_infer_locator *loc; /* the MMIO log's access locator, or NULL */
	struct ms_rh_cov *cov;
	struct ms_rh_gdb *gdb;

	uc_hook h_block, h_intr, h_unmapped, h_insn_invalid;
};

int ms_rh_machine_new(const struct ms_rh_opts *o, struct ms_rh_machine **out, struct ms_err *e);
void ms_rh_machine_free(struct ms_rh_machine *m);

/*
 * Load an image: every segment is copied into memory (regions for segments
 * outside the board's memory are created). The image is kept so that reset
 * reloads it. Then the machine is reset. 400 "bad_image" when a segment
 * lies in a peripheral window or the vector table is unusable.
 */
int ms_rh_machine_load(struct ms_rh_machine *m, const struct ms_image *img, struct ms_err *e);

/* Reset: memory back to the image, devices and system to reset state, SP/PC from the vectors. */
int ms_rh_machine_reset(struct ms_rh_machine *m, struct ms_err *e);

/* Run at most max_insns instructions (approximately: block granularity). */
enum ms_rh_stop ms_rh_machine_run(struct ms_rh_machine *m, uint64_t max_insns);

/* Any thread: ask the running machine to return MS_RH_STOP_REQUEST soon. */
void ms_rh_machine_request_stop(struct ms_rh_machine *m);

/* Any thread: bytes for the console UART's receive side. */
void ms_rh_machine_input_push(struct ms_rh_machine *m, const void *data, size_t len);
/* Owner thread: bytes waiting in the input queue. */
size_t ms_rh_machine_input_avail(struct ms_rh_machine *m);
/* Owner thread: take one input byte, or -1. */
int ms_rh_machine_input_get(struct ms_rh_machine *m);

/* Virtual time in ns. */
uint64_t ms_rh_machine_now_ns(struct ms_rh_machine *m);

/* Registers as text (for crash reports): "r0=... pc=... xpsr=...". */
void ms_rh_machine_regs_text(struct ms_rh_machine *m, char *buf, size_t cap);

/* Guest memory access through our region table (debugger, snapshots). 0 or -EFAULT. */
int ms_rh_mem_read(struct ms_rh_machine *m, uint32_t addr, void *buf, size_t len);
int ms_rh_mem_write(struct ms_rh_machine *m, uint32_t addr, const void *buf, size_t len);

/*
 * Attach a coverage recorder (NULL detaches; the old one is not freed).
 * Each block is recorded on its first execution, so coverage costs one
 * compare per block after that; LCOV hit counts are therefore 0 or 1.
 */
void ms_rh_machine_cov_attach(struct ms_rh_machine *m, struct ms_rh_cov *cov);

/* Device map for the API: [{name, base, size, kind}]. New reference. */
json_t *ms_rh_machine_device_map(struct ms_rh_machine *m);

/* Snapshots (snapshot.c). */
struct ms_rh_snapshot;
struct ms_rh_snapshot *ms_rh_snapshot_take(struct ms_rh_machine *m);
int ms_rh_snapshot_restore(struct ms_rh_machine *m, const struct ms_rh_snapshot *s,
                           struct ms_err *e);
void ms_rh_snapshot_free(struct ms_rh_snapshot *s);
size_t ms_rh_snapshot_size(const struct ms_rh_snapshot *s);
int ms_rh_snapshot_write(const struct ms_rh_snapshot *s, const char *path, struct ms_err *e);
int ms_rh_snapshot_read(struct ms_rh_machine *m, const char *path, struct ms_rh_snapshot **out,
                        struct ms_err *e);

/* Internal, across the engine's files. */
void ms__rh_irq_level(struct ms_rh_machine *m, int irq, bool level);
void ms__rh_irq_pulse(struct ms_rh_machine *m, int irq);
void ms__rh_console_out(struct ms_rh_machine *m, const uint8_t *b, size_t n);
void ms__rh_recompute_deadline(struct ms_rh_machine *m);
uint32_t ms__rh_pc(struct ms_rh_machine *m);
void ms__rh_input_notify(struct ms_rh_machine *m);
void ms__rh_flush_code(struct ms_rh_machine *m);
void ms__rh_zero(uint8_t *host, size_t size);
uint32_t ms__rh_sysreg(struct ms_rh_machine *m, int reg);

/* armv7m.c */
void ms__rh_scs_reset(struct ms_rh_machine *m);
int ms__rh_scs_map(struct ms_rh_machine *m);
void ms__rh_scs_set_pending(struct ms_rh_machine *m, int exc);
/* Take the highest-priority pending exception if it may preempt; true if taken. */
bool ms__rh_take_pending(struct ms_rh_machine *m);
bool ms__rh_pending_takeable(struct ms_rh_machine *m);
bool ms__rh_wfi_wakes(struct ms_rh_machine *m);
/* Synchronous exceptions from Unicorn's interrupt hook. */
void ms__rh_on_intr(struct ms_rh_machine *m, uint32_t intno);
/* A fault caused by the instruction at pc: raise it (escalating as needed). */
void ms__rh_fault(struct ms_rh_machine *m, int exc, uint32_t cfsr_bits, bool addr_valid,
                  uint32_t addr);
uint64_t ms__rh_systick_next(struct ms_rh_machine *m);
void ms__rh_systick_event(struct ms_rh_machine *m);
void ms__rh_lockup(struct ms_rh_machine *m, const char *why);

/* cmsdk.c */
int ms__rh_dev_create(struct ms_rh_machine *m, const struct ms_rh_board_dev *bd, struct ms_err *e);

#endif
