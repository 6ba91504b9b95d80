/*
 * Polled console on CMSDK UART0, the same code on QEMU and rehost.
 */
#include "mps2.h"

void uart_init(void)
{
	UART_BAUDDIV(UART0_BASE) = 16;
	UART_CTRL(UART0_BASE) |= UART_CTRL_TXEN | UART_CTRL_RXEN;
}

void uart_putc(char c)
{
	while (UART_STATE(UART0_BASE) & UART_STATE_TXFULL)
		;
	UART_DATA(UART0_BASE) = (uint8_t)c;
}

void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

void uart_putdec(uint32_t v)
{
	char buf[11];
	int i = 0;

	do {
		buf[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0)
		uart_putc(buf[--i]);
}

void uart_puthex(uint32_t v)
{
	int shift;

	uart_puts("0x");
	for (shift = 28; shift >= 0; shift -= 4)
		uart_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

int uart_getc(void)
{
	if (!(UART_STATE(UART0_BASE) & UART_STATE_RXFULL))
		return -1;
	return (int)(UART_DATA(UART0_BASE) & 0xff);
}
