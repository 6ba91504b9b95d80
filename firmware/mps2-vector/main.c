/*
 * mps2-vector (Cortex-M3, QEMU mps2-an385): exception entry with bad
 * vectors, as ARMv7-M specifies it. The vector table is copied to the last
 * 128 bytes of the RAM at 0x21000000 (0x22000000 is a hole on both QEMU and
 * RAM at 0x21000000, and VTOR pointed at it; 0x24000000 is a hole (no
 * memory, a bus error) on both QEMU and rehost:
 *   A. PendSV's vector points into the hole: the handler's first fetch
 *      is a BusFault (IBUSERR), escalated to HardFault (FORCED);
 *   B. PendSV's vector has bit 0 clear: the handler's first instruction
 *      raises INVSTATE (a UsageFault: PendSV runs at the lowest priority),
 *      with T=0 in the stacked xPSR;
 *   C. VTOR in the hole: the vector read fails (HFSR.VECTTBL) and so does
 *      HardFault's own: lockup.
 * The fault handlers report, repair the frame and return. (A vector read
 * fault with a readable HardFault vector cannot be set up on QEMU's AN385
 * map, which has no RAM followed by a hole; test_engine.c covers it.)
 */
#include "mps2.h"

#define TABLE ((volatile uint32_t *)0x21ffff80u)
#define HOLE 0x24000000u
#define SHCSR_USGFAULTENA (1u << 18)

extern void (*const vector_table[16 + 32])(void);

static volatile uint32_t pendsv_runs;
static volatile char step; /* the case being run, for the debugger */

static void kv(const char *k, uint32_t v)
{
	uart_puts(k);
	uart_puthex(v);
}

/* The PendSV body, entered through whatever the table says. */
__attribute__((noinline)) void pendsv_body(void)
{
	pendsv_runs++;
}

void fault_c(uint32_t *frame, uint32_t ipsr)
{
	uart_puts((ipsr & 0x1ff) == 3 ? "  HardFault" : "  UsageFault");
	kv(" hfsr=", SCB_HFSR);
	kv(" cfsr=", SCB_CFSR);
	kv(" stacked ipsr=", frame[7] & 0x1ff);
	kv(" T=", (frame[7] >> 24) & 1);
	uart_puts(frame[6] == HOLE                                ? " pc=hole"
	              : frame[6] == ((uint32_t)pendsv_body & ~1u) ? " pc=pendsv_body"
	                                                          : " pc=elsewhere");
	/* Carry on in PendSV's context: run its body, in Thumb state. */
	frame[6] = (uint32_t)pendsv_body & ~1u;
	frame[7] |= 1u << 24;
	uart_puts("\r\n");
	SCB_CFSR = SCB_CFSR;
	SCB_HFSR = SCB_HFSR;
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

static void pend_pendsv(void)
{
	SCB_ICSR = ICSR_PENDSVSET;
	__asm__ volatile("dsb\nisb");
}

int main(void)
{
	int i;

	uart_init();
	uart_puts("vector test\r\n");
	for (i = 0; i < 32; i++)
		TABLE[i] = (uint32_t)vector_table[i];
	SCB_VTOR = (uint32_t)TABLE;
	kv("vtor=", SCB_VTOR);
	uart_puts("\r\n");
	SCB_SHCSR |= SHCSR_USGFAULTENA;
	SCB_SHPR(14) = 0xff;

	step = 'A';
	TABLE[14] = HOLE | 1u;
	pend_pendsv();
	uart_puts("A done, pendsv ran ");
	uart_putdec(pendsv_runs);
	uart_puts("\r\n");

	step = 'B';
	TABLE[14] = (uint32_t)pendsv_body & ~1u;
	pend_pendsv();
	uart_puts("B done, pendsv ran ");
	uart_putdec(pendsv_runs);
	uart_puts("\r\n");

	step = 'C';
	SCB_VTOR = HOLE;
	pend_pendsv();
	uart_puts("not reached\r\n");
	for (;;)
		;
}
