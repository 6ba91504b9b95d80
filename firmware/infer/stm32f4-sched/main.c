/*
 * A small scheduler: SysTick (1 ms) counts time and wakes sleepers,
 * PendSV saves r4-r11 on the process stack and switches between two tasks;
 * each task prints, sleeps one tick, and yields. Output on USART2.
 */
#include "fw.h"

#define USART2 0x40004400u
#define USART_SR REG(USART2 + 0x00)
#define USART_DR REG(USART2 + 0x04)
#define USART_BRR REG(USART2 + 0x08)
#define USART_CR1 REG(USART2 + 0x0c)
#define SCB_ICSR REG(0xE000ED04u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)

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

static volatile unsigned ticks;
uint32_t *task_sp[3];
volatile uint32_t cur = 2; /* 2: main, which is never resumed */
static uint32_t stacks[2][256];

void systick_handler(void)
{
	ticks++;
}

__attribute__((naked)) void pendsv_handler(void)
{
	__asm volatile("mrs r0, psp\n"
	               "stmdb r0!, {r4-r11}\n"
	               "ldr r1, =cur\n"
	               "ldr r2, [r1]\n"
	               "ldr r3, =task_sp\n"
	               "str r0, [r3, r2, lsl #2]\n"
	               "cmp r2, #0\n"
	               "ite eq\n"
	               "moveq r2, #1\n"
	               "movne r2, #0\n"
	               "str r2, [r1]\n"
	               "ldr r0, [r3, r2, lsl #2]\n"
	               "ldmia r0!, {r4-r11}\n"
	               "msr psp, r0\n"
	               "bx lr\n"
	               ".ltorg\n");
}

static void yield(void)
{
	SCB_ICSR = 1u << 28; /* PENDSVSET */
	__asm volatile("dsb\n isb");
}

static void sleep_tick(void)
{
	unsigned t = ticks;
	while (ticks == t)
		wfi();
}

static void task(int id)
{
	for (int i = 0; i < 3; i++) {
		__asm volatile("cpsid i");
		putc_(id ? 'B' : 'A');
		putc_((char)('0' + i));
		puts_("\r\n");
		__asm volatile("cpsie i");
		sleep_tick();
		yield();
	}
	if (id == 1) {
		puts_(ticks >= 6 ? "PASS\r\n" : "FAIL\r\n");
		__asm volatile("bkpt #0");
	}
	for (;;)
		yield();
}

static void task_a(void)
{
	task(0);
}

static void task_b(void)
{
	task(1);
}

static uint32_t *frame(uint32_t *top, void (*fn)(void))
{
	uint32_t *sp = top - 16;
	for (int i = 0; i < 16; i++)
		sp[i] = 0;
	sp[8 + 5] = 0xfffffffdu; /* lr */
	sp[8 + 6] = (uint32_t)fn & ~1u; /* pc */
	sp[8 + 7] = 0x01000000u; /* xpsr: Thumb */
	return sp;
}

int main(void)
{
	REG(0x40023840u) |= 1u << 17; /* RCC APB1ENR USART2EN */
	USART_BRR = 0x8b;
	USART_CR1 = (1u << 13) | (1u << 3);
	puts_("sched\r\n");
	task_sp[0] = frame(&stacks[0][256], task_a);
	task_sp[1] = frame(&stacks[1][256], task_b);
	SYST_RVR = 16000 - 1;
	SYST_CVR = 0;
	SYST_CSR = 7; /* enable, interrupt, core clock */
	static uint32_t boot_stack[64];
	__asm volatile("msr psp, %0\n"
	               "movs r0, #2\n"
	               "msr control, r0\n"
	               "isb\n" ::"r"(&boot_stack[64])
	               : "r0");
	yield();
	for (;;)
		;
}
