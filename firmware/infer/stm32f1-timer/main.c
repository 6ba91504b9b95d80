/*
 * STM32F103: TIM2 (0x40000000) with PSC/ARR, update interrupt enabled in
 * DIER and in the NVIC (IRQ 28); the handler acknowledges UIF (rc_w0) and
 * counts. The main loop sleeps in WFI until three updates happened.
 */
#include "fw.h"

#define RCC_APB1ENR REG(0x4002101cu)
#define RCC_APB2ENR REG(0x40021018u)
#define TIM2 0x40000000u
#define TIM_CR1 REG(TIM2 + 0x00)
#define TIM_DIER REG(TIM2 + 0x0c)
#define TIM_SR REG(TIM2 + 0x10)
#define TIM_PSC REG(TIM2 + 0x28)
#define TIM_ARR REG(TIM2 + 0x2c)
#define USART1 0x40013800u
#define USART_SR REG(USART1 + 0x00)
#define USART_DR REG(USART1 + 0x04)
#define USART_BRR REG(USART1 + 0x08)
#define USART_CR1 REG(USART1 + 0x0c)

static volatile unsigned ticks;

void irq28_handler(void)
{
	if (TIM_SR & 1u) {
		TIM_SR = ~1u; /* clear UIF */
		ticks++;
	}
}

void putc_(char c)
{
	while (!(USART_SR & (1u << 7)))
		;
	USART_DR = (uint8_t)c;
}

int getc_(void)
{
	while (!(USART_SR & (1u << 5)))
		;
	return (int)(USART_DR & 0xff);
}

int main(void)
{
	RCC_APB2ENR |= 1u << 14;
	USART_BRR = 0x45; /* 115200 at 8 MHz */
	USART_CR1 = (1u << 13) | (1u << 3);
	puts_("timer start\r\n");
	RCC_APB1ENR |= 1u; /* TIM2EN */
	TIM_PSC = 7; /* 1 MHz */
	TIM_ARR = 999; /* 1 ms */
	TIM_DIER = 1u; /* UIE */
	nvic_enable(28);
	TIM_CR1 = 1u; /* CEN */
	while (ticks < 3)
		wfi();
	TIM_CR1 = 0;
	puts_("ticks ");
	putu(ticks);
	puts_("\r\nPASS\r\n");
	return 0;
}
