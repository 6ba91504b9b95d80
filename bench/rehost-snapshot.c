/*
 * Snapshot save + restore time on a rehost machine with 256 KiB of flash
 * and 64 KiB of RAM (Cortex-M3, memory_map from the benchmark),
 * running firmware/mps2-hello. Prints the median over many iterations.
 * Built and run by bench/rehost-snapshot.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/image.h"
#include "rehost/machine.h"

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	json_t *mm = json_pack("[{s:s,s:i,s:i},{s:s,s:i,s:i}]", "name", "flash", "base", 0, "size",
	                       256 * 1024, "name", "ram", "base", 0x20000000, "size", 64 * 1024);
	struct ms_rh_opts o = {.cpu = "cortex-m3", .memory_map = mm, .no_infer = true};
	struct ms_rh_machine *m;
	struct ms_image img;
	struct ms_err e;
	double save[1000], rest[1000], both[1000];
	int i, n = 1000;

	if (argc < 2 || ms_image_load_file(argv[1], 0, 1 << 24, &img, &e) != 0 ||
	    ms_rh_machine_new(&o, &m, &e) != 0 || ms_rh_machine_load(m, &img, &e) != 0) {
		fprintf(stderr, "rehost-snapshot: setup failed: %s\n", e.message);
		return 1;
	}
	ms_rh_machine_run(m, 100000);
	for (i = 0; i < n; i++) {
		struct ms_rh_snapshot *s;
		double t0 = now_us(), t1, t2;

		s = ms_rh_snapshot_take(m);
		t1 = now_us();
		if (ms_rh_snapshot_restore(m, s, &e) != 0) {
			fprintf(stderr, "restore failed: %s\n", e.message);
			return 1;
		}
		t2 = now_us();
		ms_rh_snapshot_free(s);
		save[i] = t1 - t0;
		rest[i] = t2 - t1;
		both[i] = t2 - t0;
		ms_rh_machine_run(m, 1000);
	}
	qsort(save, (size_t)n, sizeof(double), cmp);
	qsort(rest, (size_t)n, sizeof(double), cmp);
	qsort(both, (size_t)n, sizeof(double), cmp);
	printf("rehost-snapshot: 256 KiB flash + 64 KiB RAM, %d iterations\n", n);
	printf("  save    median %.1f us  p99 %.1f us\n", save[n / 2], save[n * 99 / 100]);
	printf("  restore median %.1f us  p99 %.1f us\n", rest[n / 2], rest[n * 99 / 100]);
	printf("  both    median %.1f us  p99 %.1f us  (target <= 1000 us)\n", both[n / 2],
	       both[n * 99 / 100]);
	ms_rh_machine_free(m);
	ms_image_free(&img);
	json_decref(mm);
	return 0;
}
