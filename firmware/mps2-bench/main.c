/*
 * mps2-bench: CPU-bound work for the speed benchmark — CRC-32 over a
 * buffer, an insertion sort, and a matrix product, repeated ROUNDS times.
 * Prints checksums (the same on every engine) and "done". Built with
 * -DCRC_ONLY it runs only the CRC (loads, few stores).
 */
#include "mps2.h"

#ifndef ROUNDS
#define ROUNDS 40
#endif

static uint8_t buf[16384];
static uint32_t arr[512];
static int32_t ma[24][24], mb[24][24], mc[24][24];

static uint32_t crc32(const uint8_t *p, uint32_t n, uint32_t crc)
{
	uint32_t i;
	int k;

	crc = ~crc;
	for (i = 0; i < n; i++) {
		crc ^= p[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	return ~crc;
}

static void sort(uint32_t *a, int n)
{
	int i, j;

	for (i = 1; i < n; i++) {
		uint32_t v = a[i];

		for (j = i - 1; j >= 0 && a[j] > v; j--)
			a[j + 1] = a[j];
		a[j + 1] = v;
	}
}

int main(void)
{
	uint32_t seed = 12345, crc = 0, sum = 0;
	int r, i, j, k;

	uart_init();
	uart_puts("bench start\r\n");
	for (i = 0; i < (int)sizeof(buf); i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
	for (r = 0; r < ROUNDS; r++) {
		crc = crc32(buf, sizeof(buf), crc);
#ifdef CRC_ONLY
		continue;
#endif
		for (i = 0; i < 512; i++) {
			seed = seed * 1103515245u + 12345u;
			arr[i] = seed >> 8;
		}
		sort(arr, 512);
		sum += arr[r % 512];
		for (i = 0; i < 24; i++)
			for (j = 0; j < 24; j++) {
				ma[i][j] = (int32_t)((i * 7 + j + r) % 13);
				mb[i][j] = (int32_t)((j * 5 + i + r) % 11);
			}
		for (i = 0; i < 24; i++)
			for (j = 0; j < 24; j++) {
				int32_t acc = 0;

				for (k = 0; k < 24; k++)
					acc += ma[i][k] * mb[k][j];
				mc[i][j] = acc;
			}
		sum += (uint32_t)mc[r % 24][(r * 3) % 24];
	}
	uart_puts("crc=");
	uart_puthex(crc);
	uart_puts(" sum=");
	uart_puthex(sum);
	uart_puts("\r\ndone\r\n");
	for (;;)
		__asm__ volatile("wfi");
}
