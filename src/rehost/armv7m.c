/*
 * armv7m: the Cortex-M system the CPU core lacks — NVIC, SCB, SysTick, the
 * FPU control registers, and exception entry and return with the
 * architecture's stack frames (ARMv7-M ARM B1.5), written against Unicorn.
 *
 * Unicorn (QEMU's TCG) executes instructions, keeps PRIMASK/BASEPRI/
 * FAULTMASK/CONTROL and the banked stack pointers, and reports SVC,
 * exception returns (a branch to an EXC_RETURN value in handler mode) and
 * BKPT through its interrupt hook. Everything else is here: priorities,
 * pending/active state, preemption, stacking, tail-chaining by re-checking
 * pending exceptions after every return, fault escalation and lockup.
 *
 * Register writes through Unicorn go through QEMU's MSR helper, which
 * ignores privileged registers when the core is unprivileged and SPSEL in
 * handler mode; the entry and return sequences below order their writes so
 * that each one lands (see exc_enter and exc_return).
 *
 * The core underneath. Unicorn 2.0.1 builds every M-profile model as a
 * Cortex-M33 with the Security Extension and an FPU, running in Secure
 * state (uc_ctl_set_cpu_model has no effect in UC_MODE_MCLASS: measured),
 * and its fp_exception_el() always returns 0, so CPACR never stops an FP
 * instruction. What software sees of the chosen core (CPUID, which system
 * registers exist, the FPU, faults) is therefore modelled here; the
 * instruction set is not narrowed (see docs/ARCHITECTURE.md, "Cortex-M
 * fidelity").
 *
 * FP lazy stacking (FPCCR.LSPEN=1) and CPACR use one mechanism with no
 * hook: QEMU's translator calls its lazy-save helper before the first FP
 * instruction of a block whenever the CPU's own FPCCR.LSPACT is set. Unicorn
 * does not expose that copy of FPCCR/FPCAR/FPDSCR/CPACR, so fp_env_sync
 * reaches it through a uc_context (a copy of CPUARMState; the offset of its
 * v7m block is found once per process by v7m_probe) and points the CPU's
 * FPCAR at a reserved window of our SCS mapping. The helper's 17 writes
 * (S0-S15, FPSCR) then arrive in scs_write (fp_trap_write) just before the
 * instruction runs: we store them at the architectural FPCAR (a lazy save),
 * or, when CPACR denies the FPU to the current context, we record NOCP and
 * stop the CPU; the UsageFault is raised at the end of that translation
 * block (the FP instruction and the rest of the block have run: the one
 * imprecise fault here). m->scs stays the architectural state; the CPU's
 * copy is derived from it (fp_env_check) and m->fp_env says what it holds.
 *
 * Threads: the machine's owner thread only. v7m_probe's result is
 * process-wide, written once under v7m_lock (read without it once set);
 * each thread keeps one uc_context buffer for fp_env_sync (thread_ctx).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "rehost/gdb.h"
#include "rehost/machine.h"

#define SCS_BASE 0xe000e000u

#define CCR_STKALIGN (1u << 9)
/*
 * CONTROL.FPCA, and SFPA beside it: the Secure-state core underneath
 * (file comment) starts a new FP context, FPSCR = FPDSCR, on the next FP
 * instruction unless both are set, so they move together.
 */
#define CONTROL_FP 0xcu
#define HFSR_VECTTBL (1u << 1)
#define HFSR_FORCED (1u << 30)
#define CFSR_LSPERR (1u << 13)
#define CFSR_UNDEFINSTR (1u << 16)
#define CFSR_INVSTATE (1u << 17)
#define CFSR_INVPC (1u << 18)
#define CFSR_NOCP (1u << 19)
#define CFSR_STKOF (1u << 20)
#define FPCCR_LSPACT (1u << 0)
#define FPCCR_USER (1u << 1)
#define FPCCR_THREAD (1u << 3)
#define FPCCR_HFRDY (1u << 4)
#define FPCCR_MMRDY (1u << 5)
#define FPCCR_BFRDY (1u << 6)
#define FPCCR_MONRDY (1u << 8)
#define FPCCR_LSPEN (1u << 30)
#define FPCCR_ASPEN (1u << 31)
#define FPCCR_RW 0xc000017bu /* the ARMv7-M FPCCR bits */
#define FPCCR_STATE                                                                                \
	(FPCCR_LSPACT | FPCCR_USER | FPCCR_THREAD | FPCCR_HFRDY | FPCCR_MMRDY | FPCCR_BFRDY |      \
	 FPCCR_MONRDY)
/* Where the CPU's FPCAR points: reserved SCS space (0xe000e040-0xe000e083) that we map. */
#define FP_TRAP_OFF 0x040u
#define FP_TRAP_WORDS 17u
#define EXC_NMI 2
#define EXC_HARDFAULT 3
#define EXC_MEMMANAGE 4
#define EXC_BUSFAULT 5
#define EXC_USAGEFAULT 6
#define EXC_SVCALL 11
#define EXC_DEBUGMON 12
#define EXC_PENDSV 14
#define EXC_SYSTICK 15

static uint32_t rreg(struct ms_rh_machine *m, int reg)
{
	uint32_t v = 0;

	uc_reg_read(m->uc, reg, &v);
	return v;
}

static void wreg(struct ms_rh_machine *m, int reg, uint32_t v)
{
	uc_reg_write(m->uc, reg, &v);
}

static bool is_m0plus(struct ms_rh_machine *m)
{
	return strcmp(m->board.cpu, "cortex-m0plus") == 0 ||
	    strcmp(m->board.cpu, "cortex-m0+") == 0;
}

static uint32_t nexc(struct ms_rh_machine *m)
{
	return 16 + m->nirq;
}

static uint8_t prio_mask(struct ms_rh_machine *m)
{
	return m->v6m ? 0xc0 : 0xff;
}

/* Group priority of a raw priority byte under the current PRIGROUP. */
static int group_prio(struct ms_rh_machine *m, uint8_t p)
{
	uint32_t sub_bits = m->v6m ? 0 : m->scs.prigroup + 1;

	return (int)(p & (0xffu << sub_bits) & 0xffu);
}

static int exc_prio(struct ms_rh_machine *m, int exc)
{
	if (exc == 1)
		return -3;
	if (exc == EXC_NMI)
		return -2;
	if (exc == EXC_HARDFAULT)
		return -1;
	return group_prio(m, m->scs.prio[exc]);
}

static void update_any_pending(struct ms_rh_machine *m)
{
	uint32_t i, n = nexc(m);
	bool any = false;

	for (i = 2; i < n && !any; i++)
		any = m->scs.pending[i] != 0;
	m->scs.any_pending = any;
	if (any)
		m->attention = 1;
}

void ms__rh_scs_set_pending(struct ms_rh_machine *m, int exc)
{
	if (exc < 2 || (uint32_t)exc >= nexc(m))
		return;
	m->scs.pending[exc] = 1;
	m->scs.any_pending = true;
	m->attention = 1;
	m->scs.event_reg = true;
}

void ms__rh_irq_level(struct ms_rh_machine *m, int irq, bool level)
{
	int exc = 16 + irq;

	if (irq < 0 || (uint32_t)irq >= m->nirq)
		return;
	/* A rising edge pends; a level still high at exception return pends again (exc_return). */
	if (level && !m->scs.level[exc])
		ms__rh_scs_set_pending(m, exc);
	m->scs.level[exc] = level;
}

void ms__rh_irq_pulse(struct ms_rh_machine *m, int irq)
{
	if (irq >= 0 && (uint32_t)irq < m->nirq)
		ms__rh_scs_set_pending(m, 16 + irq);
}

/*
 * PRIMASK, BASEPRI and FAULTMASK. QEMU's MRS helper returns 0 for them to
 * unprivileged code, so in unprivileged thread mode the reads are done
 * from handler mode and xPSR put back (as ms__rh_sysreg does, but once for
 * the three: exec_prio runs at every exception entry and return).
 */
static void read_masks(struct ms_rh_machine *m, uint32_t *primask, uint32_t *basepri,
                       uint32_t *faultmask)
{
	uint32_t xpsr = rreg(m, UC_ARM_REG_XPSR);
	bool drop = (xpsr & 0x1ff) == 0 && (rreg(m, UC_ARM_REG_CONTROL) & 1);

	if (drop)
		wreg(m, UC_ARM_REG_XPSR, xpsr | 3);
	*primask = rreg(m, UC_ARM_REG_PRIMASK);
	*basepri = m->v6m ? 0 : rreg(m, UC_ARM_REG_BASEPRI);
	*faultmask = m->v6m ? 0 : rreg(m, UC_ARM_REG_FAULTMASK);
	if (drop)
		wreg(m, UC_ARM_REG_XPSR, xpsr);
}

/* Execution priority: the most urgent of active exceptions and masks. */
static int exec_prio(struct ms_rh_machine *m, bool ignore_primask)
{
	uint32_t i, n = nexc(m), primask, basepri, faultmask;
	int p = 256;

	for (i = 1; i < n; i++)
		if (m->scs.active[i]) {
			int q = exc_prio(m, (int)i);

			if (q < p)
				p = q;
		}
	read_masks(m, &primask, &basepri, &faultmask);
	if (!m->v6m) {
		basepri &= 0xff;
		if (basepri != 0 && group_prio(m, (uint8_t)basepri) < p)
			p = group_prio(m, (uint8_t)basepri);
		if ((faultmask & 1) && p > -1)
			p = -1;
	}
	if (!ignore_primask && (primask & 1) && p > 0)
		p = 0;
	return p;
}

/* The pending exception that would be taken next (0 when none), and its priority. */
static int best_pending(struct ms_rh_machine *m, int *prio)
{
	uint32_t i, n = nexc(m);
	int best = 0, bp = 1000;

	for (i = 2; i < n; i++) {
		int p;

		if (!m->scs.pending[i])
			continue;
		if (i >= 16 && !m->scs.enabled[i])
			continue;
		p = exc_prio(m, (int)i);
		if (p < bp) {
			bp = p;
			best = (int)i;
		}
	}
	*prio = bp;
	return best;
}

static bool takeable(struct ms_rh_machine *m, bool ignore_primask)
{
	int p, exc = best_pending(m, &p);

	return exc != 0 && p < exec_prio(m, ignore_primask);
}

bool ms__rh_pending_takeable(struct ms_rh_machine *m)
{
	return takeable(m, false);
}

bool ms__rh_wfi_wakes(struct ms_rh_machine *m)
{
	/* WFI also wakes for an interrupt that only PRIMASK holds back (it is then not taken). */
	return takeable(m, true);
}

void ms__rh_lockup(struct ms_rh_machine *m, const char *why)
{
	char regs[700];

	ms_rh_machine_regs_text(m, regs, sizeof(regs));
	snprintf(m->crash, sizeof(m->crash), "lockup: %s; %s", why, regs);
	m->locked_up = true;
	uc_emu_stop(m->uc);
}

/* ---- the CPU's own copy of the FP system registers ---- */

/*
 * Words of CPUARMState.v7m in QEMU 5.0 (Unicorn 2.0.1), counted from
 * other_sp; each banked register is [non-secure, secure].
 */
#define V7M_W_CCR 9
#define V7M_W_SECURE 28
#define V7M_W_FPCAR 37
#define V7M_W_FPCCR 39
#define V7M_W_FPDSCR 41
#define V7M_W_CPACR 43
#define V7M_WORDS 46
#define V7M_MAGIC 0x5eed1e55u

static pthread_mutex_t v7m_lock = PTHREAD_MUTEX_INITIALIZER;
static int v7m_state; /* 0: not probed, 1: v7m_off valid, -1: layout not recognised */
static size_t v7m_off; /* byte offset of v7m.other_sp inside a uc_context */

static uint32_t ctx_word(const uint8_t *v, int w)
{
	uint32_t x;

	memcpy(&x, v + 4 * w, 4);
	return x;
}

static void ctx_set(uint8_t *v, int w, uint32_t x)
{
	memcpy(v + 4 * w, &x, 4);
}

/*
 * Find the v7m block in a context: PSP is stored in other_sp while thread
 * mode runs on MSP (the state of a fresh engine), and the neighbouring words
 * must hold the reset values QEMU gives CCR, FPCCR and the security state.
 * Called on a machine that has not run yet; its PSP is put back.
 */
static bool v7m_probe(struct ms_rh_machine *m)
{
	int state = __atomic_load_n(&v7m_state, __ATOMIC_ACQUIRE);

	if (state != 0)
		return state > 0;
	pthread_mutex_lock(&v7m_lock);
	if (v7m_state == 0) {
		uc_context *c = NULL;
		size_t n = uc_context_size(m->uc), i;
		uint32_t psp = 0, magic = V7M_MAGIC;
		int found = -1;

		if (uc_context_alloc(m->uc, &c) == UC_ERR_OK) {
			uc_reg_read(m->uc, UC_ARM_REG_PSP, &psp);
			uc_reg_write(m->uc, UC_ARM_REG_PSP, &magic);
			uc_context_save(m->uc, c);
			uc_reg_write(m->uc, UC_ARM_REG_PSP, &psp);
			for (i = 0; i + 4 * V7M_WORDS <= n; i += 4) {
				const uint8_t *v = (const uint8_t *)c + i;

				if (ctx_word(v, 0) == V7M_MAGIC &&
				    (ctx_word(v, V7M_W_CCR) & CCR_STKALIGN) &&
				    ctx_word(v, V7M_W_SECURE) <= 1 &&
				    (ctx_word(v, V7M_W_FPCCR + 1) & 0xc0000000u) == 0xc0000000u) {
					v7m_off = i;
					found = 1;
					break;
				}
			}
			uc_context_free(c);
		}
		__atomic_store_n(&v7m_state, found, __ATOMIC_RELEASE);
		if (found < 0)
			ms_warn("rehost: this Unicorn's CPU state layout is not the one we know: "
			        "FP lazy stacking is done eagerly and CPACR is not enforced");
	}
	pthread_mutex_unlock(&v7m_lock);
	return v7m_state > 0;
}

static bool cur_privileged(struct ms_rh_machine *m)
{
	return (rreg(m, UC_ARM_REG_XPSR) & 0x1ff) != 0 || !(rreg(m, UC_ARM_REG_CONTROL) & 1);
}

/* CPACR.CP10 (CP11 must match it) lets every context use the FPU. */
static bool fp_open(struct ms_rh_machine *m)
{
	return m->has_fpu && ((m->scs.cpacr >> 20) & 3) == 3;
}

/* CPACR.CP10 lets the current context use the FPU. */
static bool fp_allowed(struct ms_rh_machine *m)
{
	uint32_t cp10 = (m->scs.cpacr >> 20) & 3;

	if (!m->has_fpu)
		return false;
	return cp10 == 3 || (cp10 == 1 && cur_privileged(m));
}

/*
 * One context buffer per thread, kept: syncs happen at exception entry and
 * return, and allocating each time was a quarter of their cost. Contexts
 * of every ARM M-profile engine have the same size.
 */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_release(void *c)
{
	uc_context_free(c);
}

static void ctx_key_init(void)
{
	if (pthread_key_create(&ctx_key, ctx_release) != 0)
		ms_error("rehost: no thread key for CPU contexts");
}

static uc_context *thread_ctx(struct ms_rh_machine *m)
{
	uc_context *c;

	pthread_once(&ctx_once, ctx_key_init);
	c = pthread_getspecific(ctx_key);
	if (c == NULL && uc_context_alloc(m->uc, &c) == UC_ERR_OK &&
	    pthread_setspecific(ctx_key, c) != 0) {
		uc_context_free(c);
		c = NULL;
	}
	return c;
}

/* Put what m->scs says into the CPU's copy: LSPACT armed when we must see the next FP insn. */
static void fp_env_sync(struct ms_rh_machine *m, bool lspact, bool aspen)
{
	uc_context *c;
	uint8_t *v;
	int b;

	if (!v7m_probe(m) || (c = thread_ctx(m)) == NULL)
		return;
	uc_context_save(m->uc, c);
	v = (uint8_t *)c + v7m_off;
	for (b = 0; b < 2; b++) {
		/*
		 * Privileged (USER=0) with HardFault ready: the helper's writes to
		 * the trap window in the PPB are then allowed. Our own CPACR
		 * decides who may use the FPU, so the CPU's lets everything through.
		 */
		uint32_t f =
		    ctx_word(v, V7M_W_FPCCR + b) & ~(FPCCR_STATE | FPCCR_ASPEN | FPCCR_LSPEN);

		f |= FPCCR_HFRDY | (lspact ? FPCCR_LSPACT : 0) | (aspen ? FPCCR_ASPEN : 0);
		ctx_set(v, V7M_W_FPCCR + b, f);
		ctx_set(v, V7M_W_FPCAR + b, SCS_BASE + FP_TRAP_OFF);
		ctx_set(v, V7M_W_FPDSCR + b, m->scs.fpdscr);
		ctx_set(v, V7M_W_CPACR + b, 0xfu << 20);
	}
	uc_context_restore(m->uc, c);
	m->fp_env.valid = true;
	m->fp_env.lspact = lspact;
	m->fp_env.aspen = aspen;
	m->fp_env.fpdscr = m->scs.fpdscr;
}

/*
 * Bring the CPU's copy in line with m->scs when they differ: called at
 * every point where the answer can change (exception entry and return,
 * FPU register writes, before each run), cheap when nothing changed.
 */
static void fp_env_check(struct ms_rh_machine *m)
{
	bool aspen = m->has_fpu && (m->scs.fpccr & FPCCR_ASPEN);
	/*
	 * Armed unless the FPU is open to all: with privileged-only access an
	 * MSR CONTROL can drop privilege without us seeing it, so each FP use
	 * is checked (fp_trap_write).
	 */
	bool lspact = (m->scs.fpccr & FPCCR_LSPACT) || !fp_open(m);

	if (!m->fp_env.valid || m->fp_env.lspact != lspact || m->fp_env.aspen != aspen ||
	    m->fp_env.fpdscr != m->scs.fpdscr)
		fp_env_sync(m, lspact, aspen);
}

/* Store one word of guest RAM without dropping translations (we run inside a CPU callback). */
static int guest_store(struct ms_rh_machine *m, uint32_t addr, uint32_t v)
{
	int i;

	for (i = 0; i < m->n_regions; i++) {
		struct ms_rh_region *r = &m->regions[i];

		if (addr >= r->base && addr - r->base <= r->size - 4) {
			if (r->readonly)
				return -1;
			memcpy(r->host + (addr - r->base), &v, 4);
			return 0;
		}
	}
	return -1;
}

enum { FP_TRAP_IDLE, FP_TRAP_SAVE, FP_TRAP_DISCARD };

/*
 * One word of QEMU's lazy-save helper, run just before an FP instruction
 * while the CPU's LSPACT was set (ARMv7-M ExecuteFPCheck): word 0 decides.
 * A context denied the FPU by CPACR gets NOCP (the state stays unsaved, as
 * CheckVFPEnabled comes first); otherwise a pending lazy save goes to FPCAR.
 */
static void fp_trap_write(struct ms_rh_machine *m, uint32_t idx, uint32_t v)
{
	if (idx == 0) {
		/* The helper clears the CPU's LSPACT once these writes are done. */
		m->fp_env.lspact = false;
		if (!fp_allowed(m)) {
			m->scs.nocp_hit = true;
			m->scs.fp_trap = FP_TRAP_DISCARD;
			uc_emu_stop(m->uc);
		} else {
			m->scs.fp_trap =
			    (m->scs.fpccr & FPCCR_LSPACT) ? FP_TRAP_SAVE : FP_TRAP_DISCARD;
		}
	}
	if (m->scs.fp_trap == FP_TRAP_SAVE && guest_store(m, m->scs.fpcar + 4 * idx, v) != 0 &&
	    !(m->scs.cfsr & CFSR_LSPERR)) {
		/* A bus error while preserving the FP state: BusFault LSPERR, taken when it can be. */
		m->scs.cfsr |= CFSR_LSPERR;
		if (m->scs.shcsr_en & (1u << 17)) {
			ms__rh_scs_set_pending(m, EXC_BUSFAULT);
		} else {
			m->scs.hfsr |= HFSR_FORCED;
			ms__rh_scs_set_pending(m, EXC_HARDFAULT);
		}
	}
	if (idx == FP_TRAP_WORDS - 1) {
		if (m->scs.fp_trap == FP_TRAP_SAVE)
			m->scs.fpccr &= ~FPCCR_LSPACT;
		m->scs.fp_trap = FP_TRAP_IDLE;
		/*
		 * Still to be watched (CPACR not open to all): stop after this
		 * block so that the run loop arms the CPU again (fp_env_check).
		 */
		if ((m->scs.fpccr & FPCCR_LSPACT) || !fp_open(m))
			uc_emu_stop(m->uc);
	}
}

/*
 * UpdateFPCCR (ARMv7-M B1.5.7) for an entry that reserves the extended
 * frame at frame without writing the FP part: the context to preserve, its
 * privilege, and which fault handlers could run when it is preserved.
 */
static void fpccr_lazy(struct ms_rh_machine *m, uint32_t frame, bool handler, uint32_t control,
                       int bg_prio)
{
	uint32_t f = m->scs.fpccr & ~FPCCR_STATE;

	f |= FPCCR_LSPACT;
	if (!handler && (control & 1))
		f |= FPCCR_USER;
	if (!handler)
		f |= FPCCR_THREAD;
	if (bg_prio > -1)
		f |= FPCCR_HFRDY;
	if ((m->scs.shcsr_en & (1u << 16)) && bg_prio > exc_prio(m, EXC_MEMMANAGE))
		f |= FPCCR_MMRDY;
	if ((m->scs.shcsr_en & (1u << 17)) && bg_prio > exc_prio(m, EXC_BUSFAULT))
		f |= FPCCR_BFRDY;
	/* MONRDY stays 0: DEMCR.MON_EN is never set here (no debug monitor). */
	m->scs.fpccr = f;
	m->scs.fpcar = frame + 0x20;
}

/* Make [sp, sp+len) writable memory, mapping lazily like the data path does. */
static int stack_write(struct ms_rh_machine *m, uint32_t sp, const uint32_t *w, size_t n)
{
	return ms_rh_mem_write(m, sp, w, n * 4);
}

static bool read_vector(struct ms_rh_machine *m, int exc, uint32_t *vec)
{
	return ms_rh_mem_read(m, m->scs.vtor + 4u * (uint32_t)exc, vec, 4) == 0;
}

static void exc_enter(struct ms_rh_machine *m, int exc, int bg_prio);

/*
 * The vector had bit 0 clear: the entry completed with EPSR.T=0, so the
 * handler's first instruction raises INVSTATE (a UsageFault, or HardFault
 * by escalation; lockup if that handler was HardFault). Its frame holds
 * the vector as PC and T=0 in xPSR.
 */
static void invstate_at_entry(struct ms_rh_machine *m)
{
	uint32_t sp, xpsr;

	ms__rh_fault(m, EXC_USAGEFAULT, CFSR_INVSTATE, false, 0);
	if (m->locked_up)
		return;
	sp = rreg(m, UC_ARM_REG_SP);
	if (ms_rh_mem_read(m, sp + 28, &xpsr, 4) == 0) {
		xpsr &= ~(1u << 24);
		ms_rh_mem_write(m, sp + 28, &xpsr, 4);
	}
}

/*
 * Exception entry (ARMv7-M PushStack + ExceptionTaken). Order of writes:
 * frame, SP of the current bank, xPSR (switches to handler mode, which is
 * privileged and uses MSP), then CONTROL (FPCA) — see the file comment.
 * With CONTROL.FPCA and FPCCR.LSPEN the extended frame is reserved and only
 * the basic part written; the FP part is written on the handler's first FP
 * instruction (fp_trap_write) or never.
 */
/* bg_prio: the execution priority before entry when the caller has it, else BG_UNKNOWN. */
#define BG_UNKNOWN 1000

static void exc_enter(struct ms_rh_machine *m, int exc, int bg_prio)
{
	static const int fr[] = {UC_ARM_REG_R0,  UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3,
	                         UC_ARM_REG_R12, UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_XPSR};
	uint32_t frame[8 + 18];
	uint32_t control = rreg(m, UC_ARM_REG_CONTROL);
	uint32_t xpsr = rreg(m, UC_ARM_REG_XPSR);
	uint32_t sp = rreg(m, UC_ARM_REG_SP);
	bool handler = (xpsr & 0x1ff) != 0;
	bool fpca = m->has_fpu && (control & 4);
	bool lazy = fpca && (m->scs.fpccr & FPCCR_LSPEN) && v7m_probe(m);
	uint32_t words = fpca ? 26 : 8;
	uint32_t nsp, excret, vec;
	int i;

	for (i = 0; i < 8; i++)
		frame[i] = rreg(m, fr[i]);
	frame[6] &= ~1u;
	nsp = sp - words * 4;
	if ((m->scs.ccr & CCR_STKALIGN) || m->v6m) {
		if (nsp & 4) {
			nsp &= ~7u;
			frame[7] |= 1u << 9;
		} else {
			frame[7] &= ~(1u << 9);
		}
	} else {
		nsp &= ~3u;
	}
	if (fpca && !lazy) {
		for (i = 0; i < 16; i++)
			frame[8 + i] = rreg(m, UC_ARM_REG_S0 + i);
		frame[24] = rreg(m, UC_ARM_REG_FPSCR);
	}
	/* The extended frame's last word is reserved: never written (QEMU agrees). */
	if (stack_write(m, nsp, frame, fpca && !lazy ? 25 : 8) != 0) {
		char why[160];

		snprintf(why, sizeof(why),
		         "stack 0x%08x outside memory while entering exception %d", nsp, exc);
		ms__rh_lockup(m, why);
		return;
	}
	if (lazy)
		fpccr_lazy(m, nsp, handler, control,
		           bg_prio != BG_UNKNOWN ? bg_prio : exec_prio(m, false));
	if (!read_vector(m, exc, &vec)) {
		/*
		 * A fault on the vector read: HardFault (HFSR.VECTTBL) on the same
		 * frame while the exception stays pending; lockup when that was
		 * HardFault or NMI entry, or HardFault could not preempt.
		 */
		uint32_t at = m->scs.vtor + 4u * (uint32_t)exc;

		m->scs.hfsr |= HFSR_VECTTBL;
		if (exc == EXC_HARDFAULT || exc == EXC_NMI || exec_prio(m, true) <= -1 ||
		    !read_vector(m, EXC_HARDFAULT, &vec)) {
			char why[200];

			snprintf(why, sizeof(why),
			         "vector read fault at 0x%08x (exception %d) with no HardFault to "
			         "take it",
			         at, exc);
			ms__rh_lockup(m, why);
			return;
		}
		exc = EXC_HARDFAULT;
	}
	wreg(m, UC_ARM_REG_SP, nsp);
	if (handler)
		excret = 0xfffffff1;
	else
		excret = (control & 2) ? 0xfffffffd : 0xfffffff9;
	if (fpca)
		excret &= ~0x10u;
	wreg(m, UC_ARM_REG_XPSR, (xpsr & 0xf8000000u) | 0x01000000u | (uint32_t)exc);
	if (m->has_fpu)
		wreg(m, UC_ARM_REG_CONTROL, control & ~CONTROL_FP);
	wreg(m, UC_ARM_REG_LR, excret);
	wreg(m, UC_ARM_REG_PC, vec | 1);
	m->scs.pending[exc] = 0;
	m->scs.active[exc] = 1;
	update_any_pending(m);
	fp_env_check(m);
	/* A handler address outside memory faults on its fetch, like any other branch. */
	if ((vec & 1) == 0)
		invstate_at_entry(m);
}

bool ms__rh_take_pending(struct ms_rh_machine *m)
{
	int p, exc, cur;

	if (m->locked_up)
		return false;
	if (m->scs.nocp_hit) {
		/* fp_trap_write stopped the CPU after an FP instruction CPACR denied. */
		m->scs.nocp_hit = false;
		ms__rh_fault(m, EXC_USAGEFAULT, CFSR_NOCP, false, 0);
		return true;
	}
	/* Also after a snapshot restore: the CPU's FP copy follows m->scs. */
	fp_env_check(m);
	if (!m->scs.any_pending)
		return false;
	exc = best_pending(m, &p);
	if (exc == 0 || p >= (cur = exec_prio(m, false)))
		return false;
	exc_enter(m, exc, cur);
	return true;
}

static void invpc(struct ms_rh_machine *m, const char *why)
{
	(void)why;
	ms__rh_fault(m, EXC_USAGEFAULT, CFSR_INVPC, false, 0);
}

/*
 * Exception return (ARMv7-M ExceptionReturn + PopStack). Unicorn stopped
 * at the EXC_RETURN value with the core still in handler mode.
 */
static void exc_return(struct ms_rh_machine *m)
{
	static const int fr[] = {UC_ARM_REG_R0, UC_ARM_REG_R1,  UC_ARM_REG_R2,
	                         UC_ARM_REG_R3, UC_ARM_REG_R12, UC_ARM_REG_LR};
	uint32_t excret = rreg(m, UC_ARM_REG_PC) | 1u;
	uint32_t xpsr = rreg(m, UC_ARM_REG_XPSR);
	uint32_t control = rreg(m, UC_ARM_REG_CONTROL);
	uint32_t exc = xpsr & 0x1ff;
	uint32_t mode = excret & 0xf;
	bool ext = (excret & 0x10) == 0;
	uint32_t frame[26], fsp, words, nsp;
	int i;

	if ((excret & 0xffffffe0u) != 0xffffffe0u || (mode != 1 && mode != 9 && mode != 0xd) ||
	    (ext && !m->has_fpu)) {
		invpc(m, "bad EXC_RETURN");
		return;
	}
	if (exc == 0 || exc >= nexc(m) || !m->scs.active[exc]) {
		invpc(m, "return from an inactive exception");
		return;
	}
	fsp = mode == 0xd ? rreg(m, UC_ARM_REG_PSP) : rreg(m, UC_ARM_REG_MSP);
	words = ext ? 26 : 8;
	if (ms_rh_mem_read(m, fsp, frame, words * 4) != 0) {
		char why[160];

		snprintf(why, sizeof(why), "exception frame at 0x%08x outside memory", fsp);
		ms__rh_lockup(m, why);
		return;
	}
	m->scs.active[exc] = 0;
	if (exc >= 16 && m->scs.level[exc])
		ms__rh_scs_set_pending(m, (int)exc);
	/* FAULTMASK clears on return from anything but NMI (still privileged here). */
	if (!m->v6m && exc != EXC_NMI)
		wreg(m, UC_ARM_REG_FAULTMASK, 0);
	nsp = fsp + words * 4 + ((frame[7] & (1u << 9)) ? 4 : 0);
	if (mode == 1) {
		if ((frame[7] & 0x1ff) == 0) {
			invpc(m, "return to handler with thread frame");
			return;
		}
		wreg(m, UC_ARM_REG_XPSR, frame[7] & ~(1u << 9));
		if (m->has_fpu)
			wreg(m, UC_ARM_REG_CONTROL,
			     (control & ~CONTROL_FP) | (ext ? CONTROL_FP : 0));
	} else {
		uint32_t npriv = control & 1u;

		/* Privileged while in handler mode: drop nPRIV so the thread-mode writes land. */
		wreg(m, UC_ARM_REG_CONTROL, (control & ~1u & ~CONTROL_FP) | (ext ? CONTROL_FP : 0));
		wreg(m, UC_ARM_REG_XPSR, (frame[7] & ~(1u << 9)) & ~0x1ffu);
		wreg(m, UC_ARM_REG_CONTROL,
		     (mode == 0xd ? 2u : 0u) | (ext ? CONTROL_FP : 0) | npriv);
	}
	wreg(m, UC_ARM_REG_SP, nsp);
	for (i = 0; i < 6; i++)
		wreg(m, fr[i], frame[i]);
	if (ext && (m->scs.fpccr & FPCCR_LSPACT)) {
		/* Never preserved: the FP registers still hold the context (ExceptionReturn). */
		m->scs.fpccr &= ~FPCCR_LSPACT;
	} else if (ext) {
		for (i = 0; i < 16; i++)
			wreg(m, UC_ARM_REG_S0 + i, frame[8 + i]);
		wreg(m, UC_ARM_REG_FPSCR, frame[24]);
	}
	wreg(m, UC_ARM_REG_PC, frame[6] | 1u);
	update_any_pending(m);
	fp_env_check(m);
	/* Tail-chain: a pending exception that may now run is entered before any thread code. */
	ms__rh_take_pending(m);
}

void ms__rh_fault(struct ms_rh_machine *m, int exc, uint32_t cfsr_bits, bool addr_valid,
                  uint32_t addr)
{
	int target = exc;
	int cur = exec_prio(m, true);
	bool enabled = false;

	if (!m->v6m) {
		m->scs.cfsr |= cfsr_bits;
		if (addr_valid && exc == EXC_BUSFAULT)
			m->scs.bfar = addr;
		if (addr_valid && exc == EXC_MEMMANAGE) {
			m->scs.mmfar = addr;
			m->scs.cfsr |= 0x80;
		}
	}
	if (exc == EXC_MEMMANAGE)
		enabled = m->scs.shcsr_en & (1u << 16);
	else if (exc == EXC_BUSFAULT)
		enabled = m->scs.shcsr_en & (1u << 17);
	else if (exc == EXC_USAGEFAULT)
		enabled = m->scs.shcsr_en & (1u << 18);
	if (m->v6m)
		enabled = false;
	if (exc != EXC_HARDFAULT && (!enabled || exc_prio(m, exc) >= cur)) {
		target = EXC_HARDFAULT;
		m->scs.hfsr |= HFSR_FORCED;
	}
	if (target == EXC_HARDFAULT && cur <= -1) {
		char why[200];

		snprintf(why, sizeof(why),
		         "fault (exception %d, cfsr bits 0x%08x) while at priority %d", exc,
		         cfsr_bits, cur);
		ms__rh_lockup(m, why);
		return;
	}
	m->scs.pending[target] = 1;
	exc_enter(m, target, BG_UNKNOWN);
}

void ms__rh_on_intr(struct ms_rh_machine *m, uint32_t intno)
{
	switch (intno) {
	case 2: { /* SVC: PC is already past the instruction. */
		int cur = exec_prio(m, false);

		if (exc_prio(m, EXC_SVCALL) >= cur) {
			ms__rh_fault(m, EXC_HARDFAULT, 0, false, 0);
			m->scs.hfsr |= HFSR_FORCED;
			return;
		}
		m->scs.pending[EXC_SVCALL] = 1;
		exc_enter(m, EXC_SVCALL, cur);
		return;
	}
	case 8: /* exception return */
		exc_return(m);
		return;
	case 7: /* BKPT */
		if (m->gdb != NULL && ms_rh_gdb_attached(m->gdb)) {
			m->halted_for_debug = true;
			ms_rh_gdb_note_stop(m->gdb, 5, "swbreak");
			uc_emu_stop(m->uc);
			return;
		}
		/* DebugMonitor is not enabled: the breakpoint escalates to HardFault. */
		m->scs.dfsr |= 2;
		m->scs.hfsr |= 1u << 31;
		if (exec_prio(m, true) <= -1) {
			ms__rh_lockup(m, "bkpt in HardFault or NMI with no debugger attached");
			return;
		}
		m->scs.pending[EXC_HARDFAULT] = 1;
		exc_enter(m, EXC_HARDFAULT, BG_UNKNOWN);
		return;
	case 1: /* UDEF */
		ms__rh_fault(m, EXC_USAGEFAULT, CFSR_UNDEFINSTR, false, 0);
		return;
	case 17: /* NOCP */
		ms__rh_fault(m, EXC_USAGEFAULT, CFSR_NOCP, false, 0);
		return;
	case 18: /* INVSTATE */
		ms__rh_fault(m, EXC_USAGEFAULT, CFSR_INVSTATE, false, 0);
		return;
	case 19: /* STKOF: the core checks MSPLIM/PSPLIM (ARMv8-M) when software sets them */
		ms__rh_fault(m, EXC_USAGEFAULT, CFSR_STKOF, false, 0);
		return;
	case 22: /* UNALIGNED */
		ms__rh_fault(m, EXC_USAGEFAULT, 1u << 24, false, 0);
		return;
	case 3: /* prefetch abort */
		ms__rh_fault(m, EXC_MEMMANAGE, 0x01, false, 0);
		return;
	case 4: /* data abort */
		ms__rh_fault(m, EXC_BUSFAULT, 0x8200, true, m->fault_addr);
		return;
	default: {
		char why[80];

		snprintf(why, sizeof(why), "unhandled CPU exception %u", intno);
		ms__rh_lockup(m, why);
		return;
	}
	}
}

/* ---- SysTick ---- */

static uint64_t syst_div(struct ms_rh_machine *m)
{
	uint64_t d;

	if (m->scs.syst_csr & 4)
		return 1;
	/* The reference clock: 1 MHz, as on the MPS2 boards. */
	d = m->cpu_hz / 1000000u;
	return d ? d : 1;
}

uint64_t ms__rh_systick_next(struct ms_rh_machine *m)
{
	if (!(m->scs.syst_csr & 1) || m->scs.syst_rvr == 0)
		return UINT64_MAX;
	return m->scs.syst_next;
}

void ms__rh_systick_event(struct ms_rh_machine *m)
{
	m->scs.syst_countflag = true;
	if (m->scs.syst_csr & 2)
		ms__rh_scs_set_pending(m, EXC_SYSTICK);
	m->scs.syst_next += ((uint64_t)m->scs.syst_rvr + 1) * syst_div(m);
	if (m->scs.syst_next <= m->icount)
		m->scs.syst_next = m->icount + ((uint64_t)m->scs.syst_rvr + 1) * syst_div(m);
}

static uint32_t syst_cvr(struct ms_rh_machine *m)
{
	uint64_t left;

	if (!(m->scs.syst_csr & 1))
		return m->scs.syst_cvr;
	if (m->scs.syst_rvr == 0)
		return 0;
	left = m->scs.syst_next > m->icount ? (m->scs.syst_next - m->icount) / syst_div(m) : 0;
	return left > m->scs.syst_rvr ? m->scs.syst_rvr : (uint32_t)left;
}

static void syst_start(struct ms_rh_machine *m, uint32_t from)
{
	uint64_t d = syst_div(m);

	m->scs.syst_next =
	    m->icount + (from ? (uint64_t)from * d : ((uint64_t)m->scs.syst_rvr + 1) * d);
}

/* ---- SCS register file ---- */

static uint32_t cpuid(struct ms_rh_machine *m)
{
	switch (m->cpu_model) {
	case UC_CPU_ARM_CORTEX_M0:
		return is_m0plus(m) ? 0x410cc601 : 0x410cc200; /* M0+ r0p1, M0 r0p0 */
	case UC_CPU_ARM_CORTEX_M3:
		return 0x412fc231;
	case UC_CPU_ARM_CORTEX_M4:
		return 0x410fc241;
	case UC_CPU_ARM_CORTEX_M7:
		return 0x411fc272;
	default:
		return 0x410fd213;
	}
}

/*
 * ARMv6-M (M0, M0+) implements a subset of the SCS: no ICTR, SHPR1, CFSR,
 * HFSR, MMFAR, BFAR, AFSR, ID registers, CPACR, STIR or FPU; one word each
 * of ISER/ICER/ISPR/ICPR, no IABR; VTOR only on the M0+. The rest of the
 * space reads as zero and ignores writes.
 */
static bool v6m_has(struct ms_rh_machine *m, uint32_t off)
{
	switch (off) {
	case 0x010:
	case 0x014:
	case 0x018:
	case 0x01c:
	case 0x100:
	case 0x180:
	case 0x200:
	case 0x280:
	case 0xd00:
	case 0xd04:
	case 0xd0c:
	case 0xd10:
	case 0xd14:
	case 0xd1c:
	case 0xd20:
	case 0xd24:
	case 0xd30:
		return true;
	case 0xd08:
		return is_m0plus(m);
	default:
		return off >= 0x400 && off < 0x420;
	}
}

/* The SHPR bytes that exist: the other system handlers have fixed or no priority. */
static bool shpr_exists(struct ms_rh_machine *m, uint32_t exc)
{
	if (exc == EXC_SVCALL || exc == EXC_PENDSV || exc == EXC_SYSTICK)
		return true;
	return !m->v6m &&
	    (exc == EXC_MEMMANAGE || exc == EXC_BUSFAULT || exc == EXC_USAGEFAULT ||
	     exc == EXC_DEBUGMON);
}

static void shpr_write_byte(struct ms_rh_machine *m, uint32_t exc, uint8_t b)
{
	if (shpr_exists(m, exc))
		m->scs.prio[exc] = b & prio_mask(m);
}

static uint32_t icsr_read(struct ms_rh_machine *m)
{
	uint32_t v = rreg(m, UC_ARM_REG_XPSR) & 0x1ff;
	uint32_t i, n = nexc(m), nact = 0;
	int p, best = best_pending(m, &p);

	for (i = 1; i < n; i++)
		nact += m->scs.active[i];
	if (nact <= 1 && !m->v6m)
		v |= 1u << 11; /* RETTOBASE (not in ARMv6-M) */
	v |= ((uint32_t)best & 0x1ff) << 12;
	for (i = 16; i < n; i++)
		if (m->scs.pending[i]) {
			v |= 1u << 22;
			break;
		}
	if (m->scs.pending[EXC_SYSTICK])
		v |= 1u << 26;
	if (m->scs.pending[EXC_PENDSV])
		v |= 1u << 28;
	if (m->scs.pending[EXC_NMI])
		v |= 1u << 31;
	return v;
}

static uint32_t shcsr_read(struct ms_rh_machine *m)
{
	uint32_t v = m->scs.shcsr_en;

	if (m->v6m)
		return m->scs.pending[EXC_SVCALL] ? 1u << 15 : 0; /* SVCALLPENDED only */

	v |= m->scs.active[EXC_MEMMANAGE] ? 1u << 0 : 0;
	v |= m->scs.active[EXC_BUSFAULT] ? 1u << 1 : 0;
	v |= m->scs.active[EXC_USAGEFAULT] ? 1u << 3 : 0;
	v |= m->scs.active[EXC_SVCALL] ? 1u << 7 : 0;
	v |= m->scs.active[EXC_DEBUGMON] ? 1u << 8 : 0;
	v |= m->scs.active[EXC_PENDSV] ? 1u << 10 : 0;
	v |= m->scs.active[EXC_SYSTICK] ? 1u << 11 : 0;
	v |= m->scs.pending[EXC_USAGEFAULT] ? 1u << 12 : 0;
	v |= m->scs.pending[EXC_MEMMANAGE] ? 1u << 13 : 0;
	v |= m->scs.pending[EXC_BUSFAULT] ? 1u << 14 : 0;
	v |= m->scs.pending[EXC_SVCALL] ? 1u << 15 : 0;
	return v;
}

/* A 32-bit register; byte-addressed priority registers are handled by the caller. */
static uint32_t scs_read32(struct ms_rh_machine *m, uint32_t off)
{
	uint32_t v = 0, i, base;

	if (m->v6m && !v6m_has(m, off))
		return 0;
	if (off >= 0x100 && off < 0x500) {
		uint8_t *arr;

		if (off >= 0x400) {
			for (i = 0; i < 4; i++) {
				uint32_t exc = 16 + (off - 0x400) + i;

				if (exc < nexc(m))
					v |= (uint32_t)m->scs.prio[exc] << (8 * i);
			}
			return v;
		}
		switch (off & 0xf80) {
		case 0x100:
		case 0x180:
			arr = m->scs.enabled;
			break;
		case 0x200:
		case 0x280:
			arr = m->scs.pending;
			break;
		case 0x300:
			arr = m->scs.active;
			break;
		default:
			return 0;
		}
		base = 16 + ((off & 0x7f) / 4) * 32;
		for (i = 0; i < 32; i++)
			if (base + i < nexc(m) && arr[base + i])
				v |= 1u << i;
		return v;
	}
	switch (off) {
	case 0x004:
		return (m->nirq + 31) / 32 - 1;
	case 0x010: {
		uint32_t csr = m->scs.syst_csr | (m->scs.syst_countflag ? 1u << 16 : 0);

		m->scs.syst_countflag = false;
		return csr;
	}
	case 0x014:
		return m->scs.syst_rvr;
	case 0x018:
		return syst_cvr(m);
	case 0x01c:
		return (1u << 30) | ((uint32_t)(m->cpu_hz / 100 - 1) & 0xffffff);
	case 0xd00:
		return cpuid(m);
	case 0xd04:
		return icsr_read(m);
	case 0xd08:
		return m->scs.vtor;
	case 0xd0c:
		return 0xfa050000u | (m->scs.prigroup << 8);
	case 0xd10:
		return m->scs.scr;
	case 0xd14:
		return m->scs.ccr;
	case 0xd18:
	case 0xd1c:
	case 0xd20:
		for (i = 0; i < 4; i++)
			if (shpr_exists(m, 4 + (off - 0xd18) + i))
				v |= (uint32_t)m->scs.prio[4 + (off - 0xd18) + i] << (8 * i);
		return v;
	case 0xd24:
		return shcsr_read(m);
	case 0xd28:
		return m->scs.cfsr;
	case 0xd2c:
		return m->scs.hfsr;
	case 0xd30:
		return m->scs.dfsr;
	case 0xd34:
		return m->scs.mmfar;
	case 0xd38:
		return m->scs.bfar;
	case 0xd3c:
		return m->scs.afsr;
	case 0xd40:
		return 0x00000030; /* ID_PFR0: Thumb-2 */
	case 0xd44:
		return 0x00000200; /* ID_PFR1: M profile */
	case 0xd88:
		return m->scs.cpacr;
	case 0xd90:
		return 0; /* MPU_TYPE: no MPU */
	case 0xf34:
		return m->scs.fpccr;
	case 0xf38:
		return m->has_fpu ? m->scs.fpcar : 0;
	case 0xf3c:
		return m->scs.fpdscr;
	case 0xf40:
		return m->has_fpu ? 0x10110021u : 0; /* MVFR0 */
	case 0xf44:
		return m->has_fpu ? 0x11000011u : 0; /* MVFR1 */
	default:
		return 0;
	}
}

static void set_bits(struct ms_rh_machine *m, uint8_t *arr, uint32_t base, uint32_t v, uint8_t to)
{
	uint32_t i;

	for (i = 0; i < 32; i++)
		if ((v & (1u << i)) && base + i < nexc(m))
			arr[base + i] = to;
}

static void scs_write32(struct ms_rh_machine *m, uint32_t off, uint32_t v)
{
	uint32_t i, base;

	if (m->v6m && !v6m_has(m, off))
		return;
	if (off >= 0x100 && off < 0x400) {
		base = 16 + ((off & 0x7f) / 4) * 32;
		switch (off & 0xf80) {
		case 0x100:
			set_bits(m, m->scs.enabled, base, v, 1);
			break;
		case 0x180:
			set_bits(m, m->scs.enabled, base, v, 0);
			break;
		case 0x200:
			set_bits(m, m->scs.pending, base, v, 1);
			break;
		case 0x280:
			set_bits(m, m->scs.pending, base, v, 0);
			/* A line still asserted pends again at once. */
			for (i = 0; i < 32; i++)
				if (base + i < nexc(m) && m->scs.level[base + i] &&
				    !m->scs.active[base + i])
					m->scs.pending[base + i] = 1;
			break;
		default:
			break;
		}
		update_any_pending(m);
		return;
	}
	switch (off) {
	case 0x010: {
		uint32_t was = m->scs.syst_csr;

		m->scs.syst_csr = v & 7;
		if ((v & 1) && !(was & 1))
			syst_start(m, m->scs.syst_cvr);
		else if (!(v & 1) && (was & 1))
			m->scs.syst_cvr = syst_cvr(m);
		break;
	}
	case 0x014:
		m->scs.syst_rvr = v & 0xffffff;
		break;
	case 0x018:
		m->scs.syst_cvr = 0;
		m->scs.syst_countflag = false;
		if (m->scs.syst_csr & 1)
			syst_start(m, 0);
		break;
	default:
		break;
	}
	/* SysTick changes move the next timed event: the run loop must stop for it. */
	if (off >= 0x010 && off <= 0x018)
		ms__rh_recompute_deadline(m);
	switch (off) {
	case 0xd04:
		if (v & (1u << 31))
			ms__rh_scs_set_pending(m, EXC_NMI);
		if (v & (1u << 28))
			ms__rh_scs_set_pending(m, EXC_PENDSV);
		if (v & (1u << 27))
			m->scs.pending[EXC_PENDSV] = 0;
		if (v & (1u << 26))
			ms__rh_scs_set_pending(m, EXC_SYSTICK);
		if (v & (1u << 25))
			m->scs.pending[EXC_SYSTICK] = 0;
		update_any_pending(m);
		break;
	case 0xd08:
		m->scs.vtor = v & 0xffffff80u;
		break;
	case 0xd0c:
		if ((v >> 16) != 0x05fa)
			break;
		if (!m->v6m)
			m->scs.prigroup = (v >> 8) & 7;
		if (v & 4) {
			/* The run loop resets the machine at the next block boundary. */
			m->reset_request = true;
			m->attention = 1;
			m->deadline = 0;
		}
		break;
	case 0xd10:
		m->scs.scr = v & 0x16;
		break;
	case 0xd14:
		if (!m->v6m) /* read-only in ARMv6-M */
			m->scs.ccr = v & 0x31b;
		break;
	case 0xd18:
	case 0xd1c:
	case 0xd20:
		for (i = 0; i < 4; i++)
			shpr_write_byte(m, 4 + (off - 0xd18) + i, (uint8_t)(v >> (8 * i)));
		m->attention = 1;
		break;
	case 0xd24:
		m->scs.shcsr_en = v & (7u << 16);
		break;
	case 0xd28:
		m->scs.cfsr &= ~v;
		break;
	case 0xd2c:
		m->scs.hfsr &= ~v;
		break;
	case 0xd30:
		m->scs.dfsr &= ~v;
		break;
	case 0xd34:
		m->scs.mmfar = v;
		break;
	case 0xd38:
		m->scs.bfar = v;
		break;
	case 0xd88:
		/* CP10/CP11 read as zero without an FPU; who may use it is decided here. */
		m->scs.cpacr = m->has_fpu ? v & (0xfu << 20) : 0;
		fp_env_check(m);
		break;
	case 0xf00:
		if ((v & 0x1ff) < m->nirq)
			ms__rh_scs_set_pending(m, 16 + (int)(v & 0x1ff));
		break;
	case 0xf34:
		if (m->has_fpu) {
			m->scs.fpccr = v & FPCCR_RW;
			fp_env_check(m);
		}
		break;
	case 0xf38:
		if (m->has_fpu)
			m->scs.fpcar = v & ~7u;
		break;
	case 0xf3c:
		if (m->has_fpu) {
			m->scs.fpdscr = v & 0x07c00000u;
			fp_env_check(m);
		}
		break;
	default:
		break;
	}
}

static uint64_t scs_read(uc_engine *uc, uint64_t offset, unsigned size, void *ud)
{
	struct ms_rh_machine *m = ud;
	uint32_t off = (uint32_t)offset;
	uint32_t v = scs_read32(m, off & ~3u);
	uint64_t r;

	if (size == 4)
		r = v;
	else if (size == 2)
		r = (v >> (8 * (off & 2))) & 0xffff;
	else
		r = (v >> (8 * (off & 3))) & 0xff;
	return r;
}

static void scs_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *ud)
{
	struct ms_rh_machine *m = ud;
	uint32_t off = (uint32_t)offset;

	/* The CPU's lazy FP save (file comment): only while we armed it. */
	if (off >= FP_TRAP_OFF && off < FP_TRAP_OFF + 4 * FP_TRAP_WORDS && size == 4 &&
	    (m->fp_env.lspact || m->scs.fp_trap != FP_TRAP_IDLE)) {
		fp_trap_write(m, (off - FP_TRAP_OFF) / 4, (uint32_t)value);
		return;
	}
	if (m->v6m && !v6m_has(m, off & ~3u))
		return;
	/* Priority registers are byte-addressable: merge narrow writes. */
	if (size < 4 && ((off >= 0x400 && off < 0x5f0) || (off >= 0xd18 && off < 0xd24))) {
		unsigned i;

		for (i = 0; i < size; i++) {
			uint32_t o = off + i;
			uint8_t b = (uint8_t)(value >> (8 * i));

			if (o >= 0x400 && 16 + (o - 0x400) < nexc(m))
				m->scs.prio[16 + (o - 0x400)] = b & prio_mask(m);
			else if (o >= 0xd18 && o < 0xd24)
				shpr_write_byte(m, 4 + (o - 0xd18), b);
		}
		m->attention = 1;
		return;
	}
	if (size < 4) {
		uint32_t cur = scs_read32(m, off & ~3u);
		uint32_t sh = 8 * (off & 3), mask = (size == 2 ? 0xffffu : 0xffu) << sh;

		/* Write-one registers must not see the other bytes' current bits again. */
		if ((off >= 0x100 && off < 0x300) || (off & ~3u) == 0xd28 || (off & ~3u) == 0xd2c ||
		    (off & ~3u) == 0xd04)
			cur = 0;
		value = (cur & ~mask) | (((uint32_t)value << sh) & mask);
	}
	if (off >= 0x400 && off < 0x5f0) {
		unsigned i;

		for (i = 0; i < 4; i++) {
			uint32_t exc = 16 + ((off & ~3u) - 0x400) + i;

			if (exc < nexc(m))
				m->scs.prio[exc] = (uint8_t)(value >> (8 * i)) & prio_mask(m);
		}
		m->attention = 1;
		return;
	}
	scs_write32(m, off & ~3u, (uint32_t)value);
}

int ms__rh_scs_map(struct ms_rh_machine *m)
{
	return uc_mmio_map(m->uc, SCS_BASE, 0x1000, scs_read, m, scs_write, m) == UC_ERR_OK ? 0
	                                                                                    : -1;
}

void ms__rh_scs_reset(struct ms_rh_machine *m)
{
	memset(&m->scs, 0, sizeof(m->scs));
	m->scs.ccr = m->v6m ? 0x208 : 0x200; /* STKALIGN */
	m->scs.fpccr = m->has_fpu ? FPCCR_ASPEN | FPCCR_LSPEN : 0;
	m->scs.cpacr = 0;
	m->fp_env.valid = false;
	fp_env_check(m);
}
