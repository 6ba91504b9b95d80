/* Register access and small helpers shared by the inference corpus. */
#ifndef FW_H
#define FW_H

#include <stdint.h>

#define REG(a) (*(volatile uint32_t *)(a))
#define NVIC_ISER(n) REG(0xE000E100u + 4u * (n))

static inline void nvic_enable(int irq)
{
	NVIC_ISER(irq >> 5) = 1u << (irq & 31);
}

static inline void wfi(void)
{
	__asm volatile("wfi");
}

/* Each firmware provides these two on its console UART. */
void putc_(char c);
int getc_(void);

static inline void puts_(const char *s)
{
	while (*s)
		putc_(*s++);
}

static inline void putu(unsigned v)
{
	char b[12];
	int n = 0;
	do {
		b[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		putc_(b[--n]);
}

/* Read a line up to '\r' or '\n' into buf. */
static inline int getline_(char *buf, int cap)
{
	int n = 0;
	for (;;) {
		int c = getc_();
		if (c == '\r' || c == '\n')
			break;
		if (n + 1 < cap)
			buf[n++] = (char)c;
	}
	buf[n] = 0;
	return n;
}

#endif
