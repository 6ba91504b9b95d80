/*
 * mps2-systick: SysTick interrupts on the core clock. The main loop sleeps
 * in WFI; the handler counts ticks. Prints each of 5 ticks, then PASS.
 */
#include "mps2.h"

static volatile uint32_t ticks;

void systick_handler(void)
{
	ticks++;
}

int main(void)
{
	uint32_t seen = 0;

	uart_init();
	uart_puts("systick test\r\n");
	SYST_RVR = 25000 - 1; /* 1 ms at 25 MHz */
	SYST_CVR = 0;
	SYST_CSR = 7; /* core clock, interrupt, enable */
	while (seen < 5) {
		__asm__ volatile("wfi");
		if (ticks != seen) {
			seen = ticks;
			uart_puts("tick ");
			uart_putdec(seen);
			uart_puts("\r\n");
		}
	}
	SYST_CSR = 0;
	uart_puts("systick PASS\r\n");
	for (;;)
		__asm__ volatile("wfi");
}
