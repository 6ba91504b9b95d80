/*
 * STM32F407 (RM0090 rev 19, section 30.6): USART2 at 0x40004400, SR +0x00
 * (TXE bit 7, RXNE bit 5), DR +0x04, BRR +0x08, CR1 +0x0c (UE bit 13,
 * TXEIE bit 7, RXNEIE bit 5, TE bit 3, RE bit 2); USART2 global interrupt
 * 38. As interrupt-driven drivers do (HAL_UART_Transmit_IT, Zephyr's
 * uart_irq_tx_enable): putc queues a byte and sets TXEIE; the handler
 * writes DR from the queue while TXE is set and clears TXEIE when the
 * queue is empty. Received bytes go into a ring from RXNE.
 */
#include "fw.h"

#define USART2 0x40004400u
#define SR REG(USART2 + 0x00)
#define DR REG(USART2 + 0x04)
#define BRR REG(USART2 + 0x08)
#define CR1 REG(USART2 + 0x0c)
#define RCC_APB1ENR REG(0x40023840u)

#define TXE (1u << 7)
#define RXNE (1u << 5)
#define TXEIE (1u << 7)
#define RXNEIE (1u << 5)

static volatile uint8_t txq[64];
static volatile unsigned tx_head, tx_tail;
static volatile uint8_t rxq[32];
static volatile unsigned rx_head, rx_tail;

void irq38_handler(void)
{
	uint32_t sr = SR;
	if (sr & RXNE) {
		rxq[rx_head % sizeof(rxq)] = (uint8_t)DR;
		rx_head++;
	}
	if ((sr & TXE) && (CR1 & TXEIE)) {
		if (tx_tail != tx_head) {
			DR = txq[tx_tail % sizeof(txq)];
			tx_tail++;
		} else {
			CR1 &= ~TXEIE;
		}
	}
}

void putc_(char c)
{
	while (tx_head - tx_tail >= sizeof(txq))
		wfi();
	txq[tx_head % sizeof(txq)] = (uint8_t)c;
	tx_head++;
	CR1 |= TXEIE;
}

int getc_(void)
{
	while (rx_tail == rx_head)
		wfi();
	int c = rxq[rx_tail % sizeof(rxq)];
	rx_tail++;
	return c;
}

int main(void)
{
	RCC_APB1ENR |= 1u << 17; /* USART2EN */
	BRR = 0x8b; /* 115200 Bd at 16 MHz */
	CR1 = (1u << 13) | (1u << 3) | (1u << 2) | RXNEIE;
	nvic_enable(38);
	puts_("tx by interrupt\r\n> ");
	char line[32];
	getline_(line, sizeof(line));
	puts_("got: ");
	puts_(line);
	puts_("\r\nPASS\r\n");
	while (tx_tail != tx_head)
		wfi();
	return 0;
}
