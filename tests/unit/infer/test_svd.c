/*
 * Unit tests for the SVD reader and SVD mode: the vendor files in
 * /work/shared/svd (skipped clearly when that folder is absent), hostile
 * files (malformed, truncated, huge, absurd dimensions, entity bombs),
 * selection among several files, set/clear alias pairs and W1C flags.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "infer/svd.h"
#include "shell.h"

#define SVD_DIR "/work/shared/svd"

static bool have_svds(void)
{
	struct stat st;
	return stat(SVD_DIR, &st) == 0 && S_ISDIR(st.st_mode);
}

#define NEED_SVDS()                                                                                \
	do {                                                                                       \
		if (!have_svds()) {                                                                \
			fprintf(stderr, "SKIP: %s absent, vendor SVD tests not run\n", SVD_DIR);   \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static const struct ms__svd_reg *find_reg(const struct ms__svd *s, const char *periph,
                                          const char *name, const struct ms__svd_periph **pp)
{
	for (int i = 0; i < s->np; i++) {
		if (strcmp(s->p[i].name, periph))
			continue;
		*pp = &s->p[i];
		for (int k = 0; k < s->p[i].nregs; k++)
			if (strcmp(s->p[i].regs[k].name, name) == 0)
				return &s->p[i].regs[k];
	}
	return NULL;
}

static void test_vendor_files(void **state)
{
	NEED_SVDS();
	static const char *const files[] = {
	    SVD_DIR "/Nordic/nrf51.svd",        SVD_DIR "/Nordic/nrf52.svd",
	    SVD_DIR "/STMicro/STM32F103xx.svd", SVD_DIR "/STMicro/STM32F407.svd",
	    SVD_DIR "/STMicro/STM32F0xx.svd",   SVD_DIR "/ARM_SAMPLE/CMSDK_CM3.svd",
	    SVD_DIR "/RaspberryPi/rp2040.svd",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct ms__svd *s = NULL;
		char err[256];
		int rc = ms__svd_load(files[i], &s, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "%s: %s\n", files[i], err);
		assert_int_equal(rc, 0);
		assert_true(s->np > 5);
		ms__svd_free(s);
	}
}

static void test_vendor_content(void **state)
{
	NEED_SVDS();
	struct ms__svd *s;
	char err[256];
	const struct ms__svd_periph *p = NULL;
	assert_int_equal(ms__svd_load(SVD_DIR "/STMicro/STM32F103xx.svd", &s, err, sizeof(err)), 0);
	const struct ms__svd_reg *r = find_reg(s, "USART1", "SR", &p);
	assert_non_null(r);
	assert_int_equal(p->base, 0x40013800);
	assert_int_equal(r->reset, 0xc0);
	assert_int_equal(p->irq[0], 37);
	/* USART2 is derivedFrom USART1 and must carry its registers. */
	r = find_reg(s, "USART2", "DR", &p);
	assert_non_null(r);
	assert_int_equal(p->base + r->off, 0x40004404);
	assert_ptr_equal(ms__svd_find(s, 0x40013804), ms__svd_find(s, 0x40013800));
	ms__svd_free(s);

	assert_int_equal(ms__svd_load(SVD_DIR "/Nordic/nrf51.svd", &s, err, sizeof(err)), 0);
	r = find_reg(s, "UART0", "TXD", &p);
	assert_non_null(r);
	assert_int_equal(p->base + r->off, 0x4000251c);
	assert_int_equal(p->irq[0], 2);
	ms__svd_free(s);
}

static int parse(const char *doc, char *err, size_t cap)
{
	struct ms__svd *s = NULL;
	int rc = ms__svd_parse(doc, strlen(doc), &s, err, cap);
	ms__svd_free(s);
	return rc;
}

#define HEAD "<?xml version=\"1.0\"?><device><name>T</name><peripherals>"
#define TAIL "</peripherals></device>"

static void test_hostile(void **state)
{
	char err[256];
	static const char *const bad[] = {
	    "",
	    "not xml at all",
	    "<device><name>T</name><peripherals><peripheral>", /* truncated */
	    "<?xml version=\"1.0\"?><notadevice/>",
	    HEAD TAIL, /* no peripherals */
	    HEAD "<peripheral><name>A</name></peripheral>" TAIL, /* no base */
	    HEAD "<peripheral><name>A</name><baseAddress>0xZZ</baseAddress></peripheral>" TAIL,
	    HEAD
	    "<peripheral><name>A</name><baseAddress>0x1ffffffff</baseAddress></peripheral>" TAIL,
	    HEAD "<peripheral><name>A</name><baseAddress>0x40000000</baseAddress><registers>"
	         "<register><name>R</name></register></registers></peripheral>" TAIL,
	    HEAD "<peripheral><name>A</name><baseAddress>0x40000000</baseAddress><registers>"
	         "<register><name>R%s</name><addressOffset>0</addressOffset><dim>100000000</dim>"
	         "<dimIncrement>4</dimIncrement></register></registers></peripheral>" TAIL,
	    HEAD
	    "<peripheral><name>A</name><baseAddress>0x40000000</baseAddress><registers>"
	    "<register><name>R</name><addressOffset>0</addressOffset><fields><field><name>F</name>"
	    "<bitOffset>30</bitOffset><bitWidth>8</bitWidth></field></fields></register>"
	    "</registers></peripheral>" TAIL,
	    HEAD
	    "<peripheral><name>A</name><baseAddress>0x40000000</baseAddress><registers>"
	    "<register><name>R</name><addressOffset>0</addressOffset><fields><field><name>F</name>"
	    "<bitRange>[3:9]</bitRange></field></fields></register></registers></peripheral>" TAIL,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_true(parse(bad[i], err, sizeof(err)) < 0);
		assert_true(err[0] != 0); /* always says why */
	}
	/* An entity bomb: refused or left unexpanded, never blown up. */
	const char *bomb =
	    "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\">"
	    "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c "
	    "\"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
	    "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e "
	    "\"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">"
	    "<!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\"><!ENTITY g "
	    "\"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">"
	    "<!ENTITY h \"&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;\">]>"
	    "<device><name>&h;</name><peripherals><peripheral><name>A</name>"
	    "<baseAddress>0x40000000</baseAddress></peripheral></peripherals></device>";
	struct ms__svd *s = NULL;
	int rc = ms__svd_parse(bomb, strlen(bomb), &s, err, sizeof(err));
	if (rc == 0) {
		assert_true(strlen(s->device) < sizeof(s->device));
		ms__svd_free(s);
	}
	/* An external entity is never fetched (no network, no file inclusion). */
	const char *ext =
	    "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
	    "<device><name>&x;</name><peripherals><peripheral><name>A</name>"
	    "<baseAddress>0x40000000</baseAddress></peripheral></peripherals></device>";
	s = NULL;
	rc = ms__svd_parse(ext, strlen(ext), &s, err, sizeof(err));
	if (rc == 0) {
		assert_null(strstr(s->device, "root:"));
		ms__svd_free(s);
	}
	/* Files: absent, a directory, too large (sparse). */
	assert_true(ms__svd_load("/nonexistent.svd", &s, err, sizeof(err)) < 0);
	assert_true(ms__svd_load("/tmp", &s, err, sizeof(err)) < 0);
	char path[] = "/tmp/ms-svd-huge-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 65ll * 1024 * 1024), 0);
	close(fd);
	assert_int_equal(ms__svd_load(path, &s, err, sizeof(err)), MS_ETOOBIG);
	unlink(path);
	/* ms_infer_new refuses a bad SVD with 400 bad_svd. */
	uc_engine *uc;
	uc_open(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS, &uc);
	const char *paths[] = {"/nonexistent.svd"};
	struct ms_infer_opts o = {.mode = MS_INFER_SVD, .svd_paths = paths, .n_svd = 1};
	struct ms_infer_host h = {0};
	struct ms_err e;
	assert_null(ms_infer_new(uc, &h, &o, &e));
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "bad_svd");
	o.n_svd = 0;
	assert_null(ms_infer_new(uc, &h, &o, &e)); /* svd mode without a file */
	uc_close(uc);
}

static void test_dim_and_clusters(void **state)
{
	const char *doc =
	    HEAD "<peripheral><name>T</name><baseAddress>0x40010000</baseAddress><registers>"
	         "<register><name>CC[%s]</name><addressOffset>0x40</addressOffset><dim>4</dim>"
	         "<dimIncrement>4</dimIncrement><resetValue>7</resetValue></register>"
	         "<cluster><name>CH%s</name><addressOffset>0x100</addressOffset><dim>2</dim>"
	         "<dimIncrement>0x10</dimIncrement><register><name>CTRL</name><addressOffset>4</"
	         "addressOffset>"
	         "</register></cluster></registers></peripheral>" TAIL;
	struct ms__svd *s;
	char err[256];
	assert_int_equal(ms__svd_parse(doc, strlen(doc), &s, err, sizeof(err)), 0);
	const struct ms__svd_periph *p = NULL;
	const struct ms__svd_reg *r = find_reg(s, "T", "CC3", &p);
	assert_non_null(r);
	assert_int_equal(r->off, 0x4c);
	assert_int_equal(r->reset, 7);
	r = find_reg(s, "T", "CH1_CTRL", &p);
	assert_non_null(r);
	assert_int_equal(r->off, 0x114);
	ms__svd_free(s);
}

static uc_err run_with_svd(struct shell *sh, const char *src, const char *cpu, int model,
                           const char *const *paths, size_t n, const char *input)
{
	size_t len = 0;
	uint8_t *bin = sh_asm(src, cpu, &len);
	assert_non_null(bin);
	struct ms_err e;
	struct ms_infer_opts o = {.mode = MS_INFER_SVD, .svd_paths = paths, .n_svd = n};
	int rc = sh_init(sh, model, bin, len, 0, &o, &e);
	if (rc)
		fprintf(stderr, "%s\n", e.message);
	assert_int_equal(rc, 0);
	free(bin);
	if (input)
		sh_input(sh, input);
	return sh_run(sh, 0, 0x20008000, 300000);
}

static json_t *reg_by_addr(json_t *ps, const char *addr)
{
	size_t i, k;
	json_t *p, *r;
	json_array_foreach(ps, i, p) json_array_foreach(
	    json_object_get(p, "registers"), k,
	    r) if (strcmp(json_string_value(json_object_get(r, "addr")), addr) == 0) return r;
	return NULL;
}

/* Several SVDs: the one whose registers match the touched addresses is chosen. */
static void test_svd_mode_uart_and_pick(void **state)
{
	NEED_SVDS();
	const char *paths[] = {SVD_DIR "/Nordic/nrf51.svd", SVD_DIR "/STMicro/STM32F103xx.svd"};
	struct shell sh;
	uc_err er = run_with_svd(&sh,
	                         "ldr r4, =0x40013800\n"
	                         "ldr r3, [r4]\n" /* SR: reset value 0xc0 */
	                         "movs r0, #'o'\n"
	                         "bl putc\n"
	                         "movs r0, #'k'\n"
	                         "bl putc\n"
	                         "movs r0, #'!'\n"
	                         "bl putc\n"
	                         "movs r0, #10\n"
	                         "bl putc\n"
	                         "bkpt\n"
	                         "putc: ldr r1, [r4]\n"
	                         "tst r1, #0x80\n"
	                         "beq putc\n"
	                         "str r0, [r4, #4]\n"
	                         "bx lr\n",
	                         "cortex-m3", UC_CPU_ARM_CORTEX_M3, paths, 2, NULL);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	uint32_t r3;
	uc_reg_read(sh.uc, UC_ARM_REG_R3, &r3);
	assert_int_equal(r3, 0xc0);
	assert_string_equal(sh.out, "ok!\n");
	json_t *pick = sh_find(&sh, "infer.svd", NULL);
	assert_non_null(pick);
	assert_non_null(strstr(json_string_value(json_object_get(pick, "svd")), "STM32F103"));
	json_t *ps = ms_infer_peripherals(sh.inf);
	json_t *sr = reg_by_addr(ps, "0x40013800");
	assert_non_null(sr);
	assert_string_equal(json_string_value(json_object_get(sr, "name")), "USART1.SR");
	assert_string_equal(json_string_value(json_object_get(sr, "reset")), "0xc0");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ps, 0), "irq")), 37);
	json_decref(ps);
	sh_free(&sh);
}

/* An SVD of another part (its blocks cover the page, no register matches): not applied. */
static void test_svd_wrong_part(void **state)
{
	NEED_SVDS();
	const char *paths[] = {SVD_DIR "/Nordic/nrf51.svd"};
	struct shell sh;
	uc_err er = run_with_svd(&sh,
	                         "ldr r4, =0x40013800\n"
	                         "movs r0, #'o'\n"
	                         "bl putc\n"
	                         "movs r0, #'k'\n"
	                         "bl putc\n"
	                         "movs r0, #'a'\n"
	                         "bl putc\n"
	                         "movs r0, #'y'\n"
	                         "bl putc\n"
	                         "bkpt\n"
	                         "putc: ldr r1, [r4]\n"
	                         "tst r1, #0x80\n"
	                         "beq putc\n"
	                         "str r0, [r4, #4]\n"
	                         "bx lr\n",
	                         "cortex-m3", UC_CPU_ARM_CORTEX_M3, paths, 1, NULL);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	assert_string_equal(sh.out, "okay");
	assert_null(sh_find(&sh, "infer.svd", NULL));
	json_t *ps = ms_infer_peripherals(sh.inf);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ps, 0), "source")),
	                    "rules");
	json_decref(ps);
	sh_free(&sh);
}

/* nRF INTENSET/INTENCLR: a set/clear alias pair acting on one value. */
static void test_svd_set_clear(void **state)
{
	NEED_SVDS();
	const char *paths[] = {SVD_DIR "/Nordic/nrf51.svd"};
	struct shell sh;
	uc_err er = run_with_svd(&sh,
	                         "ldr r4, =0x40002000\n"
	                         "ldr r1, =0x304\n"
	                         "ldr r2, =0x308\n"
	                         "movs r0, #4\n"
	                         "str r0, [r4, r1]\n"
	                         "movs r0, #0x80\n"
	                         "str r0, [r4, r1]\n"
	                         "movs r0, #4\n"
	                         "str r0, [r4, r2]\n"
	                         "ldr r5, [r4, r1]\n"
	                         "ldr r6, [r4, r2]\n"
	                         "bkpt\n",
	                         "cortex-m0", UC_CPU_ARM_CORTEX_M0, paths, 1, NULL);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	uint32_t r5, r6;
	uc_reg_read(sh.uc, UC_ARM_REG_R5, &r5);
	uc_reg_read(sh.uc, UC_ARM_REG_R6, &r6);
	assert_int_equal(r5, 0x80);
	assert_int_equal(r6, 0x80);
	sh_free(&sh);
}

/* A write-1-to-clear flag from a synthetic SVD. */
static void test_svd_w1c(void **state)
{
	const char *doc =
	    HEAD "<peripheral><name>T</name><baseAddress>0x40010000</baseAddress><registers>"
	         "<register><name>ISR</name><addressOffset>0</addressOffset><resetValue>0x0f</"
	         "resetValue>"
	         "<fields><field><name>F</name><bitOffset>0</bitOffset><bitWidth>4</bitWidth>"
	         "<modifiedWriteValues>oneToClear</modifiedWriteValues></field></fields></register>"
	         "</registers></peripheral>" TAIL;
	char path[] = "/tmp/ms-svd-w1c-XXXXXX";
	int fd = mkstemp(path);
	assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
	close(fd);
	const char *paths[] = {path};
	struct shell sh;
	uc_err er = run_with_svd(&sh,
	                         "ldr r4, =0x40010000\n"
	                         "ldr r5, [r4]\n"
	                         "movs r0, #5\n"
	                         "str r0, [r4]\n"
	                         "ldr r6, [r4]\n"
	                         "bkpt\n",
	                         "cortex-m0", UC_CPU_ARM_CORTEX_M0, paths, 1, NULL);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	uint32_t r5, r6;
	uc_reg_read(sh.uc, UC_ARM_REG_R5, &r5);
	uc_reg_read(sh.uc, UC_ARM_REG_R6, &r6);
	assert_int_equal(r5, 0x0f);
	assert_int_equal(r6, 0x0a);
	unlink(path);
	sh_free(&sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vendor_files),
	    cmocka_unit_test(test_vendor_content),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_dim_and_clusters),
	    cmocka_unit_test(test_svd_mode_uart_and_pick),
	    cmocka_unit_test(test_svd_wrong_part),
	    cmocka_unit_test(test_svd_set_clear),
	    cmocka_unit_test(test_svd_w1c),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
