/*
 * mps2-fpu (Cortex-M4F, QEMU mps2-an386): floating point in thread mode and
 * in the SysTick handler at once. The handler clobbers s0-s15; the
 * extended exception frame (lazy stacking on hardware) must give the main
 * loop its registers back. Results are printed as integers.
 */
#include "mps2.h"

static volatile uint32_t ticks;
static volatile float isr_acc;

void systick_handler(void)
{
	float x = (float)ticks;

	/* Touch many FP registers. */
	__asm__ volatile("vmov s0, %0\n"
	                 "vmov s1, %0\n"
	                 "vmov s2, %0\n"
	                 "vmov s3, %0\n"
	                 "vmov s4, %0\n"
	                 "vmov s5, %0\n"
	                 "vmov s6, %0\n"
	                 "vmov s7, %0\n"
	                 "vmov s8, %0\n"
	                 "vmov s9, %0\n"
	                 "vmov s10, %0\n"
	                 "vmov s11, %0\n"
	                 "vmov s12, %0\n"
	                 "vmov s13, %0\n"
	                 "vmov s14, %0\n"
	                 "vmov s15, %0\n" ::"r"(0x7f7fffff)
	                 : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
	                   "s12", "s13", "s14", "s15");
	isr_acc = isr_acc + x * 0.5f;
	ticks++;
}

int main(void)
{
	float a = 1.0f, b = 0.0f;
	uint32_t i, fpccr;

	uart_init();
	SCB_CPACR |= 0xfu << 20;
	__asm__ volatile("dsb\nisb");
	fpccr = FPU_FPCCR;
	uart_puts("fpu test, fpccr aspen/lspen=");
	uart_puthex(fpccr & 0xc0000000u);
	uart_puts("\r\n");
	SYST_RVR = 500 - 1;
	SYST_CVR = 0;
	SYST_CSR = 7;
	i = 0;
	while (ticks < 50) {
		/* Keep values live in s-registers across interrupts. */
		__asm__ volatile("vadd.f32 %0, %0, %1" : "+t"(b) : "t"(a));
		__asm__ volatile("vmul.f32 %0, %0, %1" : "+t"(a) : "t"(1.0f));
		i++;
	}
	SYST_CSR = 0;
	/* Tick counts depend on QEMU's host timing: print only what must hold. */
	uart_puts(ticks >= 50 && isr_acc >= 612.0f ? "interrupted 50 times\r\n" : "ISR FAIL\r\n");
	uart_puts(b == (float)i && i > 50 ? "fpu PASS\r\n" : "fpu FAIL\r\n");
	for (;;)
		__asm__ volatile("wfi");
}
