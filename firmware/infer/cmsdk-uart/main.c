/*
 * ARM CMSDK APB UART (CMSDK_CM3.svd): DATA +0, STATE +4 (TXFULL bit 0,
 * RXFULL bit 1), CTRL +8 (TXEN bit 0, RXEN bit 1), BAUDDIV +0x10. Unlike
 * the other families, transmit waits for a flag to clear.
 */
#include "fw.h"

#define UART0 0x40004000u

void putc_(char c)
{
	while (REG(UART0 + 4) & 1u)
		; /* TXFULL */
	REG(UART0 + 0) = (uint8_t)c;
}

int getc_(void)
{
	while (!(REG(UART0 + 4) & 2u))
		; /* RXFULL */
	return (int)(REG(UART0 + 0) & 0xff);
}

int main(void)
{
	REG(UART0 + 0x10) = 16;
	REG(UART0 + 8) = 3; /* TXEN, RXEN */
	puts_("cmsdk\r\n> ");
	char line[32];
	getline_(line, sizeof(line));
	puts_("echo: ");
	puts_(line);
	puts_("\r\nPASS\r\n");
	return 0;
}
