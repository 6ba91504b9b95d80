/*
 * nRF52832 (product specification v1.4, section 35): UARTE0 at 0x40002000,
 * TASKS_STARTTX +0x008, TASKS_STOPTX +0x00c, EVENTS_ENDTX +0x120,
 * EVENTS_TXSTOPPED +0x158, ENABLE +0x500 (8: UARTE), PSEL.TXD +0x50c,
 * BAUDRATE +0x524, TXD.PTR +0x544, TXD.MAXCNT +0x548. EasyDMA reads from
 * RAM only, so the bytes are copied there first.
 */
#include "fw.h"

#define UARTE0 0x40002000u
#define TASKS_STARTTX REG(UARTE0 + 0x008)
#define TASKS_STOPTX REG(UARTE0 + 0x00c)
#define EVENTS_ENDTX REG(UARTE0 + 0x120)
#define EVENTS_TXSTOPPED REG(UARTE0 + 0x158)
#define ENABLE REG(UARTE0 + 0x500)
#define PSEL_TXD REG(UARTE0 + 0x50c)
#define BAUDRATE REG(UARTE0 + 0x524)
#define TXD_PTR REG(UARTE0 + 0x544)
#define TXD_MAXCNT REG(UARTE0 + 0x548)

static volatile uint8_t tx_byte;
static char line[32];

static void send(const volatile void *buf, unsigned n)
{
	TXD_PTR = (uint32_t)buf;
	TXD_MAXCNT = n;
	EVENTS_ENDTX = 0;
	TASKS_STARTTX = 1;
	while (EVENTS_ENDTX == 0)
		;
	EVENTS_TXSTOPPED = 0;
	TASKS_STOPTX = 1;
	while (EVENTS_TXSTOPPED == 0)
		;
}

void putc_(char c)
{
	tx_byte = (uint8_t)c;
	send(&tx_byte, 1);
}

int getc_(void)
{
	return -1; /* receiving through EasyDMA is not part of this image */
}

int main(void)
{
	PSEL_TXD = 6;
	BAUDRATE = 0x01d7e000; /* 115200 Bd */
	ENABLE = 8;
	puts_("uarte ready\r\n");
	const char *s = "line by dma\r\n";
	unsigned n = 0;
	while (s[n]) {
		line[n] = s[n];
		n++;
	}
	send(line, n);
	puts_("PASS\r\n");
	return 0;
}
