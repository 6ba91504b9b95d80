/*
 * mps2-fault: faults. An undefined instruction with UsageFault enabled is
 * handled and skipped; with UsageFault disabled it escalates to HardFault,
 * whose handler reports HFSR, CFSR and the faulting PC, then hits a
 * breakpoint inside HardFault: the core locks up (rehost reports the lockup
 * with the registers and exits 1).
 */
#include "mps2.h"

void fault_report(uint32_t *frame, uint32_t exc)
{
	uart_puts(exc == 3 ? "HardFault" : "UsageFault");
	uart_puts(" hfsr=");
	uart_puthex(SCB_HFSR);
	uart_puts(" cfsr=");
	uart_puthex(SCB_CFSR);
	uart_puts(" pc=");
	uart_puthex(frame[6]);
	uart_puts("\r\n");
	if (exc == 6) {
		SCB_CFSR = SCB_CFSR; /* clear */
		frame[6] += 2; /* skip the 16-bit udf */
		return;
	}
	uart_puts("locking up\r\n");
	__asm__ volatile("bkpt #1");
}

__attribute__((naked)) void hardfault_handler(void)
{
	__asm__ volatile("tst lr, #4\n"
	                 "ite eq\n"
	                 "mrseq r0, msp\n"
	                 "mrsne r0, psp\n"
	                 "mrs r1, ipsr\n"
	                 "push {r4, lr}\n"
	                 "bl fault_report\n"
	                 "pop {r4, pc}\n");
}

__attribute__((naked)) void usagefault_handler(void)
{
	__asm__ volatile("tst lr, #4\n"
	                 "ite eq\n"
	                 "mrseq r0, msp\n"
	                 "mrsne r0, psp\n"
	                 "mrs r1, ipsr\n"
	                 "push {r4, lr}\n"
	                 "bl fault_report\n"
	                 "pop {r4, pc}\n");
}

int main(void)
{
	uart_init();
	uart_puts("fault test\r\n");
	SCB_SHCSR |= 1u << 18; /* UsageFault enabled */
	__asm__ volatile("udf #1");
	uart_puts("recovered from UsageFault\r\n");
	SCB_SHCSR &= ~(1u << 18);
	__asm__ volatile("udf #2");
	uart_puts("not reached\r\n");
	for (;;)
		;
}
