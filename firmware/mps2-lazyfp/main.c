/*
 * mps2-lazyfp (Cortex-M4F, QEMU mps2-an386): FP lazy context preservation
 * as ARMv7-M specifies it (B1.5.7), observed from software. Thread code
 * loads known values into s0-s15 and FPSCR, paints the stack below SP,
 * and pends PendSV:
 *   1. the handler uses no FP: FPCCR.LSPACT is set, FPCAR points into the
 *      reserved frame, which stays unwritten; LSPACT clears on return;
 *   2. the handler's first FP instruction writes the thread's s0-s15 and
 *      FPSCR to FPCAR and clears LSPACT; the return restores them;
 *   3. PendSV pends a higher-priority SysTick whose FP use preserves the
 *      thread's state (saved by PendSV's entry) from inside the nested
 *      handler;
 *   4. with FPCCR.LSPEN=0 the extended frame is written at entry;
 *   5. software sets FPCAR and FPCCR.LSPACT itself: the next FP
 *      instruction preserves the registers there first;
 *   6. with FPCCR.ASPEN=0, FP use does not set CONTROL.FPCA: exceptions
 *      push the basic frame.
 * Every value is printed so that the output can be compared with QEMU's.
 */
#include "mps2.h"

#define FPU_FPCAR REG32(0xe000ef38)
#define ICSR_PENDSTSET (1u << 26)
#define FPCCR_LSPACT (1u << 0)
#define FPCCR_LSPEN (1u << 30)
#define FPCCR_ASPEN (1u << 31)
#define PAINT 0xa5a5a5a5u
#define FPSCR_INIT 0x02400000u /* DN, RMode = round towards +inf */

static const uint32_t init[16] = {
    0x3f800000, 0x40000000, 0x40400000, 0x40800000, 0x40a00000, 0x40c00000, 0x40e00000, 0x41000000,
    0x41100000, 0x41200000, 0x41300000, 0x41400000, 0x41500000, 0x41600000, 0x41700000, 0x41800000,
};
static uint32_t back[16];
static volatile uint32_t mode;

/* What the handlers saw, printed by thread code. */
static volatile uint32_t h_excret, h_control, h_fpccr, h_fpccr_after, h_fpcar_off;
static volatile uint32_t h_frame[26], n_excret, n_fpccr, n_fpccr_after;
static uint32_t *volatile h_sp;

static void copy_frame(const uint32_t *sp)
{
	int i;

	for (i = 0; i < 26; i++)
		h_frame[i] = sp[i];
}

/* Called from the naked handlers with the frame address and EXC_RETURN. */
void pendsv_c(uint32_t *sp, uint32_t excret)
{
	uint32_t control;

	__asm__ volatile("mrs %0, control" : "=r"(control));
	h_sp = sp;
	h_excret = excret;
	h_control = control;
	h_fpccr = FPU_FPCCR;
	h_fpcar_off = FPU_FPCAR - (uint32_t)sp;
	if (mode == 2) {
		/* The first FP instruction: the thread's registers are preserved first. */
		__asm__ volatile("vmov s0, %0\nvmov s7, %0" ::"r"(0) : "s0", "s7");
	} else if (mode == 3) {
		SCB_ICSR = ICSR_PENDSTSET;
		__asm__ volatile("dsb\nisb");
	}
	h_fpccr_after = FPU_FPCCR;
	copy_frame(sp);
}

void systick_c(uint32_t *sp, uint32_t excret)
{
	(void)sp;
	n_excret = excret;
	n_fpccr = FPU_FPCCR;
	__asm__ volatile("vmov s1, %0" ::"r"(0) : "s1");
	n_fpccr_after = FPU_FPCCR;
}

__attribute__((naked)) void pendsv_handler(void)
{
	__asm__ volatile("mov r0, sp\n"
	                 "mov r1, lr\n"
	                 "push {r4, lr}\n"
	                 "bl pendsv_c\n"
	                 "pop {r4, pc}\n");
}

__attribute__((naked)) void systick_handler(void)
{
	__asm__ volatile("mov r0, sp\n"
	                 "mov r1, lr\n"
	                 "push {r4, lr}\n"
	                 "bl systick_c\n"
	                 "pop {r4, pc}\n");
}

/* Load s0-s15 and FPSCR, paint 128 words below SP, pend PendSV, read the registers back. */
static uint32_t run_once(void)
{
	uint32_t fpscr;

	__asm__ volatile("vldmia %[in], {s0-s15}\n"
	                 "vmsr fpscr, %[fi]\n"
	                 "mov r0, sp\n"
	                 "sub r1, r0, #512\n"
	                 "1: str %[paint], [r1], #4\n"
	                 "cmp r1, r0\n"
	                 "blo 1b\n"
	                 "str %[set], [%[icsr]]\n"
	                 "dsb\n"
	                 "isb\n"
	                 "vstmia %[out], {s0-s15}\n"
	                 "vmrs %[fo], fpscr\n"
	                 : [fo] "=&r"(fpscr)
	                 : [in] "r"(init), [out] "r"(back), [fi] "r"(FPSCR_INIT),
	                   [paint] "r"(PAINT), [set] "r"(ICSR_PENDSVSET), [icsr] "r"(&SCB_ICSR)
	                 : "r0", "r1", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
	                   "s10", "s11", "s12", "s13", "s14", "s15", "memory", "cc");
	return fpscr;
}

static void kv(const char *k, uint32_t v)
{
	uart_puts(k);
	uart_puthex(v);
}

static void report(const char *name, uint32_t fpscr)
{
	int i, painted = 0, saved = 0, intact = 0;

	for (i = 8; i < 24; i++) {
		painted += h_frame[i] == PAINT;
		saved += h_frame[i] == init[i - 8];
	}
	for (i = 0; i < 16; i++)
		intact += back[i] == init[i];
	uart_puts(name);
	kv(" excret=", h_excret);
	kv(" control=", h_control & 7);
	kv(" fpccr=", h_fpccr);
	kv(" after=", h_fpccr_after);
	kv(" fpcar-sp=", h_fpcar_off);
	uart_puts("\r\n  frame: painted=");
	uart_putdec((uint32_t)painted);
	uart_puts(" saved=");
	uart_putdec((uint32_t)saved);
	kv(" fpscr=", h_frame[24]);
	kv(" reserved=", h_frame[25]);
	uart_puts("\r\n  thread: intact=");
	uart_putdec((uint32_t)intact);
	kv(" fpscr=", fpscr);
	kv(" fpccr=", FPU_FPCCR);
	uart_puts("\r\n");
}

int main(void)
{
	uart_init();
	uart_puts("lazyfp test\r\n");
	SCB_SHPR(14) = 0xff; /* PendSV lowest, SysTick highest */
	SCB_SHPR(15) = 0x00;
	for (mode = 1; mode <= 4; mode++) {
		uint32_t fpscr;

		if (mode == 4)
			FPU_FPCCR &= ~FPCCR_LSPEN;
		fpscr = run_once();
		report(mode == 1       ? "1 no FP in handler:"
		           : mode == 2 ? "2 FP in handler:"
		           : mode == 3 ? "3 FP in nested handler:"
		                       : "4 LSPEN=0:",
		       fpscr);
		if (mode == 3) {
			kv("  nested: excret=", n_excret);
			kv(" fpccr=", n_fpccr);
			kv(" after=", n_fpccr_after);
			uart_puts("\r\n");
		}
	}
	{
		/* 5: a lazy save that software arms by hand, in thread mode. */
		static uint32_t area[17];
		int i, saved = 0;

		for (i = 0; i < 17; i++)
			area[i] = PAINT;
		FPU_FPCAR = (uint32_t)area;
		FPU_FPCCR |= FPCCR_LSPACT;
		kv("5 software LSPACT: fpccr=", FPU_FPCCR);
		__asm__ volatile("vldmia %0, {s0-s15}" ::"r"(init)
		                 : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
		                   "s10", "s11", "s12", "s13", "s14", "s15", "memory");
		for (i = 0; i < 16; i++)
			saved += area[i] == init[i];
		kv(" after=", FPU_FPCCR);
		uart_puts(" saved=");
		uart_putdec((uint32_t)saved);
		kv(" fpscr=", area[16]);
		uart_puts("\r\n");
	}
	/* 6: no automatic FP context: CONTROL.FPCA stays clear, frames are basic. */
	FPU_FPCCR &= ~FPCCR_ASPEN;
	__asm__ volatile("msr control, %0\nisb" ::"r"(0));
	mode = 6;
	report("6 ASPEN=0:", run_once());
	uart_puts("lazyfp done\r\n");
	for (;;)
		__asm__ volatile("wfi");
}
