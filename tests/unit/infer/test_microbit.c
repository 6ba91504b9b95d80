/*
 * Real firmware nobody here wrote: Debian's micro:bit MicroPython
 * (nRF51822, Cortex-M0) on the test shell (Unicorn + this module only),
 * with no board file: it must reach the REPL and evaluate print(1+2).
 * Zero-config, with the nRF51 SVD, and from an exported device map (no
 * inference at all in the second run). Skips clearly when the firmware
 * package is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "shell.h"

#define HEX "/usr/share/firmware-microbit-micropython/firmware.hex"
#define NRF51_SVD "/work/shared/svd/Nordic/nrf51.svd"

/* The flash image (0..0x3ffff) of the HEX, made with arm-none-eabi-objcopy. */
static uint8_t *load_flash(size_t *len)
{
	char dir[] = "/tmp/ms-microbit-XXXXXX";
	if (!mkdtemp(dir))
		return NULL;
	char bin[128], cmd[512];
	snprintf(bin, sizeof(bin), "%s/fw.bin", dir);
	snprintf(
	    cmd, sizeof(cmd),
	    "arm-none-eabi-objcopy -I ihex -O binary --only-section=.sec1 --only-section=.sec2 "
	    "--only-section=.sec3 --only-section=.sec4 %s %s",
	    HEX, bin);
	uint8_t *buf = NULL;
	FILE *f;
	if (system(cmd) == 0 && (f = fopen(bin, "rb"))) {
		fseek(f, 0, SEEK_END);
		long n = ftell(f);
		fseek(f, 0, SEEK_SET);
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
			*len = (size_t)n;
		fclose(f);
	}
	unlink(bin);
	rmdir(dir);
	return buf;
}

static void need_firmware(void)
{
	struct stat st;
	if (stat(HEX, &st) != 0) {
		fprintf(stderr, "SKIP: %s absent (package firmware-microbit-micropython)\n", HEX);
		skip();
	}
}

/* Boot to the REPL, type print(1+2), return the console text. */
static void run_repl(struct shell *s, const struct ms_infer_opts *o)
{
	size_t len = 0;
	uint8_t *img = load_flash(&len);
	assert_non_null(img);
	struct ms_err e;
	int rc = sh_init(s, UC_CPU_ARM_CORTEX_M0, img, len, 0, o, &e);
	if (rc)
		fprintf(stderr, "%s\n", e.message);
	assert_int_equal(rc, 0);
	free(img);
	sh_input(s, "print(1+2)\r");
	/* Stop as soon as the answer and the next prompt are out. */
	for (int i = 0; i < 200 && !sh_out_has(s, "\r\n3\r\n>>> "); i++) {
		uint32_t v[2];
		if (i == 0) {
			uc_mem_read(s->uc, 0, v, 8);
			sh_run(s, v[1], v[0], 500000);
		} else {
			uint32_t pc;
			uc_reg_read(s->uc, UC_ARM_REG_PC, &pc);
			sh_run(s, pc, 0, 500000);
		}
	}
}

static void test_repl_zero_config(void **state)
{
	need_firmware();
	struct shell s;
	struct ms_infer_opts o = {0};
	run_repl(&s, &o);
	assert_true(sh_out_has(&s, "MicroPython"));
	assert_true(sh_out_has(&s, ">>> print(1+2)\r\n3\r\n>>> "));
	/* The console UART was recognised from its access pattern alone. */
	json_t *tx = sh_find(&s, "infer.register", "tx");
	assert_non_null(tx);
	assert_string_equal(json_string_value(json_object_get(tx, "addr")), "0x4000251c");
	json_t *irq = NULL;
	size_t i;
	json_t *ev;
	json_array_foreach(s.events, i, ev)
	{
		json_t *d = json_object_get(ev, "data");
		if (strcmp(json_string_value(json_object_get(ev, "type")), "infer.irq") == 0 &&
		    strcmp(json_string_value(json_object_get(d, "base")), "0x40002000") == 0)
			irq = d;
	}
	assert_non_null(irq);
	assert_int_equal(json_integer_value(json_object_get(irq, "irq")), 2);
	sh_free(&s);
}

static void test_repl_deterministic(void **state)
{
	need_firmware();
	struct shell a, b;
	struct ms_infer_opts o = {0};
	run_repl(&a, &o);
	run_repl(&b, &o);
	assert_int_equal(a.nout, b.nout);
	assert_memory_equal(a.out, b.out, a.nout);
	assert_int_equal(a.blocks, b.blocks);
	assert_int_equal(a.insns, b.insns);
	size_t i;
	json_t *e;
	json_array_foreach(a.events, i, e)
	{
		json_object_del(json_object_get(e, "data"), "latency_ns");
		json_object_del(json_object_get(e, "data"),
		                "map_ns"); /* host time, not a decision */
	}
	json_array_foreach(b.events, i, e)
	{
		json_object_del(json_object_get(e, "data"), "latency_ns");
		json_object_del(json_object_get(e, "data"),
		                "map_ns"); /* host time, not a decision */
	}
	assert_true(json_equal(a.events, b.events));
	sh_free(&a);
	sh_free(&b);
}

static void test_repl_with_svd(void **state)
{
	need_firmware();
	struct stat st;
	if (stat(NRF51_SVD, &st) != 0) {
		fprintf(stderr, "SKIP: %s absent\n", NRF51_SVD);
		skip();
	}
	struct shell s;
	const char *paths[] = {NRF51_SVD};
	struct ms_infer_opts o = {.mode = MS_INFER_SVD, .svd_paths = paths, .n_svd = 1};
	run_repl(&s, &o);
	assert_true(sh_out_has(&s, ">>> print(1+2)\r\n3\r\n>>> "));
	json_t *ps = ms_infer_peripherals(s.inf);
	size_t i;
	json_t *p;
	bool uart = false;
	json_array_foreach(
	    ps, i, p) if (strcmp(json_string_value(json_object_get(p, "name")), "UART0") == 0)
	    uart = json_is_true(json_object_get(p, "uart"));
	assert_true(uart);
	json_decref(ps);
	sh_free(&s);
}

/* A second run from the exported device map: no inference decision at all. */
static void test_repl_from_device_map(void **state)
{
	need_firmware();
	struct shell a, b;
	struct ms_infer_opts o = {0};
	run_repl(&a, &o);
	json_t *map = ms_infer_export(a.inf);
	char path[] = "/tmp/ms-microbit-map-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	assert_int_equal(json_dump_file(map, path, JSON_INDENT(1)), 0);
	o.models_path = path;
	run_repl(&b, &o);
	assert_true(sh_out_has(&b, ">>> print(1+2)\r\n3\r\n>>> "));
	assert_int_equal(sh_count(&b, "infer.region"), 0);
	assert_int_equal(sh_count(&b, "infer.poll"), 0);
	assert_int_equal(sh_count(&b, "infer.register"), 0);
	assert_int_equal(sh_count(&b, "infer.irq"), 0);
	assert_int_equal(sh_count(&b, "infer.timer"), 0);
	unlink(path);
	json_decref(map);
	sh_free(&a);
	sh_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_repl_zero_config),
	    cmocka_unit_test(test_repl_deterministic),
	    cmocka_unit_test(test_repl_with_svd),
	    cmocka_unit_test(test_repl_from_device_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
