/*
 * Reset code and vector table for the MPS2 test firmware.
 *
 * reset_handler copies .data from flash, clears .bss and calls main().
 * Every handler is a weak alias of default_handler, so a firmware defines
 * only the ones it uses. default_handler reports which exception arrived
 * and stops with a breakpoint, so an unexpected exception is visible on
 * both QEMU and rehost rather than a silent hang.
 */
#include <stdint.h>

#include "mps2.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void reset_handler(void);
void default_handler(void);

#define WEAK_ALIAS __attribute__((weak, alias("default_handler")))
void nmi_handler(void) WEAK_ALIAS;
void hardfault_handler(void) WEAK_ALIAS;
void memmanage_handler(void) WEAK_ALIAS;
void busfault_handler(void) WEAK_ALIAS;
void usagefault_handler(void) WEAK_ALIAS;
void svc_handler(void) WEAK_ALIAS;
void debugmon_handler(void) WEAK_ALIAS;
void pendsv_handler(void) WEAK_ALIAS;
void systick_handler(void) WEAK_ALIAS;
void uart0_rx_handler(void) WEAK_ALIAS;
void uart0_tx_handler(void) WEAK_ALIAS;
void uart1_rx_handler(void) WEAK_ALIAS;
void uart1_tx_handler(void) WEAK_ALIAS;
void timer0_handler(void) WEAK_ALIAS;
void timer1_handler(void) WEAK_ALIAS;
void dualtimer_handler(void) WEAK_ALIAS;

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16 + 32])(void) = {
    (void (*)(void)) & _estack,
    reset_handler,
    nmi_handler,
    hardfault_handler,
    memmanage_handler,
    busfault_handler,
    usagefault_handler,
    0,
    0,
    0,
    0,
    svc_handler,
    debugmon_handler,
    0,
    pendsv_handler,
    systick_handler,
    [16 + 0] = uart0_rx_handler,
    [16 + 1] = uart0_tx_handler,
    [16 + 2] = uart1_rx_handler,
    [16 + 3] = uart1_tx_handler,
    [16 + 4] = default_handler,
    [16 + 5] = default_handler,
    [16 + 6] = default_handler,
    [16 + 7] = default_handler,
    [16 + 8] = timer0_handler,
    [16 + 9] = timer1_handler,
    [16 + 10] = dualtimer_handler,
    [16 + 11 ... 16 + 31] = default_handler,
};

void reset_handler(void)
{
	uint32_t *src = &_sidata;
	uint32_t *dst;

#ifdef __ARM_FP
	/* Full access to CP10/CP11 before any compiled code may use the FPU. */
	SCB_CPACR |= 0xfu << 20;
	__asm__ volatile("dsb\nisb");
#endif
	for (dst = &_sdata; dst < &_edata; dst++)
		*dst = *src++;
	for (dst = &_sbss; dst < &_ebss; dst++)
		*dst = 0;
	main();
	for (;;)
		__asm__ volatile("wfi");
}

void default_handler(void)
{
	uint32_t ipsr;

	__asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
	uart_init();
	uart_puts("unexpected exception ");
	uart_putdec(ipsr & 0x1ff);
	uart_puts("\r\n");
	for (;;)
		__asm__ volatile("bkpt #0");
}
