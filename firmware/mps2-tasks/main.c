/*
 * mps2-tasks: two unprivileged tasks on the process stack, switched by
 * PendSV; tasks yield with SVC, the first task is started by SVC too. The
 * output interleaves A and B deterministically.
 */
#include "mps2.h"

#define STACK_WORDS 256

static uint32_t stack_a[STACK_WORDS] __attribute__((aligned(8)));
static uint32_t stack_b[STACK_WORDS] __attribute__((aligned(8)));
uint32_t task_sp[2];
uint32_t current;
static volatile uint32_t done;

static void yield(void)
{
	__asm__ volatile("svc #1" ::: "memory");
}

static void task(char name)
{
	int i;

	for (i = 0; i < 3; i++) {
		uint32_t control;

		__asm__ volatile("mrs %0, control" : "=r"(control));
		uart_putc(name);
		uart_putdec((uint32_t)i);
		uart_puts(control & 1 ? " (unprivileged, psp)\r\n" : " (privileged!)\r\n");
		yield();
	}
	if (++done == 2)
		uart_puts("tasks PASS\r\n");
	for (;;)
		yield();
}

static void task_a(void)
{
	task('A');
}

static void task_b(void)
{
	task('B');
}

/* Initial frame: r4-r11 then the hardware frame r0-r3, r12, lr, pc, xpsr. */
static uint32_t init_stack(uint32_t *stack, void (*fn)(void))
{
	uint32_t *sp = stack + STACK_WORDS - 16;
	int i;

	for (i = 0; i < 16; i++)
		sp[i] = 0;
	sp[8 + 6] = (uint32_t)fn;
	sp[8 + 7] = 0x01000000;
	return (uint32_t)sp;
}

void svc_dispatch(uint32_t *frame)
{
	uint8_t num = ((uint8_t *)frame[6])[-2];

	if (num == 0) {
		/* Start task A: PSP at its frame (after r4-r11), unprivileged thread. */
		__asm__ volatile("msr psp, %0" ::"r"(task_sp[0] + 32));
		__asm__ volatile("msr control, %0" ::"r"(1));
		current = 0;
		return;
	}
	SCB_ICSR = ICSR_PENDSVSET;
}

__attribute__((naked)) void svc_handler(void)
{
	__asm__ volatile("tst lr, #4\n"
	                 "ite eq\n"
	                 "mrseq r0, msp\n"
	                 "mrsne r0, psp\n"
	                 "push {lr}\n"
	                 "bl svc_dispatch\n"
	                 "pop {lr}\n"
	                 "mrs r0, control\n"
	                 "cmp r0, #1\n"
	                 "bne 1f\n"
	                 "mov lr, #0xfffffffd\n"
	                 "1: bx lr\n");
}

__attribute__((naked)) void pendsv_handler(void)
{
	__asm__ volatile("mrs r0, psp\n"
	                 "stmdb r0!, {r4-r11}\n"
	                 "ldr r1, =current\n"
	                 "ldr r2, [r1]\n"
	                 "ldr r3, =task_sp\n"
	                 "str r0, [r3, r2, lsl #2]\n"
	                 "eor r2, r2, #1\n"
	                 "str r2, [r1]\n"
	                 "ldr r0, [r3, r2, lsl #2]\n"
	                 "ldmia r0!, {r4-r11}\n"
	                 "msr psp, r0\n"
	                 "bx lr\n");
}

int main(void)
{
	uart_init();
	uart_puts("tasks test\r\n");
	SCB_SHPR(14) = 0xff; /* PendSV lowest */
	task_sp[0] = init_stack(stack_a, task_a);
	task_sp[1] = init_stack(stack_b, task_b);
	__asm__ volatile("svc #0" ::: "memory");
	/* Not reached: svc #0 returns into task A. */
	for (;;)
		;
}
