/*
 * nRF52832 (product specification v1.4): UART0 (legacy UART at
 * 0x40002000) with INTENSET.RXDRDY and the UARTE0_UART0 interrupt (IRQ 2);
 * the handler moves RXD into a ring buffer, as interrupt-driven drivers do.
 */
#include "fw.h"

#define UART0 0x40002000u

static volatile char ring[64];
static volatile unsigned head, tail;

void irq2_handler(void)
{
	if (REG(UART0 + 0x108)) { /* EVENTS_RXDRDY */
		REG(UART0 + 0x108) = 0;
		ring[head % sizeof(ring)] = (char)REG(UART0 + 0x518);
		head++;
	}
}

void putc_(char c)
{
	REG(UART0 + 0x51c) = (uint8_t)c;
	while (REG(UART0 + 0x11c) == 0)
		;
	REG(UART0 + 0x11c) = 0;
}

int getc_(void)
{
	while (tail == head)
		wfi();
	char c = ring[tail % sizeof(ring)];
	tail++;
	return (unsigned char)c;
}

int main(void)
{
	REG(UART0 + 0x50c) = 6;
	REG(UART0 + 0x514) = 8;
	REG(UART0 + 0x524) = 0x01d7e000;
	REG(UART0 + 0x500) = 4;
	REG(UART0 + 0x008) = 1;
	REG(UART0 + 0x000) = 1;
	puts_("ready\r\n");
	REG(UART0 + 0x304) = 1u << 2; /* INTENSET RXDRDY */
	nvic_enable(2);
	char line[32];
	getline_(line, sizeof(line));
	puts_("got: ");
	puts_(line);
	puts_("\r\nPASS\r\n");
	return 0;
}
