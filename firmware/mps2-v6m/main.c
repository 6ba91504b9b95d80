/*
 * mps2-v6m (ARMv6-M): what software sees of a Cortex-M0+ or a Cortex-M0.
 * Prints CPUID, the system handler priority registers after writing all
 * ones (ARMv6-M keeps SVCall, PendSV and SysTick, two bits each), CCR,
 * the registers ARMv6-M does not have (CFSR, HFSR read as zero), and VTOR
 * after pointing it at a copy of the vector table in RAM whose PendSV
 * entry differs: the M0+ has VTOR, so the copy's handler runs; the M0 has
 * none (reads as zero), so the handler in the table at 0 runs.
 * Runs on rehost only (--cpu cortex-m0plus / cortex-m0 on the mps2-an385
 * board): QEMU has no M0+, and its M0 board (microbit) has another UART.
 */
#include "mps2.h"

#define SCB_CPUID REG32(0xe000ed00)
#define SCB_SHPR1 REG32(0xe000ed18)
#define SCB_SHPR2 REG32(0xe000ed1c)
#define SCB_SHPR3 REG32(0xe000ed20)

extern void (*const vector_table[16 + 32])(void);
static void (*ram_table[48])(void) __attribute__((aligned(256)));

void pendsv_handler(void)
{
	uart_puts("pendsv: table at 0\r\n");
}

static void pendsv_relocated(void)
{
	uart_puts("pendsv: table in RAM\r\n");
}

static void kv(const char *k, uint32_t v)
{
	uart_puts(k);
	uart_puthex(v);
	uart_puts("\r\n");
}

int main(void)
{
	int i;

	uart_init();
	uart_puts("v6m test\r\n");
	kv("cpuid=", SCB_CPUID);
	SCB_SHPR1 = 0xffffffffu;
	SCB_SHPR2 = 0xffffffffu;
	SCB_SHPR3 = 0xffffffffu;
	kv("shpr1=", SCB_SHPR1);
	kv("shpr2=", SCB_SHPR2);
	kv("shpr3=", SCB_SHPR3);
	SCB_SHPR2 = 0;
	SCB_SHPR3 = 0;
	kv("ccr=", SCB_CCR);
	SCB_CCR = 0;
	kv("ccr after write=", SCB_CCR);
	kv("cfsr=", SCB_CFSR);
	kv("hfsr=", SCB_HFSR);
	for (i = 0; i < 48; i++)
		ram_table[i] = vector_table[i];
	ram_table[14] = pendsv_relocated;
	SCB_VTOR = (uint32_t)ram_table;
	kv("vtor is table in RAM=", SCB_VTOR == (uint32_t)ram_table);
	SCB_ICSR = ICSR_PENDSVSET;
	__asm__ volatile("dsb\nisb");
	uart_puts("v6m done\r\n");
	for (;;)
		__asm__ volatile("wfi");
}
