/*
 * mps2-nocp (Cortex-M4F, QEMU mps2-an386): CPACR decides who may use the
 * FPU. With CP10/CP11 access off, an FP instruction raises UsageFault
 * NOCP, or HardFault (FORCED) while UsageFault is disabled; the handler
 * grants access and returns, and the program goes on. With
 * privileged-only access, privileged code uses the FPU freely and
 * unprivileged code faults. (The stacked PC is not printed: rehost raises
 * this fault at the end of the instruction's translation block, see
 * docs/ARCHITECTURE.md.)
 */
#include "mps2.h"

#define CPACR_CP10_11 (0xfu << 20)
#define CPACR_PRIV_ONLY (0x5u << 20)
#define SHCSR_USGFAULTENA (1u << 18)

static volatile uint32_t faults;

static void kv(const char *k, uint32_t v)
{
	uart_puts(k);
	uart_puthex(v);
}

void fault_c(uint32_t *frame, uint32_t ipsr)
{
	(void)frame;
	faults++;
	uart_puts((ipsr & 0x1ff) == 3 ? "  HardFault" : "  UsageFault");
	kv(" cfsr=", SCB_CFSR);
	kv(" hfsr=", SCB_HFSR);
	uart_puts("\r\n");
	SCB_CFSR = SCB_CFSR;
	SCB_HFSR = SCB_HFSR;
	SCB_CPACR |= CPACR_CP10_11;
	__asm__ volatile("dsb\nisb");
}

#define FAULT_ENTRY                                                                                \
	__asm__ volatile("tst lr, #4\n"                                                            \
	                 "ite eq\n"                                                                \
	                 "mrseq r0, msp\n"                                                         \
	                 "mrsne r0, psp\n"                                                         \
	                 "mrs r1, ipsr\n"                                                          \
	                 "push {r4, lr}\n"                                                         \
	                 "bl fault_c\n"                                                            \
	                 "pop {r4, pc}\n")

__attribute__((naked)) void hardfault_handler(void)
{
	FAULT_ENTRY;
}

__attribute__((naked)) void usagefault_handler(void)
{
	FAULT_ENTRY;
}

/* 2 * x in single precision, on raw bits. */
static uint32_t fp_double(uint32_t bits)
{
	uint32_t out;

	__asm__ volatile("vmov s0, %1\n"
	                 "vadd.f32 s0, s0, s0\n"
	                 "vmov %0, s0\n"
	                 : "=r"(out)
	                 : "r"(bits)
	                 : "s0");
	return out;
}

static void set_cpacr(uint32_t v)
{
	SCB_CPACR = (SCB_CPACR & ~CPACR_CP10_11) | v;
	__asm__ volatile("dsb\nisb");
}

static void step(const char *what, uint32_t bits)
{
	uint32_t r = fp_double(bits);

	uart_puts(what);
	kv(" result=", r);
	uart_puts(" faults=");
	uart_putdec(faults);
	uart_puts("\r\n");
}

int main(void)
{
	uart_init();
	uart_puts("nocp test\r\n");
	kv("cpacr at start=", SCB_CPACR);
	uart_puts("\r\n");
	SCB_SHCSR |= SHCSR_USGFAULTENA;
	set_cpacr(0);
	step("1 usagefault enabled, cpacr off:", 0x41a80000);
	SCB_SHCSR &= ~SHCSR_USGFAULTENA;
	set_cpacr(0);
	step("2 usagefault disabled, cpacr off:", 0x40a00000);
	SCB_SHCSR |= SHCSR_USGFAULTENA;
	set_cpacr(CPACR_PRIV_ONLY);
	step("3 privileged, privileged-only:", 0x40400000);
	set_cpacr(CPACR_PRIV_ONLY);
	__asm__ volatile("msr control, %0\nisb" ::"r"(1));
	step("4 unprivileged, privileged-only:", 0x3f800000);
	uart_puts("nocp done\r\n");
	for (;;)
		;
}
