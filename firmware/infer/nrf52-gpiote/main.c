/*
 * nRF52832 (product specification v1.4): button 1 of the DK on P0.13
 * (input, pull-up: pressed reads 0) watched by GPIOTE channel 0 in event
 * mode on both edges (CONFIG[0]), its interrupt enabled in INTENSET.IN0
 * and in the NVIC (GPIOTE, IRQ 6). The handler checks EVENTS_IN[0],
 * clears it by writing 0 and reads the level from P0 IN; the main loop
 * sleeps in WFI and prints each level. Then INTENCLR.IN0 disables the
 * interrupt: a further edge must not interrupt, while the level still
 * reads back from IN. UART0 polled output (EVENTS_TXDRDY).
 */
#include "fw.h"

#define UART0 0x40002000u
#define GPIOTE 0x40006000u
#define GPIOTE_EVENTS_IN0 REG(GPIOTE + 0x100)
#define GPIOTE_INTENSET REG(GPIOTE + 0x304)
#define GPIOTE_INTENCLR REG(GPIOTE + 0x308)
#define GPIOTE_CONFIG0 REG(GPIOTE + 0x510)
#define P0 0x50000000u
#define P0_IN REG(P0 + 0x510)
#define P0_PIN_CNF(n) REG(P0 + 0x700 + 4u * (n))
#define BUTTON 13u

static volatile uint8_t levels[8];
static volatile unsigned head, irqs;

void irq6_handler(void)
{
	if (GPIOTE_EVENTS_IN0) {
		GPIOTE_EVENTS_IN0 = 0;
		levels[head % sizeof(levels)] = (uint8_t)((P0_IN >> BUTTON) & 1u);
		head++;
		irqs++;
	}
}

void putc_(char c)
{
	REG(UART0 + 0x51c) = (uint8_t)c; /* TXD */
	while (REG(UART0 + 0x11c) == 0)
		; /* EVENTS_TXDRDY */
	REG(UART0 + 0x11c) = 0;
}

int getc_(void)
{
	return -1;
}

int main(void)
{
	REG(UART0 + 0x50c) = 6; /* PSELTXD */
	REG(UART0 + 0x524) = 0x01d7e000; /* 115200 baud */
	REG(UART0 + 0x500) = 4; /* ENABLE */
	REG(UART0 + 0x008) = 1; /* TASKS_STARTTX */
	P0_PIN_CNF(BUTTON) = 3u << 2; /* input, connected, pull-up */
	GPIOTE_CONFIG0 = 1u | (BUTTON << 8) | (3u << 16); /* event, PSEL, toggle */
	GPIOTE_EVENTS_IN0 = 0;
	GPIOTE_INTENSET = 1u; /* IN0 */
	nvic_enable(6);
	puts_("gpiote ready\r\n");
	unsigned tail = 0;
	while (tail < 2) {
		while (tail == head)
			wfi();
		puts_("button ");
		putu(levels[tail % sizeof(levels)]);
		puts_("\r\n");
		tail++;
	}
	GPIOTE_INTENCLR = 1u; /* IN0 off: edges no longer interrupt */
	puts_("masked\r\n");
	for (volatile unsigned i = 0; i < 200000; i++)
		; /* the next press happens meanwhile */
	puts_("level ");
	putu((P0_IN >> BUTTON) & 1u);
	puts_("\r\nirqs ");
	putu(irqs);
	puts_(irqs == 2 ? "\r\nPASS\r\n" : "\r\nFAIL\r\n");
	return 0;
}
