/*
 * STM32F103 (RM0008): start the clock tree the way CubeF1 does (HSE on,
 * wait HSERDY; PLL x9 from HSE, wait PLLRDY; two flash wait states; switch
 * SYSCLK to the PLL and wait until SWS reads back PLL), then USART1 at
 * 0x40013800 with polled TXE/RXNE.
 */
#include "fw.h"

#define RCC 0x40021000u
#define RCC_CR REG(RCC + 0x00)
#define RCC_CFGR REG(RCC + 0x04)
#define RCC_APB2ENR REG(RCC + 0x18)
#define FLASH_ACR REG(0x40022000u)
#define GPIOA_CRH REG(0x40010804u)
#define USART1 0x40013800u
#define USART_SR REG(USART1 + 0x00)
#define USART_DR REG(USART1 + 0x04)
#define USART_BRR REG(USART1 + 0x08)
#define USART_CR1 REG(USART1 + 0x0c)

static int clock_init(void)
{
	RCC_CR |= 1u << 16; /* HSEON */
	while (!(RCC_CR & (1u << 17)))
		; /* HSERDY */
	FLASH_ACR = (FLASH_ACR & ~7u) | 2u;
	RCC_CFGR = (RCC_CFGR & ~(0xfu << 18)) | (7u << 18) | (1u << 16); /* PLLMUL x9, PLLSRC HSE */
	RCC_CR |= 1u << 24; /* PLLON */
	while (!(RCC_CR & (1u << 25)))
		; /* PLLRDY */
	RCC_CFGR = (RCC_CFGR & ~3u) | 2u; /* SW = PLL */
	while ((RCC_CFGR & (3u << 2)) != (2u << 2))
		; /* SWS == PLL */
	return (RCC_CFGR & 3u) == 2u; /* the switch request reads back */
}

void putc_(char c)
{
	while (!(USART_SR & (1u << 7)))
		; /* TXE */
	USART_DR = (uint8_t)c;
}

int getc_(void)
{
	while (!(USART_SR & (1u << 5)))
		; /* RXNE */
	return (int)(USART_DR & 0xff);
}

int main(void)
{
	int ok = clock_init();
	RCC_APB2ENR |= (1u << 14) | (1u << 2); /* USART1EN, IOPAEN */
	GPIOA_CRH = (GPIOA_CRH & ~0xff0u) | 0x4b0u; /* PA9 AF push-pull, PA10 input */
	USART_BRR = 0x271; /* 115200 at 72 MHz */
	USART_CR1 = (1u << 13) | (1u << 3) | (1u << 2); /* UE, TE, RE */
	puts_(ok ? "clock ok\r\n" : "clock FAIL\r\n");
	puts_("> ");
	char line[64];
	getline_(line, sizeof(line));
	puts_("echo: ");
	puts_(line);
	puts_("\r\nPASS\r\n");
	return 0;
}
