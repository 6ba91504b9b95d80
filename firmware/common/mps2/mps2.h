/*
 * Registers of the MPS2 (AN385/AN386/AN500) peripherals our firmware uses,
 * and the small console library in uart.c.
 */
#ifndef MPS2_H
#define MPS2_H

#include <stdint.h>

#define REG32(a) (*(volatile uint32_t *)(a))

/* CMSDK APB UART0. */
#define UART0_BASE 0x40004000u
#define UART_DATA(b) REG32((b) + 0x00)
#define UART_STATE(b) REG32((b) + 0x04)
#define UART_CTRL(b) REG32((b) + 0x08)
#define UART_INTSTATUS(b) REG32((b) + 0x0c)
#define UART_BAUDDIV(b) REG32((b) + 0x10)
#define UART_STATE_TXFULL 0x1u
#define UART_STATE_RXFULL 0x2u
#define UART_CTRL_TXEN 0x1u
#define UART_CTRL_RXEN 0x2u
#define UART_CTRL_TXIRQ 0x4u
#define UART_CTRL_RXIRQ 0x8u

/* CMSDK APB timers. */
#define TIMER0_BASE 0x40000000u
#define TIMER1_BASE 0x40001000u
#define TIMER_CTRL(b) REG32((b) + 0x00)
#define TIMER_VALUE(b) REG32((b) + 0x04)
#define TIMER_RELOAD(b) REG32((b) + 0x08)
#define TIMER_INTCLEAR(b) REG32((b) + 0x0c)
#define TIMER_CTRL_EN 0x1u
#define TIMER_CTRL_IRQEN 0x8u
#define IRQ_UART0_RX 0
#define IRQ_UART0_TX 1
#define IRQ_TIMER0 8
#define IRQ_TIMER1 9

/* Cortex-M system registers. */
#define SYST_CSR REG32(0xe000e010)
#define SYST_RVR REG32(0xe000e014)
#define SYST_CVR REG32(0xe000e018)
#define NVIC_ISER0 REG32(0xe000e100)
#define NVIC_ICER0 REG32(0xe000e180)
#define NVIC_ISPR0 REG32(0xe000e200)
#define NVIC_ICPR0 REG32(0xe000e280)
#define NVIC_IPR(n) (*(volatile uint8_t *)(0xe000e400 + (n)))
#define SCB_ICSR REG32(0xe000ed04)
#define SCB_VTOR REG32(0xe000ed08)
#define SCB_AIRCR REG32(0xe000ed0c)
#define SCB_CCR REG32(0xe000ed14)
#define SCB_SHPR(n) (*(volatile uint8_t *)(0xe000ed18 + (n)-4))
#define SCB_SHCSR REG32(0xe000ed24)
#define SCB_CFSR REG32(0xe000ed28)
#define SCB_HFSR REG32(0xe000ed2c)
#define SCB_BFAR REG32(0xe000ed38)
#define SCB_CPACR REG32(0xe000ed88)
#define FPU_FPCCR REG32(0xe000ef34)
#define ICSR_PENDSVSET (1u << 28)

void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);
void uart_putdec(uint32_t v);
void uart_puthex(uint32_t v);
/* A received byte, or -1 when none is waiting. */
int uart_getc(void);

#endif
