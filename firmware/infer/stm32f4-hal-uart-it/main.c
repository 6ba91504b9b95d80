/*
 * STM32F407 (RM0090 rev 19, section 30.6): USART2 at 0x40004400, SR +0x00
 * (PE 0, FE 1, NF 2, ORE 3, RXNE 5, TC 6, TXE 7), DR +0x04, BRR +0x08, CR1
 * +0x0c (RE 2, TE 3, RXNEIE 5, TCIE 6, TXEIE 7, UE 13); interrupt 38.
 * Written after the structure of STM32Cube's stm32f4xx_hal_uart.c (our
 * own code, not HAL's): a handle, transmit/receive started by enabling
 * TXEIE/RXNEIE, UART_Transmit_IT, UART_EndTransmit_IT on TC,
 * UART_Receive_IT, and a common handler called with the handle.
 */
#include "fw.h"

#define USART2_BASE 0x40004400u
#define SR_PE (1u << 0)
#define SR_FE (1u << 1)
#define SR_NE (1u << 2)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TC (1u << 6)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define CR1_TCIE (1u << 6)
#define CR1_TXEIE (1u << 7)
#define CR1_UE (1u << 13)

enum state { READY = 0x20, BUSY_TX = 0x21, BUSY_RX = 0x22 };

struct usart {
	volatile uint32_t SR, DR, BRR, CR1, CR2, CR3, GTPR;
};

struct handle {
	struct usart *instance;
	const uint8_t *tx_ptr;
	volatile uint16_t tx_count;
	uint8_t *rx_ptr;
	volatile uint16_t rx_count;
	volatile uint32_t tx_state, rx_state;
	volatile uint32_t errors;
};

static struct handle huart2;

__attribute__((noinline)) static void transmit_it(struct handle *h)
{
	if (h->tx_state != BUSY_TX)
		return;
	h->instance->DR = *h->tx_ptr++;
	if (--h->tx_count == 0) {
		h->instance->CR1 &= ~CR1_TXEIE;
		h->instance->CR1 |= CR1_TCIE;
	}
}

__attribute__((noinline)) static void end_transmit_it(struct handle *h)
{
	h->instance->CR1 &= ~CR1_TCIE;
	h->tx_state = READY;
}

__attribute__((noinline)) static void receive_it(struct handle *h)
{
	if (h->rx_state != BUSY_RX)
		return;
	*h->rx_ptr++ = (uint8_t)h->instance->DR;
	if (--h->rx_count == 0) {
		h->instance->CR1 &= ~CR1_RXNEIE;
		h->rx_state = READY;
	}
}

__attribute__((noinline)) void uart_irq_handler(struct handle *h)
{
	uint32_t isr = h->instance->SR;
	uint32_t cr1 = h->instance->CR1;
	uint32_t errors = isr & (SR_PE | SR_FE | SR_ORE | SR_NE);
	if (errors == 0 && (isr & SR_RXNE) && (cr1 & CR1_RXNEIE)) {
		receive_it(h);
		return;
	}
	if (errors) {
		h->errors |= errors;
		(void)h->instance->DR; /* clears the error flags */
		return;
	}
	if ((isr & SR_TXE) && (cr1 & CR1_TXEIE)) {
		transmit_it(h);
		return;
	}
	if ((isr & SR_TC) && (cr1 & CR1_TCIE)) {
		end_transmit_it(h);
		return;
	}
}

void irq38_handler(void)
{
	uart_irq_handler(&huart2);
}

static int uart_transmit_it(struct handle *h, const uint8_t *buf, uint16_t n)
{
	if (h->tx_state != READY)
		return -1;
	h->tx_ptr = buf;
	h->tx_count = n;
	h->tx_state = BUSY_TX;
	h->instance->CR1 |= CR1_TXEIE;
	return 0;
}

static int uart_receive_it(struct handle *h, uint8_t *buf, uint16_t n)
{
	if (h->rx_state != READY)
		return -1;
	h->rx_ptr = buf;
	h->rx_count = n;
	h->rx_state = BUSY_RX;
	h->instance->CR1 |= CR1_RXNEIE;
	return 0;
}

/* Send a string and wait for its transmission-complete interrupt. */
static void send(const char *s)
{
	uint16_t n = 0;
	while (s[n])
		n++;
	while (uart_transmit_it(&huart2, (const uint8_t *)s, n) != 0)
		wfi();
	while (huart2.tx_state != READY)
		wfi();
}

void putc_(char c)
{
	static char one[2];
	one[0] = c;
	send(one);
}

int getc_(void)
{
	static uint8_t b;
	while (uart_receive_it(&huart2, &b, 1) != 0)
		wfi();
	while (huart2.rx_state != READY)
		wfi();
	return b;
}

int main(void)
{
	REG(0x40023840u) |= 1u << 17; /* RCC APB1ENR: USART2EN */
	huart2.instance = (struct usart *)USART2_BASE;
	huart2.tx_state = READY;
	huart2.rx_state = READY;
	huart2.instance->BRR = 0x8b;
	huart2.instance->CR1 = CR1_UE | CR1_TE | CR1_RE;
	nvic_enable(38);
	send("hal it ready\r\n> ");
	char line[32];
	getline_(line, sizeof(line));
	send("got: ");
	send(line);
	send("\r\nPASS\r\n");
	return 0;
}
