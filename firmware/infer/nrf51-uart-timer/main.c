/*
 * nRF51 (reference manual v3): CLOCK tasks and events, UART0 at
 * 0x40002000 (STARTTX/STARTRX tasks, TXD/RXD, TXDRDY/RXDRDY events cleared
 * by writing 0), TIMER0 at 0x40008000 in timer mode with CC[0], a
 * COMPARE0_CLEAR short and the COMPARE0 interrupt (IRQ 8).
 */
#include "fw.h"

#define CLOCK 0x40000000u
#define UART0 0x40002000u
#define TIMER0 0x40008000u

void putc_(char c)
{
	REG(UART0 + 0x51c) = (uint8_t)c; /* TXD */
	while (REG(UART0 + 0x11c) == 0)
		; /* EVENTS_TXDRDY */
	REG(UART0 + 0x11c) = 0;
}

int getc_(void)
{
	while (REG(UART0 + 0x108) == 0)
		; /* EVENTS_RXDRDY */
	REG(UART0 + 0x108) = 0;
	return (int)(REG(UART0 + 0x518) & 0xff); /* RXD */
}

static volatile unsigned ticks;

void irq8_handler(void)
{
	if (REG(TIMER0 + 0x140)) { /* EVENTS_COMPARE[0] */
		REG(TIMER0 + 0x140) = 0;
		ticks++;
	}
}

int main(void)
{
	REG(CLOCK + 0x100) = 0; /* EVENTS_HFCLKSTARTED */
	REG(CLOCK + 0x000) = 1; /* TASKS_HFCLKSTART */
	while (REG(CLOCK + 0x100) == 0)
		;
	REG(UART0 + 0x50c) = 24; /* PSELTXD */
	REG(UART0 + 0x514) = 25; /* PSELRXD */
	REG(UART0 + 0x524) = 0x01d7e000; /* BAUDRATE 115200 */
	REG(UART0 + 0x500) = 4; /* ENABLE */
	REG(UART0 + 0x008) = 1; /* TASKS_STARTTX */
	REG(UART0 + 0x000) = 1; /* TASKS_STARTRX */
	puts_("clock ok\r\n> ");
	char line[32];
	getline_(line, sizeof(line));
	puts_("echo: ");
	puts_(line);
	puts_("\r\n");

	REG(TIMER0 + 0x504) = 0; /* MODE timer */
	REG(TIMER0 + 0x508) = 3; /* BITMODE 32 */
	REG(TIMER0 + 0x510) = 4; /* PRESCALER: 1 MHz */
	REG(TIMER0 + 0x540) = 1000; /* CC[0]: 1 ms */
	REG(TIMER0 + 0x200) = 1; /* SHORTS COMPARE0_CLEAR */
	REG(TIMER0 + 0x304) = 1u << 16; /* INTENSET COMPARE0 */
	nvic_enable(8);
	REG(TIMER0 + 0x000) = 1; /* TASKS_START */
	while (ticks < 3)
		wfi();
	REG(TIMER0 + 0x004) = 1; /* TASKS_STOP */
	puts_("ticks ");
	putu(ticks);
	puts_("\r\nPASS\r\n");
	return 0;
}
