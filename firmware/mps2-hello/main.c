/*
 * mps2-hello: the first firmware every test runs.
 *
 * Prints a greeting and a prompt, then reads lines from UART0: "count"
 * answers with the loop counter, anything else is echoed back. The global
 * `ticks` grows on every pass of the main loop so snapshot tests and gdb
 * can watch RAM change.
 */
#include "mps2.h"

volatile uint32_t ticks;
static char line[80];

static void handle_line(unsigned len)
{
	line[len] = 0;
	if (len == 5 && line[0] == 'c' && line[1] == 'o' && line[2] == 'u' && line[3] == 'n' &&
	    line[4] == 't') {
		uart_puts("count: ");
		uart_putdec(ticks);
		uart_puts("\r\n");
	} else {
		uart_puts("echo: ");
		uart_puts(line);
		uart_puts("\r\n");
	}
	uart_puts("> ");
}

int main(void)
{
	unsigned len = 0;

	uart_init();
	uart_puts("Hello from MachineServer\r\n");
	uart_puts("> ");
	for (;;) {
		int c;

		ticks++;
		c = uart_getc();
		if (c < 0)
			continue;
		if (c == '\r' || c == '\n') {
			/* "\r\n" and empty lines produce nothing. */
			if (len > 0)
				handle_line(len);
			len = 0;
		} else if (len < sizeof(line) - 1) {
			line[len++] = (char)c;
		}
	}
}
