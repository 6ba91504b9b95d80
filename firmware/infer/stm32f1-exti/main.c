/*
 * STM32F103 (RM0008): a push button on PA0 (input with pull-down) routed
 * to EXTI line 0 through AFIO EXTICR1, both edges (RTSR/FTSR), unmasked in
 * EXTI IMR and enabled in the NVIC (EXTI0, IRQ 6). The handler checks its
 * pending bit PR0, clears it by writing 1 (rc_w1) and reads the pin level
 * from GPIOA IDR; the main loop sleeps in WFI and prints each level. Then
 * the line is masked in IMR: a further edge must not interrupt, while the
 * pin level still reads back from IDR. USART1 polled output.
 */
#include "fw.h"

#define RCC_APB2ENR REG(0x40021018u)
#define AFIO_EXTICR1 REG(0x40010008u)
#define EXTI 0x40010400u
#define EXTI_IMR REG(EXTI + 0x00)
#define EXTI_RTSR REG(EXTI + 0x08)
#define EXTI_FTSR REG(EXTI + 0x0c)
#define EXTI_PR REG(EXTI + 0x14)
#define GPIOA 0x40010800u
#define GPIOA_CRL REG(GPIOA + 0x00)
#define GPIOA_CRH REG(GPIOA + 0x04)
#define GPIOA_IDR REG(GPIOA + 0x08)
#define GPIOA_ODR REG(GPIOA + 0x0c)
#define USART1 0x40013800u
#define USART_SR REG(USART1 + 0x00)
#define USART_DR REG(USART1 + 0x04)
#define USART_BRR REG(USART1 + 0x08)
#define USART_CR1 REG(USART1 + 0x0c)

static volatile uint8_t levels[8];
static volatile unsigned head, irqs;

void irq6_handler(void)
{
	if (EXTI_PR & 1u) {
		EXTI_PR = 1u; /* rc_w1: writing 1 clears the pending bit */
		levels[head % sizeof(levels)] = (uint8_t)(GPIOA_IDR & 1u);
		head++;
		irqs++;
	}
}

void putc_(char c)
{
	while (!(USART_SR & (1u << 7)))
		; /* TXE */
	USART_DR = (uint8_t)c;
}

int getc_(void)
{
	return -1;
}

int main(void)
{
	RCC_APB2ENR |= (1u << 14) | (1u << 2) | 1u; /* USART1EN, IOPAEN, AFIOEN */
	GPIOA_CRH = (GPIOA_CRH & ~0xf0u) | 0xb0u; /* PA9 AF push-pull (TX) */
	USART_BRR = 0x45; /* 115200 at 8 MHz */
	USART_CR1 = (1u << 13) | (1u << 3); /* UE, TE */
	GPIOA_CRL = (GPIOA_CRL & ~0xfu) | 0x8u; /* PA0 input with pull-up/down */
	GPIOA_ODR &= ~1u; /* pull-down: released reads 0 */
	AFIO_EXTICR1 &= ~0xfu; /* EXTI0 <- PA0 */
	EXTI_RTSR |= 1u;
	EXTI_FTSR |= 1u;
	EXTI_PR = 1u; /* no stale pending edge */
	EXTI_IMR |= 1u;
	nvic_enable(6);
	puts_("exti ready\r\n");
	unsigned tail = 0;
	while (tail < 2) {
		while (tail == head)
			wfi();
		puts_("button ");
		putu(levels[tail % sizeof(levels)]);
		puts_("\r\n");
		tail++;
	}
	EXTI_IMR &= ~1u; /* masked: edges no longer interrupt */
	puts_("masked\r\n");
	for (volatile unsigned i = 0; i < 200000; i++)
		; /* the next press happens meanwhile */
	puts_("level ");
	putu(GPIOA_IDR & 1u);
	puts_("\r\nirqs ");
	putu(irqs);
	puts_(irqs == 2 ? "\r\nPASS\r\n" : "\r\nFAIL\r\n");
	return 0;
}
