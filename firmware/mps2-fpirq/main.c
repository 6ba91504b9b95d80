/*
 * mps2-fpirq (Cortex-M4F, QEMU mps2-an386): the cost of FP context
 * handling at exception entry and return. Thread code keeps FP values live
 * while SysTick fires every 200 cycles; the handler uses the FPU on every
 * other tick, so half the entries preserve the thread's FP state lazily
 * and half never do. Prints a checksum of both sides and "done" after
 * TICKS interrupts (bench/ times it on rehost; compare it with QEMU).
 */
#include "mps2.h"

#ifndef TICKS
#define TICKS 20000u
#endif
/* The handler uses the FPU on one tick in ISR_FP_EVERY. */
#ifndef ISR_FP_EVERY
#define ISR_FP_EVERY 2u
#endif

static volatile uint32_t ticks;
static volatile float isr_sum;

void systick_handler(void)
{
	uint32_t t = ticks + 1;

	if (t % ISR_FP_EVERY == 1 % ISR_FP_EVERY)
		isr_sum = isr_sum + 0.5f;
	ticks = t;
}

int main(void)
{
	float a = 0.0f, b = 1.0f;
	uint32_t n = 0;

	uart_init();
	uart_puts("fpirq start\r\n");
	SYST_RVR = 200 - 1;
	SYST_CVR = 0;
	SYST_CSR = 7;
	while (ticks < TICKS) {
		__asm__ volatile("vadd.f32 %0, %0, %1" : "+t"(a) : "t"(b));
		n++;
	}
	SYST_CSR = 0;
	uart_puts(a == (float)n ? "thread sum ok" : "thread sum WRONG");
	uart_puts(isr_sum == (float)((TICKS + ISR_FP_EVERY - 1) / ISR_FP_EVERY) * 0.5f
	              ? ", isr sum ok\r\n"
	              : ", isr sum WRONG\r\n");
	uart_puts("done\r\n");
	for (;;)
		__asm__ volatile("wfi");
}
