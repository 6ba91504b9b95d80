/*
 * mps2-nested: interrupt priorities on the NVIC — preemption of a low
 * priority handler by a higher one, BASEPRI masking, PRIMASK and the order
 * in which two pending interrupts are taken (tail-chaining).
 * Interrupts 20 and 21 are unused by the board and pended by software.
 */
#include "mps2.h"

#define IRQ_LOW 20
#define IRQ_HIGH 21

static volatile int phase;

static void pend(int irq)
{
	NVIC_ISPR0 = 1u << irq;
	__asm__ volatile("dsb\nisb" ::: "memory");
}

void low_handler(void)
{
	uart_puts("low enter\r\n");
	if (phase == 0)
		pend(IRQ_HIGH);
	uart_puts("low exit\r\n");
}

void high_handler(void)
{
	uart_puts("high\r\n");
}

/* Vector slots 16+20 and 16+21 point at default_handler: install ours by a RAM vector table. */
static uint32_t ram_vectors[48] __attribute__((aligned(256)));

int main(void)
{
	const uint32_t *flash_vectors = (const uint32_t *)0;
	uint32_t i;

	uart_init();
	uart_puts("nested test\r\n");
	for (i = 0; i < 48; i++)
		ram_vectors[i] = flash_vectors[i];
	ram_vectors[16 + IRQ_LOW] = (uint32_t)low_handler;
	ram_vectors[16 + IRQ_HIGH] = (uint32_t)high_handler;
	SCB_VTOR = (uint32_t)ram_vectors;
	__asm__ volatile("dsb\nisb" ::: "memory");
	NVIC_IPR(IRQ_LOW) = 0x80;
	NVIC_IPR(IRQ_HIGH) = 0x40;
	NVIC_ISER0 = (1u << IRQ_LOW) | (1u << IRQ_HIGH);

	uart_puts("1: preemption\r\n");
	pend(IRQ_LOW);

	uart_puts("2: basepri\r\n");
	phase = 1;
	__asm__ volatile("msr basepri, %0" ::"r"(0x40));
	pend(IRQ_HIGH);
	uart_puts("masked by basepri\r\n");
	__asm__ volatile("msr basepri, %0" ::"r"(0));
	__asm__ volatile("dsb\nisb" ::: "memory");

	uart_puts("3: primask, both pending\r\n");
	__asm__ volatile("cpsid i" ::: "memory");
	pend(IRQ_LOW);
	pend(IRQ_HIGH);
	uart_puts("masked by primask\r\n");
	__asm__ volatile("cpsie i" ::: "memory");
	__asm__ volatile("dsb\nisb" ::: "memory");
	uart_puts("nested PASS\r\n");
	for (;;)
		__asm__ volatile("wfi");
}
