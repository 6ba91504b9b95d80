/*
 * Start-up for the inference corpus: the vector table (16 system
 * exceptions and 64 interrupts, each a weak alias of a default handler
 * that stops at a breakpoint), .data/.bss set-up, then main().
 */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void reset_handler(void);

static void default_handler(void)
{
	__asm volatile("bkpt #1");
	for (;;)
		;
}

#define WEAK __attribute__((weak, alias("default_handler")))
void nmi_handler(void) WEAK;
void hardfault_handler(void) WEAK;
void svc_handler(void) WEAK;
void pendsv_handler(void) WEAK;
void systick_handler(void) WEAK;
/* The IRQ lists are tables, not code. */
/* clang-format off */
#define IRQ(n) void irq##n##_handler(void) WEAK;
IRQ(0) IRQ(1) IRQ(2) IRQ(3) IRQ(4) IRQ(5) IRQ(6) IRQ(7)
IRQ(8) IRQ(9) IRQ(10) IRQ(11) IRQ(12) IRQ(13) IRQ(14) IRQ(15)
IRQ(16) IRQ(17) IRQ(18) IRQ(19) IRQ(20) IRQ(21) IRQ(22) IRQ(23)
IRQ(24) IRQ(25) IRQ(26) IRQ(27) IRQ(28) IRQ(29) IRQ(30) IRQ(31)
IRQ(32) IRQ(33) IRQ(34) IRQ(35) IRQ(36) IRQ(37) IRQ(38) IRQ(39)
IRQ(40) IRQ(41) IRQ(42) IRQ(43) IRQ(44) IRQ(45) IRQ(46) IRQ(47)
#undef IRQ

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16 + 48])(void) = {
	(void (*)(void))&_estack,
	reset_handler,
	nmi_handler,
	hardfault_handler,
	default_handler,
	default_handler,
	default_handler,
	0,
	0,
	0,
	0,
	svc_handler,
	default_handler,
	0,
	pendsv_handler,
	systick_handler,
#define IRQ(n) irq##n##_handler,
	IRQ(0) IRQ(1) IRQ(2) IRQ(3) IRQ(4) IRQ(5) IRQ(6) IRQ(7)
	IRQ(8) IRQ(9) IRQ(10) IRQ(11) IRQ(12) IRQ(13) IRQ(14) IRQ(15)
	IRQ(16) IRQ(17) IRQ(18) IRQ(19) IRQ(20) IRQ(21) IRQ(22) IRQ(23)
	IRQ(24) IRQ(25) IRQ(26) IRQ(27) IRQ(28) IRQ(29) IRQ(30) IRQ(31)
	IRQ(32) IRQ(33) IRQ(34) IRQ(35) IRQ(36) IRQ(37) IRQ(38) IRQ(39)
	IRQ(40) IRQ(41) IRQ(42) IRQ(43) IRQ(44) IRQ(45) IRQ(46) IRQ(47)
#undef IRQ
};
/* clang-format on */

void reset_handler(void)
{
	uint32_t *s = &_sidata, *d = &_sdata;
	while (d < &_edata)
		*d++ = *s++;
	for (d = &_sbss; d < &_ebss;)
		*d++ = 0;
	main();
	__asm volatile("bkpt #0");
	for (;;)
		;
}

void *memset(void *p, int c, unsigned n)
{
	unsigned char *q = p;
	while (n--)
		*q++ = (unsigned char)c;
	return p;
}
