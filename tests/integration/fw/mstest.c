/*
 * mstest: the firmware the integration tests and benchmarks build and run
 * on QEMU mps2-an385 (Cortex-M3, CMSDK UART0 at 0x40004000).
 *
 * Self-contained on purpose (own vector table, own UART code) so that the
 * daemon's tests depend only on the compiler, not on other firmware trees.
 *
 * Console protocol, one command per line (CR or LF ends a line):
 *   inc         counter += 1, prints "counter=N"
 *   get         prints "counter=N"
 *   flood N     prints N lines "L00000000" .. then "FLOOD-DONE"
 *   crash       reads unmapped memory; the HardFault vector is unmapped too,
 *               so the core locks up and QEMU 7.2 exits (a dying emulator)
 *   other text  echoed back as "echo: <text>"
 * Each answer is followed by the prompt "> ".
 *
 * `counter` is a global in RAM so snapshots and gdb can see it.
 */
#include <stdint.h>

#define UART0 0x40004000u
#define REG(off) (*(volatile uint32_t *)(UART0 + (off)))
#define UART_DATA REG(0x00)
#define UART_STATE REG(0x04)
#define UART_CTRL REG(0x08)
#define UART_INTSTATUS REG(0x0c)
#define UART_BAUDDIV REG(0x10)
#define NVIC_ISER0 (*(volatile uint32_t *)0xe000e100u)
#define NVIC_ICPR0 (*(volatile uint32_t *)0xe000e280u)

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
void reset_handler(void);
static void hang(void);

volatile uint32_t counter;
static char line[96];

/*
 * Vector 3 (HardFault) points into unmapped memory: any fault escalates to
 * HardFault, whose fetch faults again, which is a lockup.
 */
__attribute__((section(".vectors"), used)) const uint32_t vectors[16] = {
    (uint32_t)&_estack,
    (uint32_t)reset_handler,
    (uint32_t)hang,
    0xf0000001u,
};

static void hang(void)
{
	for (;;)
		;
}

static void putc_(char c)
{
	while (UART_STATE & 1u)
		;
	UART_DATA = (uint8_t)c;
}

static void puts_(const char *s)
{
	while (*s)
		putc_(*s++);
}

static void putdec(uint32_t v, int width)
{
	char buf[12];
	int i = 0;

	do {
		buf[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i < width)
		buf[i++] = '0';
	while (i > 0)
		putc_(buf[--i]);
}

static int starts(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	return 1;
}

static uint32_t parse_dec(const char *s)
{
	uint32_t v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint32_t)(*s++ - '0');
	return v;
}

static void command(void)
{
	if (starts(line, "inc") && line[3] == 0) {
		counter++;
		puts_("counter=");
		putdec(counter, 0);
		puts_("\r\n");
	} else if (starts(line, "get") && line[3] == 0) {
		puts_("counter=");
		putdec(counter, 0);
		puts_("\r\n");
	} else if (starts(line, "flood ")) {
		uint32_t n = parse_dec(line + 6);

		for (uint32_t i = 0; i < n; i++) {
			putc_('L');
			putdec(i, 8);
			puts_("\r\n");
		}
		puts_("FLOOD-DONE\r\n");
	} else if (starts(line, "crash") && line[5] == 0) {
		puts_("crashing\r\n");
		(void)*(volatile uint32_t *)0x30000000u;
	} else {
		puts_("echo: ");
		puts_(line);
		puts_("\r\n");
	}
	puts_("> ");
}

void reset_handler(void)
{
	uint32_t *s = &_sidata, *d;
	unsigned len = 0;

	for (d = &_sdata; d < &_edata; d++)
		*d = *s++;
	for (d = &_sbss; d < &_ebss; d++)
		*d = 0;
	UART_BAUDDIV = 16;
	/*
	 * TX, RX and the RX interrupt enabled; interrupts stay masked
	 * (PRIMASK), the pending RX interrupt only wakes WFI. Waiting in WFI
	 * instead of spinning on the status register matters on QEMU: a vCPU
	 * polling MMIO in a tight loop keeps the big lock and starves the I/O
	 * thread, so received bytes are never delivered.
	 */
	__asm__ volatile("cpsid i");
	NVIC_ISER0 = 1u; /* UART0 RX is IRQ 0 on mps2-an385 */
	UART_CTRL = 0xb;
	puts_("mstest ready\r\n> ");
	for (;;) {
		int c;

		if (!(UART_STATE & 2u)) {
			UART_INTSTATUS = 2u;
			NVIC_ICPR0 = 1u;
			if (!(UART_STATE & 2u))
				__asm__ volatile("wfi");
			continue;
		}
		c = (int)(UART_DATA & 0xff);
		if (c == '\r' || c == '\n') {
			line[len] = 0;
			if (len > 0)
				command();
			len = 0;
		} else if (len < sizeof(line) - 1) {
			line[len++] = (char)c;
		}
	}
}
