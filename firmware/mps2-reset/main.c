/*
 * mps2-reset: SYSRESETREQ. Prints "boot" and the SysTick reload value it
 * finds (0 after a reset), programs SysTick, then requests a system reset
 * through AIRCR. The machine must come back through the reset vector with
 * the system registers at their reset values, again and again.
 */
#include "mps2.h"

int main(void)
{
	uart_init();
	uart_puts("boot rvr=");
	uart_putdec(SYST_RVR);
	uart_puts("\r\n");
	SYST_RVR = 1234;
	SCB_AIRCR = 0x05fa0004u;
	for (;;)
		;
}
