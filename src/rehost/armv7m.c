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
 * FP lazy stacking is performed eagerly: when CONTROL.FPCA is set the
 * extended frame is written at entry (the values software sees are the
 * same; FPCCR.LSPACT is never set).
 *
 * Threads: the machine's owner thread only.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "rehost/gdb.h"
#include "rehost/machine.h"

#define SCS_BASE 0xe000e000u

#define CCR_STKALIGN (1u << 9)
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

/* Execution priority: the most urgent of active exceptions and masks. */
static int exec_prio(struct ms_rh_machine *m, bool ignore_primask)
{
	uint32_t i, n = nexc(m);
	int p = 256;

	for (i = 1; i < n; i++)
		if (m->scs.active[i]) {
			int q = exc_prio(m, (int)i);

			if (q < p)
				p = q;
		}
	if (!m->v6m) {
		uint32_t basepri = ms__rh_sysreg(m, UC_ARM_REG_BASEPRI) & 0xff;

		if (basepri != 0 && group_prio(m, (uint8_t)basepri) < p)
			p = group_prio(m, (uint8_t)basepri);
		if ((ms__rh_sysreg(m, UC_ARM_REG_FAULTMASK) & 1) && p > -1)
			p = -1;
	}
	if (!ignore_primask && (ms__rh_sysreg(m, UC_ARM_REG_PRIMASK) & 1) && p > 0)
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

/* Make [sp, sp+len) writable memory, mapping lazily like the data path does. */
static int stack_write(struct ms_rh_machine *m, uint32_t sp, const uint32_t *w, size_t n)
{
	return ms_rh_mem_write(m, sp, w, n * 4);
}

/*
 * Exception entry (ARMv7-M PushStack + ExceptionTaken). Order of writes:
 * frame, SP of the current bank, xPSR (switches to handler mode, which is
 * privileged and uses MSP), then CONTROL (FPCA) — see the file comment.
 */
static void exc_enter(struct ms_rh_machine *m, int exc)
{
	static const int fr[] = {UC_ARM_REG_R0,  UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3,
	                         UC_ARM_REG_R12, UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_XPSR};
	uint32_t frame[8 + 18];
	uint32_t control = rreg(m, UC_ARM_REG_CONTROL);
	uint32_t xpsr = rreg(m, UC_ARM_REG_XPSR);
	uint32_t sp = rreg(m, UC_ARM_REG_SP);
	bool handler = (xpsr & 0x1ff) != 0;
	bool fpca = m->has_fpu && (control & 4);
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
	if (fpca) {
		for (i = 0; i < 16; i++)
			frame[8 + i] = rreg(m, UC_ARM_REG_S0 + i);
		frame[24] = rreg(m, UC_ARM_REG_FPSCR);
		frame[25] = 0;
	}
	if (stack_write(m, nsp, frame, words) != 0) {
		char why[160];

		snprintf(why, sizeof(why),
		         "stack 0x%08x outside memory while entering exception %d", nsp, exc);
		ms__rh_lockup(m, why);
		return;
	}
	if (ms_rh_mem_read(m, m->scs.vtor + 4u * (uint32_t)exc, &vec, 4) != 0) {
		char why[160];

		snprintf(why, sizeof(why), "vector table at 0x%08x unreadable for exception %d",
		         m->scs.vtor, exc);
		ms__rh_lockup(m, why);
		return;
	}
	if ((vec & 1) == 0 || ms_rh_mem_read(m, vec & ~1u, &i, 2) != 0) {
		char why[160];

		snprintf(why, sizeof(why), "vector %d is 0x%08x, which points to no Thumb code",
		         exc, vec);
		ms__rh_lockup(m, why);
		return;
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
		wreg(m, UC_ARM_REG_CONTROL, control & ~4u);
	wreg(m, UC_ARM_REG_LR, excret);
	wreg(m, UC_ARM_REG_PC, vec | 1);
	m->scs.pending[exc] = 0;
	m->scs.active[exc] = 1;
	update_any_pending(m);
}

bool ms__rh_take_pending(struct ms_rh_machine *m)
{
	int p, exc;

	if (!m->scs.any_pending || m->locked_up)
		return false;
	exc = best_pending(m, &p);
	if (exc == 0 || p >= exec_prio(m, false))
		return false;
	exc_enter(m, exc);
	return true;
}

static void invpc(struct ms_rh_machine *m, const char *why)
{
	(void)why;
	ms__rh_fault(m, EXC_USAGEFAULT, 1u << 18, false, 0);
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
			wreg(m, UC_ARM_REG_CONTROL, (control & ~4u) | (ext ? 4u : 0));
	} else {
		uint32_t npriv = control & 1u;

		/* Privileged while in handler mode: drop nPRIV so the thread-mode writes land. */
		wreg(m, UC_ARM_REG_CONTROL, (control & ~1u & ~4u) | (ext ? 4u : 0));
		wreg(m, UC_ARM_REG_XPSR, (frame[7] & ~(1u << 9)) & ~0x1ffu);
		wreg(m, UC_ARM_REG_CONTROL, (mode == 0xd ? 2u : 0u) | (ext ? 4u : 0) | npriv);
	}
	wreg(m, UC_ARM_REG_SP, nsp);
	for (i = 0; i < 6; i++)
		wreg(m, fr[i], frame[i]);
	if (ext) {
		for (i = 0; i < 16; i++)
			wreg(m, UC_ARM_REG_S0 + i, frame[8 + i]);
		wreg(m, UC_ARM_REG_FPSCR, frame[24]);
	}
	wreg(m, UC_ARM_REG_PC, frame[6] | 1u);
	update_any_pending(m);
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
		m->scs.hfsr |= 1u << 30; /* FORCED */
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
	exc_enter(m, target);
}

void ms__rh_on_intr(struct ms_rh_machine *m, uint32_t intno)
{
	switch (intno) {
	case 2: /* SVC: PC is already past the instruction. */
		if (exc_prio(m, EXC_SVCALL) >= exec_prio(m, false)) {
			ms__rh_fault(m, EXC_HARDFAULT, 0, false, 0);
			m->scs.hfsr |= 1u << 30;
			return;
		}
		m->scs.pending[EXC_SVCALL] = 1;
		exc_enter(m, EXC_SVCALL);
		return;
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
		exc_enter(m, EXC_HARDFAULT);
		return;
	case 17: /* NOCP */
		ms__rh_fault(m, EXC_USAGEFAULT, 1u << 19, false, 0);
		return;
	case 18: /* INVSTATE */
		ms__rh_fault(m, EXC_USAGEFAULT, 1u << 17, false, 0);
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
		return 0x410cc200;
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

static uint32_t icsr_read(struct ms_rh_machine *m)
{
	uint32_t v = rreg(m, UC_ARM_REG_XPSR) & 0x1ff;
	uint32_t i, n = nexc(m), nact = 0;
	int p, best = best_pending(m, &p);

	for (i = 1; i < n; i++)
		nact += m->scs.active[i];
	if (nact <= 1)
		v |= 1u << 11; /* RETTOBASE */
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
		return m->scs.fpcar;
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
		m->scs.ccr = v & 0x31b;
		break;
	case 0xd18:
	case 0xd1c:
	case 0xd20:
		for (i = 0; i < 4; i++)
			m->scs.prio[4 + (off - 0xd18) + i] = (uint8_t)(v >> (8 * i)) & prio_mask(m);
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
		m->scs.cpacr = v & (0xfu << 20);
		break;
	case 0xf00:
		if ((v & 0x1ff) < m->nirq)
			ms__rh_scs_set_pending(m, 16 + (int)(v & 0x1ff));
		break;
	case 0xf34:
		m->scs.fpccr = (m->scs.fpccr & ~0xc0000000u) | (v & 0xc0000000u);
		break;
	case 0xf38:
		m->scs.fpcar = v & ~7u;
		break;
	case 0xf3c:
		m->scs.fpdscr = v & 0x07c00000u;
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
	ms__rh_mmio_log(m, "scs", SCS_BASE + off, size, false, r);
	return r;
}

static void scs_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *ud)
{
	struct ms_rh_machine *m = ud;
	uint32_t off = (uint32_t)offset;

	ms__rh_mmio_log(m, "scs", SCS_BASE + off, size, true, value);
	/* Priority registers are byte-addressable: merge narrow writes. */
	if (size < 4 && ((off >= 0x400 && off < 0x5f0) || (off >= 0xd18 && off < 0xd24))) {
		unsigned i;

		for (i = 0; i < size; i++) {
			uint32_t o = off + i;
			uint8_t b = (uint8_t)(value >> (8 * i)) & prio_mask(m);

			if (o >= 0x400 && 16 + (o - 0x400) < nexc(m))
				m->scs.prio[16 + (o - 0x400)] = b;
			else if (o >= 0xd18 && o < 0xd24)
				m->scs.prio[4 + (o - 0xd18)] = b;
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
	m->scs.fpccr = m->has_fpu ? 0xc0000000u : 0;
	m->scs.cpacr = 0;
}
