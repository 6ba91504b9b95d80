/*
 * STM32F407 (RM0090): the bus and converter status flags drivers wait on.
 * SPI1 at 0x40013000: wait TXE, write DR, wait RXNE, read DR, wait !BSY.
 * I2C1 at 0x40005400: START, wait SB, address, wait ADDR (cleared by
 * reading SR1 then SR2), data, wait TXE and BTF, STOP.
 * ADC1 at 0x40012000: ADON, SWSTART, wait EOC, read DR.
 * Console: USART2 at 0x40004400.
 */
#include "fw.h"

#define RCC 0x40023800u
#define RCC_AHB1ENR REG(RCC + 0x30)
#define RCC_APB1ENR REG(RCC + 0x40)
#define RCC_APB2ENR REG(RCC + 0x44)
#define USART2 0x40004400u
#define USART_SR REG(USART2 + 0x00)
#define USART_DR REG(USART2 + 0x04)
#define USART_BRR REG(USART2 + 0x08)
#define USART_CR1 REG(USART2 + 0x0c)
#define SPI1 0x40013000u
#define SPI_CR1 REG(SPI1 + 0x00)
#define SPI_SR REG(SPI1 + 0x08)
#define SPI_DR REG(SPI1 + 0x0c)
#define I2C1 0x40005400u
#define I2C_CR1 REG(I2C1 + 0x00)
#define I2C_CR2 REG(I2C1 + 0x04)
#define I2C_DR REG(I2C1 + 0x10)
#define I2C_SR1 REG(I2C1 + 0x14)
#define I2C_SR2 REG(I2C1 + 0x18)
#define I2C_CCR REG(I2C1 + 0x1c)
#define ADC1 0x40012000u
#define ADC_SR REG(ADC1 + 0x00)
#define ADC_CR2 REG(ADC1 + 0x08)
#define ADC_DR REG(ADC1 + 0x4c)

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

static uint8_t spi_xfer(uint8_t out)
{
	while (!(SPI_SR & (1u << 1)))
		; /* TXE */
	SPI_DR = out;
	while (!(SPI_SR & 1u))
		; /* RXNE */
	uint8_t in = (uint8_t)SPI_DR;
	while (SPI_SR & (1u << 7))
		; /* BSY */
	return in;
}

static int i2c_write(uint8_t addr, const uint8_t *d, int n)
{
	I2C_CR1 |= 1u << 8; /* START */
	while (!(I2C_SR1 & 1u))
		; /* SB */
	I2C_DR = (uint32_t)addr << 1;
	while (!(I2C_SR1 & (1u << 1)))
		; /* ADDR */
	(void)I2C_SR2;
	for (int i = 0; i < n; i++) {
		while (!(I2C_SR1 & (1u << 7)))
			; /* TXE */
		I2C_DR = d[i];
	}
	while (!(I2C_SR1 & (1u << 2)))
		; /* BTF */
	I2C_CR1 |= 1u << 9; /* STOP */
	return 0;
}

static int adc_read(void)
{
	ADC_CR2 |= 1u; /* ADON */
	ADC_CR2 |= 1u << 30; /* SWSTART */
	while (!(ADC_SR & (1u << 1)))
		; /* EOC */
	return (int)(ADC_DR & 0xfff);
}

int main(void)
{
	RCC_AHB1ENR |= 1u;
	RCC_APB1ENR |= (1u << 17) | (1u << 21); /* USART2, I2C1 */
	RCC_APB2ENR |= (1u << 12) | (1u << 8); /* SPI1, ADC1 */
	USART_BRR = 0x8b;
	USART_CR1 = (1u << 13) | (1u << 3) | (1u << 2);
	puts_("f4 start\r\n");

	SPI_CR1 = (1u << 6) | (1u << 2) | (3u << 3); /* SPE, MSTR, /16 */
	(void)spi_xfer(0x9f);
	(void)spi_xfer(0x00);
	puts_("spi ok\r\n");

	I2C_CR2 = 16;
	I2C_CCR = 80;
	I2C_CR1 = 1u; /* PE */
	static const uint8_t cfg[] = {0x20, 0x57};
	i2c_write(0x19, cfg, 2);
	puts_("i2c ok\r\n");

	int v = adc_read();
	puts_(v >= 0 && v <= 4095 ? "adc ok\r\n" : "adc FAIL\r\n");
	puts_("PASS\r\n");
	return 0;
}
