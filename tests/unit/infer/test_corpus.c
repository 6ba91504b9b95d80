/*
 * The inference corpus (firmware/infer): builds it with arm-none-eabi-gcc
 * (make -C firmware/infer) and runs every image on the test shell, zero-
 * config and with its vendor SVD, checking its pass criterion (the EXPECT
 * line of its build.mk on the console, given its INPUT and, when it has an
 * EVENTS file, those external events injected at their virtual times with
 * the parser of `machineserver run --events`). The same images
 * run through `machineserver run` on the rehost engine in the integration
 * tests; here nothing but Unicorn and this module is involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>

#include "infer/svd.h"
#include "rehost/run.h"
#include "shell.h"

#define SVD_DIR "/work/shared/svd"

static char build_dir[128];

static int setup(void **state)
{
	snprintf(build_dir, sizeof(build_dir), "/tmp/ms-infer-corpus-XXXXXX");
	if (!mkdtemp(build_dir))
		return -1;
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "make -s -C firmware/infer BUILD=%s >/dev/null", build_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", build_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* C escapes of build.mk text (\r \n) into bytes. */
static void unescape(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	for (; *in && n + 1 < cap; in++) {
		if (in[0] == '\\' && in[1] == 'r') {
			out[n++] = '\r';
			in++;
		} else if (in[0] == '\\' && in[1] == 'n') {
			out[n++] = '\n';
			in++;
		} else {
			out[n++] = *in;
		}
	}
	out[n] = 0;
}

struct fw {
	char name[64];
	char svd[128];
	char input[128];
	char expect[256];
	char events[160]; /* path of the EVENTS file, or empty */
	uint32_t flash;
	int cpu;
	bool engine_only; /* needs the engine's SysTick/PendSV: not for the test shell */
};

static bool read_fw(const char *name, struct fw *f)
{
	char path[256], line[512];
	snprintf(path, sizeof(path), "firmware/infer/%s/build.mk", name);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return false;
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->cpu = UC_CPU_ARM_CORTEX_M3;
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "# FW_SVD: ", 10))
			snprintf(f->svd, sizeof(f->svd), "%s/%s", SVD_DIR, line + 10);
		else if (!strncmp(line, "# INPUT:", 8))
			unescape(line + 8 + (line[8] == ' '), f->input, sizeof(f->input));
		else if (!strncmp(line, "# EXPECT: ", 10))
			unescape(line + 10, f->expect, sizeof(f->expect));
		else if (!strncmp(line, "# EVENTS: ", 10))
			snprintf(f->events, sizeof(f->events), "firmware/infer/%s/%s", name,
			         line + 10);
		else if (!strncmp(line, "# ENGINE: only", 14))
			f->engine_only = true;
		else if (!strncmp(line, "FW_FLASH := ", 12))
			f->flash = (uint32_t)strtoul(line + 12, NULL, 0);
		else if (strstr(line, "FW_CPU") && strstr(line, "cortex-m0"))
			f->cpu = UC_CPU_ARM_CORTEX_M0;
		else if (strstr(line, "FW_CPU") && strstr(line, "cortex-m4"))
			f->cpu = UC_CPU_ARM_CORTEX_M4;
	}
	fclose(fp);
	return f->expect[0] != 0;
}

static uint8_t *read_bin(const char *name, size_t *len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/infer-%s.bin", build_dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

/*
 * Boot an image with its INPUT and its EVENTS (injected at their virtual
 * times, with the parser of `machineserver run --events`) and run it for
 * up to 20 M instructions.
 */
static void boot_with_input(struct shell *s, const struct fw *f)
{
	struct ms_err e;
	sh_input(s, f->input);
	uint32_t v[2];
	uc_mem_read(s->uc, f->flash, v, 8);
	struct ms_run_events evs = {0};
	if (f->events[0]) {
		char err[256];
		if (ms_run_events_load(f->events, &evs, err, sizeof(err)) != 0)
			fail_msg("%s", err);
	}
	/* The shell's clock: 16 instructions per virtual microsecond (sh_now). */
	uint64_t limit = 20000000;
	uint32_t pc = v[1], sp = v[0];
	for (size_t i = 0; i < evs.n && s->insns < limit; i++) {
		uint64_t due = evs.v[i].at_us * 16;
		if (due > s->insns && sh_run(s, pc, sp, due - s->insns) != UC_ERR_OK)
			break;
		sp = 0;
		uc_reg_read(s->uc, UC_ARM_REG_PC, &pc);
		if (ms_infer_inject(s->inf, evs.v[i].ev, &e) != 0)
			fail_msg("%s line %d: %s", f->events, evs.v[i].line, e.message);
	}
	if (s->insns < limit)
		sh_run(s, pc, sp, limit - s->insns);
	ms_run_events_free(&evs);
}

/* Run one image; returns whether EXPECT appeared. */
static bool run_fw(const struct fw *f, bool svd, json_t **stats)
{
	size_t len = 0;
	uint8_t *img = read_bin(f->name, &len);
	assert_non_null(img);
	struct shell s;
	struct ms_err e;
	const char *paths[] = {f->svd};
	struct ms_infer_opts o = {
	    .mode = svd ? MS_INFER_SVD : MS_INFER_RULES, .svd_paths = paths, .n_svd = svd ? 1 : 0};
	assert_int_equal(sh_init(&s, f->cpu, img, len, f->flash, &o, &e), 0);
	free(img);
	boot_with_input(&s, f);
	bool ok = sh_out_has(&s, f->expect);
	if (!ok)
		fprintf(stderr, "%s (%s): console [%.*s]\n", f->name, svd ? "svd" : "zero-config",
		        (int)s.nout, s.out);
	if (stats)
		*stats = ms_infer_stats(s.inf);
	sh_free(&s);
	return ok;
}

static void test_corpus(void **state)
{
	DIR *d = opendir("firmware/infer");
	assert_non_null(d);
	struct dirent *de;
	int n = 0, pass = 0, svd_runs = 0, svd_pass = 0;
	bool have_svd = access(SVD_DIR, R_OK) == 0;
	if (!have_svd)
		fprintf(stderr, "SKIP (svd mode): %s absent\n", SVD_DIR);
	while ((de = readdir(d))) {
		struct fw f;
		if (de->d_name[0] == '.' || !read_fw(de->d_name, &f))
			continue;
		if (f.engine_only) {
			fprintf(stderr, "%-24s runs on the rehost engine only (SysTick/PendSV)\n",
			        f.name);
			continue;
		}
		n++;
		json_t *st = NULL;
		bool ok = run_fw(&f, false, &st);
		pass += ok;
		json_t *dec = json_object_get(st, "decisions");
		fprintf(stderr,
		        "%-24s zero-config %s  peripherals %lld registers %lld polls %lld\n",
		        f.name, ok ? "PASS" : "FAIL",
		        (long long)json_integer_value(json_object_get(st, "peripherals")),
		        (long long)json_integer_value(json_object_get(st, "registers")),
		        (long long)json_integer_value(json_object_get(dec, "poll")));
		json_decref(st);
		if (have_svd && f.svd[0]) {
			svd_runs++;
			ok = run_fw(&f, true, NULL);
			svd_pass += ok;
			fprintf(stderr, "%-24s svd         %s\n", f.name, ok ? "PASS" : "FAIL");
		}
	}
	closedir(d);
	assert_true(n >= 6);
	assert_int_equal(pass, n);
	assert_int_equal(svd_pass, svd_runs);
}

/*
 * The SVD's own description of a register, reduced to our categories:
 * data registers by their names (DR, DATA, RXD, TXD, RDR, TDR, VALUE,
 * RXDATA, TXDATA); status for read-only registers, status registers by name
 * (..SR, ..SRn, STATE, STATUS), pending registers (PR) and Nordic EVENTS_*;
 * control otherwise (RTSR/FTSR, trigger selections, are control).
 */
static const char *svd_category(const struct ms__svd_reg *r)
{
	static const char *const data[] = {"DR",  "DATA",  "RXD",    "TXD",    "RDR",
	                                   "TDR", "VALUE", "RXDATA", "TXDATA", NULL};
	const char *n = r->name;
	size_t l = strlen(n);
	for (int i = 0; data[i]; i++)
		if (!strcasecmp(n, data[i]))
			return "data";
	/* STM32's rising/falling trigger selection registers end in SR but configure. */
	if (!strcasecmp(n, "RTSR") || !strcasecmp(n, "FTSR"))
		return "control";
	bool sr = (l >= 2 && !strcasecmp(n + l - 2, "SR")) ||
	    (l >= 3 && !strncasecmp(n + l - 3, "SR", 2) && n[l - 1] >= '0' && n[l - 1] <= '9');
	/* PR: a pending register (EXTI), flags the hardware sets, as EVENTS_* are. */
	if (!strncasecmp(n, "EVENTS_", 7) || sr || !strcasecmp(n, "PR") ||
	    !strcasecmp(n, "STATE") || !strcasecmp(n, "STATUS") || r->access == MS__SVD_RO)
		return "status";
	return "control";
}

/* Register classification of zero-config runs against the SVD: at least 95% exact. */
static void test_classification_accuracy(void **state)
{
	if (access(SVD_DIR, R_OK) != 0) {
		fprintf(stderr, "SKIP: %s absent\n", SVD_DIR);
		skip();
	}
	DIR *d = opendir("firmware/infer");
	assert_non_null(d);
	struct dirent *de;
	int total = 0, exact = 0, compatible = 0;
	while ((de = readdir(d))) {
		struct fw f;
		if (de->d_name[0] == '.' || !read_fw(de->d_name, &f) || !f.svd[0] || f.engine_only)
			continue;
		size_t len = 0;
		uint8_t *img = read_bin(f.name, &len);
		assert_non_null(img);
		struct shell s;
		struct ms_err e;
		struct ms_infer_opts o = {0};
		assert_int_equal(sh_init(&s, f.cpu, img, len, f.flash, &o, &e), 0);
		free(img);
		boot_with_input(&s, &f);
		struct ms__svd *svd;
		char err[256];
		assert_int_equal(ms__svd_load(f.svd, &svd, err, sizeof(err)), 0);
		json_t *ps = ms_infer_peripherals(s.inf);
		size_t i, k;
		json_t *p, *r;
		json_array_foreach(ps, i, p)
		    json_array_foreach(json_object_get(p, "registers"), k, r)
		{
			uint32_t a = (uint32_t)strtoul(
			    json_string_value(json_object_get(r, "addr")), NULL, 0);
			const struct ms__svd_periph *sp = ms__svd_find(svd, a);
			const struct ms__svd_reg *sr = sp ? ms__svd_reg_at(sp, a - sp->base) : NULL;
			if (!sr)
				continue;
			const char *truth = svd_category(sr);
			const char *ours = json_string_value(json_object_get(r, "category"));
			bool ex = !strcmp(truth, ours);
			bool cp = ex || (!strcmp(ours, "control+status") && strcmp(truth, "data"));
			total++;
			exact += ex;
			compatible += cp;
			if (!ex)
				fprintf(stderr, "  %-22s %-16s svd %-8s inferred %s\n", f.name,
				        sr->name, truth, ours);
		}
		json_decref(ps);
		ms__svd_free(svd);
		sh_free(&s);
	}
	closedir(d);
	fprintf(stderr, "classification: %d registers, %d exact (%.1f%%), %d compatible (%.1f%%)\n",
	        total, exact, 100.0 * exact / total, compatible, 100.0 * compatible / total);
	assert_true(total >= 50);
	assert_true(exact * 100 >= total * 95);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corpus),
	    cmocka_unit_test(test_classification_accuracy),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
