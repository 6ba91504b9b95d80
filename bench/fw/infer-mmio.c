/*
 * infer-mmio: N reads and N writes of a register in a peripheral nobody
 * modelled (0x40020000 on mps2-an385: no board device there, so the
 * inference module creates one), or of a RAM word when built with
 * -DTARGET_RAM, the baseline. Prints "done" on the board's UART.
 */
#include "mps2.h"

#ifndef N
#define N 1000000
#endif

#ifdef TARGET_RAM
static volatile uint32_t word[2];
#define REG_R (&word[0])
#define REG_W (&word[1])
#else
#define REG_R ((volatile uint32_t *)0x40020000u)
#define REG_W ((volatile uint32_t *)0x40020004u)
#endif

int main(void)
{
	uint32_t i, acc = 0;

	uart_init();
	for (i = 0; i < N; i++) {
		acc += *REG_R;
		*REG_W = i;
	}
	uart_puts(acc == 0xffffffffu ? "odd\r\n" : "done\r\n");
	for (;;)
		;
}
