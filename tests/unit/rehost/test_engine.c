/*
 * Tests for the rehost engine with real parts: our firmware corpus built
 * with arm-none-eabi-gcc, run on the engine and on qemu-system-arm
 * (mps2-an385 / an386) with the console output compared; determinism of
 * output and executed blocks; snapshots restored twice giving identical
 * traces; hostile images, a vector table pointing nowhere, runaway
 * firmware stopped by the limit; board file parsing with bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "core/image.h"
#include "rehost/board.h"
#include "rehost/coverage.h"
#include "rehost/machine.h"

static char fwdir[1024];

struct out {
	char buf[65536];
	size_t len;
};

static void to_buf(void *ud, const uint8_t *b, size_t n)
{
	struct out *o = ud;

	if (o->len + n < sizeof(o->buf)) {
		memcpy(o->buf + o->len, b, n);
		o->len += n;
		o->buf[o->len] = 0;
	}
}

static int setup(void **state)
{
	char cmd[2300], cwd[1024];

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	snprintf(fwdir, sizeof(fwdir), "%s/build/firmware", cwd);
	snprintf(cmd, sizeof(cmd), "make -s -C firmware BUILD=%s >/dev/null", fwdir);
	if (system(cmd) != 0)
		return -1;
	setenv("MS_BOARDS_DIR", "boards", 1);
	return 0;
}

static struct ms_rh_machine *boot(const char *board, const char *fw, struct out *o, bool cov)
{
	/* Board devices only: these tests are about the engine, not inference. */
	struct ms_rh_opts opts = {.board = board, .console = to_buf, .ud = o, .no_infer = true};
	struct ms_rh_machine *m = NULL;
	struct ms_image img;
	struct ms_err e;
	char path[1200];

	snprintf(path, sizeof(path), "%s/%s.elf", fwdir, fw);
	assert_int_equal(ms_image_load_file(path, 0, 1 << 24, &img, &e), 0);
	assert_int_equal(ms_rh_machine_new(&opts, &m, &e), 0);
	if (cov)
		ms_rh_machine_cov_attach(m, ms_rh_cov_new());
	assert_int_equal(ms_rh_machine_load(m, &img, &e), 0);
	ms_image_free(&img);
	return m;
}

/* Run until limit instructions, or lockup. Returns the last stop reason. */
static enum ms_rh_stop run_to(struct ms_rh_machine *m, uint64_t limit)
{
	enum ms_rh_stop st = MS_RH_STOP_LIMIT;

	while (m->icount < limit) {
		st = ms_rh_machine_run(m, limit - m->icount);
		if (st == MS_RH_STOP_LOCKUP || st == MS_RH_STOP_IDLE)
			break;
	}
	return st;
}

/* QEMU's console output for the same ELF (CR removed, qemu's own lines dropped). */
static void qemu_out(const char *machine, const char *fw, char *out, size_t cap)
{
	char cmd[2400];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd),
	         "timeout 3 qemu-system-arm -M %s -nographic -monitor none -serial stdio -kernel "
	         "%s/%s.elf </dev/null 2>/dev/null | tr -d '\\r' | sed '/^qemu/d' ",
	         machine, fwdir, fw);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = 0;
	pclose(p);
}

static void strip_cr(char *s)
{
	char *w = s;

	for (; *s; s++)
		if (*s != '\r')
			*w++ = *s;
	*w = 0;
}

static void compare_with_qemu(const char *board, const char *fw, const char *must, bool lockup)
{
	static struct out o;
	static char q[65536];
	struct ms_rh_machine *m;
	enum ms_rh_stop st;

	memset(&o, 0, sizeof(o));
	m = boot(board, fw, &o, false);
	st = run_to(m, 50000000);
	if (lockup) {
		assert_int_equal(st, MS_RH_STOP_LOCKUP);
		assert_non_null(strstr(m->crash, "pc=0x"));
	} else {
		assert_int_not_equal(st, MS_RH_STOP_LOCKUP);
	}
	ms_rh_machine_free(m);
	strip_cr(o.buf);
	assert_non_null(strstr(o.buf, must));
	qemu_out(board, fw, q, sizeof(q));
	/* QEMU prints the same text (it may stop later or earlier only by its timeout). */
	assert_string_equal(q, o.buf);
}

static void test_hello_matches_qemu(void **s)
{
	compare_with_qemu("mps2-an385", "mps2-hello", "Hello from MachineServer\n> ", false);
}

static void test_systick_matches_qemu(void **s)
{
	compare_with_qemu("mps2-an385", "mps2-systick", "tick 5\nsystick PASS\n", false);
}

static void test_tasks_match_qemu(void **s)
{
	compare_with_qemu("mps2-an385", "mps2-tasks", "B2 (unprivileged, psp)\ntasks PASS\n",
	                  false);
}

static void test_nested_matches_qemu(void **s)
{
	compare_with_qemu("mps2-an385", "mps2-nested",
	                  "low enter\nhigh\nlow exit\n2: basepri\nmasked by basepri\nhigh\n"
	                  "3: primask, both pending\nmasked by primask\nhigh\nlow enter\nlow exit\n"
	                  "nested PASS\n",
	                  false);
}

static void test_fault_matches_qemu(void **s)
{
	compare_with_qemu("mps2-an385", "mps2-fault",
	                  "recovered from UsageFault\nHardFault hfsr=0x40000000 cfsr=0x00010000",
	                  true);
}

static void test_fpu_matches_qemu(void **s)
{
	compare_with_qemu("mps2-an386", "mps2-fpu", "fpu PASS\n", false);
}

/* FP lazy stacking: LSPACT, FPCAR, the reserved frame and its late filling, as QEMU's M4. */
static void test_lazyfp_matches_qemu(void **s)
{
	compare_with_qemu(
	    "mps2-an386", "mps2-lazyfp",
	    "1 no FP in handler: excret=0xffffffe9 control=0x00000000 fpccr=0xc0000019 "
	    "after=0xc0000019 fpcar-sp=0x00000020\n"
	    "  frame: painted=16 saved=0 fpscr=0xa5a5a5a5 reserved=0xa5a5a5a5\n"
	    "  thread: intact=16 fpscr=0x02400000 fpccr=0xc0000018\n"
	    "2 FP in handler: excret=0xffffffe9 control=0x00000000 fpccr=0xc0000019 "
	    "after=0xc0000018",
	    false);
}

/* CPACR: NOCP UsageFault, HardFault when disabled, privileged-only access. */
static void test_nocp_matches_qemu(void **s)
{
	compare_with_qemu("mps2-an386", "mps2-nocp",
	                  "  UsageFault cfsr=0x00080000 hfsr=0x00000000\n"
	                  "1 usagefault enabled, cpacr off: result=0x42280000 faults=1\n"
	                  "  HardFault cfsr=0x00080000 hfsr=0x40000000\n"
	                  "2 usagefault disabled, cpacr off: result=0x41200000 faults=2\n"
	                  "3 privileged, privileged-only: result=0x40c00000 faults=2\n"
	                  "  UsageFault cfsr=0x00080000 hfsr=0x00000000\n"
	                  "4 unprivileged, privileged-only: result=0x40000000 faults=3\n",
	                  false);
}

/* A handler address in a hole (IBUSERR), one without the Thumb bit (INVSTATE), VTOR in a hole. */
static void test_vector_faults_match_qemu(void **s)
{
	compare_with_qemu("mps2-an385", "mps2-vector",
	                  "  HardFault hfsr=0x40000000 cfsr=0x00000100 stacked ipsr=0x0000000e "
	                  "T=0x00000001 pc=hole\n"
	                  "A done, pendsv ran 1\n"
	                  "  UsageFault hfsr=0x00000000 cfsr=0x00020000 stacked ipsr=0x0000000e "
	                  "T=0x00000000 pc=pendsv_body\n"
	                  "B done, pendsv ran 2\n",
	                  true);
}

/*
 * A vector read fault with HardFault's vector readable (QEMU's AN385 map
 * cannot show it: no RAM ends at a hole there): VTOR at the last 128 bytes
 * of RAM, IRQ 20's entry beyond them. HardFault runs (HFSR.VECTTBL), the
 * interrupt stays pending; the firmware's default HardFault handler then
 * stops on a breakpoint, a lockup.
 */
static void test_vecttbl_hardfault(void **s)
{
	static struct out o;
	struct ms_rh_machine *m;
	uint32_t table[32], vtor = 0x203fff80;

	memset(&o, 0, sizeof(o));
	m = boot("mps2-an385", "mps2-hello", &o, false);
	run_to(m, 20000);
	assert_non_null(strstr(o.buf, "> "));
	assert_int_equal(ms_rh_mem_read(m, 0, table, sizeof(table)), 0);
	assert_int_equal(ms_rh_mem_write(m, vtor, table, sizeof(table)), 0);
	m->scs.vtor = vtor;
	m->scs.enabled[16 + 20] = 1;
	ms__rh_irq_pulse(m, 20);
	assert_int_equal(run_to(m, m->icount + 100000), MS_RH_STOP_LOCKUP);
	assert_non_null(strstr(o.buf, "unexpected exception 3\r\n"));
	assert_true(m->scs.hfsr & 2);
	assert_int_equal(m->scs.pending[16 + 20], 1);
	assert_int_equal(m->scs.active[16 + 20], 0);
	assert_int_equal(m->scs.active[3], 1);
	ms_rh_machine_free(m);
}

/* Boot a firmware on a board with another CPU; run it to its end. */
static void run_on_cpu(const char *board, const char *cpu, const char *fw, struct out *o)
{
	struct ms_rh_opts opts = {
	    .board = board, .cpu = cpu, .console = to_buf, .ud = o, .no_infer = true};
	struct ms_rh_machine *m = NULL;
	struct ms_image img;
	struct ms_err e;
	char path[1200];

	memset(o, 0, sizeof(*o));
	snprintf(path, sizeof(path), "%s/%s.elf", fwdir, fw);
	assert_int_equal(ms_image_load_file(path, 0, 1 << 24, &img, &e), 0);
	assert_int_equal(ms_rh_machine_new(&opts, &m, &e), 0);
	assert_int_equal(ms_rh_machine_load(m, &img, &e), 0);
	ms_image_free(&img);
	run_to(m, 2000000);
	strip_cr(o->buf);
	ms_rh_machine_free(m);
}

/* ARMv6-M: CPUID, the SHPR layout, CCR read-only, no CFSR/HFSR; VTOR on the M0+ only. */
static void test_m0plus_and_m0(void **s)
{
	static struct out o;
	static const char common[] = "shpr1=0x00000000\nshpr2=0xc0000000\nshpr3=0xc0c00000\n"
	                             "ccr=0x00000208\nccr after write=0x00000208\n"
	                             "cfsr=0x00000000\nhfsr=0x00000000\n";

	run_on_cpu("mps2-an385", "cortex-m0plus", "mps2-v6m", &o);
	assert_non_null(strstr(o.buf, "v6m test\ncpuid=0x410cc601\n"));
	assert_non_null(strstr(o.buf, common));
	assert_non_null(strstr(o.buf,
	                       "vtor is table in RAM=0x00000001\npendsv: table in RAM\n"
	                       "v6m done\n"));
	run_on_cpu("mps2-an385", "cortex-m0", "mps2-v6m", &o);
	assert_non_null(strstr(o.buf, "v6m test\ncpuid=0x410cc200\n"));
	assert_non_null(strstr(o.buf, common));
	assert_non_null(strstr(o.buf,
	                       "vtor is table in RAM=0x00000000\npendsv: table at 0\n"
	                       "v6m done\n"));
	/* The same image on an ARMv7-M core sees the v7-M registers. */
	run_on_cpu("mps2-an385", "cortex-m3", "mps2-v6m", &o);
	assert_non_null(strstr(o.buf,
	                       "cpuid=0x412fc231\nshpr1=0x00ffffff\nshpr2=0xff000000\n"
	                       "shpr3=0xffff00ff\nccr=0x00000200\n"));
	assert_non_null(strstr(o.buf, "pendsv: table in RAM\n"));
}

/*
 * No FPU on the M3: an FP instruction is a NOCP UsageFault there. The
 * M4F image on the AN385 board and on QEMU's AN385 (also an M3) stops at
 * the same first fault (QEMU then retries the instruction forever; rehost
 * resumes after its block, see docs/ARCHITECTURE.md, so only the first
 * report is compared).
 */
static void test_fp_on_m3_is_nocp(void **s)
{
	static struct out o;
	static char q[65536];
	static const char first[] = "nocp test\ncpacr at start=0x00000000\n"
	                            "  UsageFault cfsr=0x00080000 hfsr=0x00000000\n";

	run_on_cpu("mps2-an385", NULL, "mps2-nocp", &o);
	assert_int_equal(strncmp(o.buf, first, strlen(first)), 0);
	qemu_out("mps2-an385", "mps2-nocp", q, sizeof(q));
	assert_int_equal(strncmp(q, first, strlen(first)), 0);
}

/* A snapshot taken while a lazy FP save is pending restores it: the CPU's FPCCR follows. */
static void test_snapshot_with_lazy_fp_pending(void **s)
{
	static struct out o;
	static char first[8192], again[8192];
	struct ms_rh_machine *m;
	struct ms_rh_snapshot *snap;
	struct ms_err e;
	size_t mark;
	int pendings = 0;

	memset(&o, 0, sizeof(o));
	m = boot("mps2-an386", "mps2-lazyfp", &o, false);
	/* Stop in the second case's PendSV, before its first FP instruction. */
	while (m->icount < 2000000 && pendings < 2) {
		bool was = m->scs.fpccr & 1;

		ms_rh_machine_run(m, 1);
		if (!was && (m->scs.fpccr & 1))
			pendings++;
	}
	assert_int_equal(pendings, 2);
	snap = ms_rh_snapshot_take(m);
	mark = o.len;
	run_to(m, m->icount + 2000000);
	snprintf(first, sizeof(first), "%s", o.buf + mark);
	assert_int_equal(ms_rh_snapshot_restore(m, snap, &e), 0);
	assert_true(m->scs.fpccr & 1);
	mark = o.len;
	run_to(m, m->icount + 2000000);
	snprintf(again, sizeof(again), "%s", o.buf + mark);
	assert_non_null(strstr(first,
	                       "2 FP in handler: excret=0xffffffe9 control=0x00000000 "
	                       "fpccr=0xc0000019 after=0xc0000018"));
	assert_non_null(strstr(first, "  frame: painted=0 saved=16 fpscr=0x02400000"));
	assert_non_null(strstr(first, "lazyfp done"));
	assert_string_equal(first, again);
	ms_rh_snapshot_free(snap);
	ms_rh_machine_free(m);
}

static void test_sysresetreq(void **s)
{
	static struct out o;
	struct ms_rh_machine *m;
	const char *p;
	int n = 0;

	memset(&o, 0, sizeof(o));
	m = boot("mps2-an385", "mps2-reset", &o, false);
	run_to(m, 100000);
	for (p = o.buf; (p = strstr(p, "boot rvr=0\r\n")) != NULL; p++)
		n++;
	assert_true(n >= 3);
	assert_null(strstr(o.buf, "rvr=1234"));
	ms_rh_machine_free(m);
}

static void test_echo_and_determinism(void **s)
{
	static struct out o1, o2;
	struct ms_rh_machine *m1, *m2;
	FILE *f;
	char a[200000], b[200000];
	size_t na, nb;

	memset(&o1, 0, sizeof(o1));
	memset(&o2, 0, sizeof(o2));
	m1 = boot("mps2-an385", "mps2-hello", &o1, true);
	m2 = boot("mps2-an385", "mps2-hello", &o2, true);
	ms_rh_machine_input_push(m1, "abc\rcount\r", 10);
	ms_rh_machine_input_push(m2, "abc\rcount\r", 10);
	run_to(m1, 3000000);
	run_to(m2, 3000000);
	assert_non_null(strstr(o1.buf, "echo: abc\r\n> count: "));
	assert_string_equal(o1.buf, o2.buf);
	assert_int_equal(m1->icount, m2->icount);
	assert_int_equal(ms_rh_cov_write_bb(m1->cov, "/tmp/ms_rh_bb1.txt", NULL), 0);
	assert_int_equal(ms_rh_cov_write_bb(m2->cov, "/tmp/ms_rh_bb2.txt", NULL), 0);
	f = fopen("/tmp/ms_rh_bb1.txt", "r");
	na = fread(a, 1, sizeof(a), f);
	fclose(f);
	f = fopen("/tmp/ms_rh_bb2.txt", "r");
	nb = fread(b, 1, sizeof(b), f);
	fclose(f);
	assert_true(na > 100);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	/* The first block is the reset handler's, Thumb bit clear. */
	assert_int_equal(strncmp(a, "0x0000", 6), 0);
	ms_rh_machine_free(m1);
	ms_rh_machine_free(m2);
}

/* Snapshot mid-run (in an unprivileged task); restore twice, from memory and disk: same traces. */
static void test_snapshot_restore_twice(void **s)
{
	static struct out o;
	struct ms_rh_machine *m;
	struct ms_rh_snapshot *snap, *disk;
	char trace[3][4096];
	uint64_t ic[3];
	struct ms_err e;
	int i;

	memset(&o, 0, sizeof(o));
	m = boot("mps2-an385", "mps2-tasks", &o, false);
	run_to(m, 2500);
	snap = ms_rh_snapshot_take(m);
	assert_non_null(snap);
	assert_int_equal(ms_rh_snapshot_write(snap, "/tmp/ms_rh_snap.bin", &e), 0);
	assert_int_equal(ms_rh_snapshot_read(m, "/tmp/ms_rh_snap.bin", &disk, &e), 0);
	for (i = 0; i < 3; i++) {
		size_t mark;

		if (i > 0)
			assert_int_equal(ms_rh_snapshot_restore(m, i == 1 ? snap : disk, &e), 0);
		mark = o.len;
		run_to(m, 20000);
		snprintf(trace[i], sizeof(trace[i]), "%s", o.buf + mark);
		ic[i] = m->icount;
	}
	assert_non_null(strstr(trace[0], "tasks PASS"));
	assert_string_equal(trace[0], trace[1]);
	assert_string_equal(trace[0], trace[2]);
	assert_int_equal(ic[0], ic[1]);
	assert_int_equal(ic[0], ic[2]);
	ms_rh_snapshot_free(snap);
	ms_rh_snapshot_free(disk);
	ms_rh_machine_free(m);
}

static void test_snapshot_file_hostile(void **s)
{
	static struct out o;
	struct ms_rh_machine *m;
	struct ms_rh_snapshot *snap, *bad;
	struct ms_err e;
	uint8_t *data;
	size_t n, cut;
	FILE *f;

	memset(&o, 0, sizeof(o));
	m = boot("mps2-an385", "mps2-hello", &o, false);
	run_to(m, 1000);
	snap = ms_rh_snapshot_take(m);
	assert_int_equal(ms_rh_snapshot_write(snap, "/tmp/ms_rh_snap2.bin", &e), 0);
	f = fopen("/tmp/ms_rh_snap2.bin", "rb");
	data = malloc(16 << 20);
	n = fread(data, 1, 16 << 20, f);
	fclose(f);
	/* Truncations are refused, never read beyond the file. */
	for (cut = 0; cut < n; cut = cut < 4096 ? cut + 7 : cut * 2) {
		f = fopen("/tmp/ms_rh_snap3.bin", "wb");
		fwrite(data, 1, cut, f);
		fclose(f);
		assert_int_not_equal(ms_rh_snapshot_read(m, "/tmp/ms_rh_snap3.bin", &bad, &e), 0);
		assert_int_equal(e.status, 400);
	}
	free(data);
	ms_rh_snapshot_free(snap);
	ms_rh_machine_free(m);
}

static void test_vector_table_nowhere(void **s)
{
	uint8_t bin[64] = {0};
	struct ms_rh_opts opts = {.cpu = "cortex-m3"};
	struct ms_rh_machine *m;
	struct ms_image img;
	struct ms_err e;
	uint32_t sp = 0x20001000, pc = 0x7fff0001;

	memcpy(bin, &sp, 4);
	memcpy(bin + 4, &pc, 4);
	assert_int_equal(ms_image_parse(bin, sizeof(bin), 0, &img, &e), 0);
	assert_int_equal(ms_rh_machine_new(&opts, &m, &e), 0);
	assert_int_equal(ms_rh_machine_load(m, &img, &e), 0);
	assert_int_equal(ms_rh_machine_run(m, 1000), MS_RH_STOP_LOCKUP);
	assert_non_null(strstr(m->crash, "reset vector 0x7fff0001 points outside memory"));
	ms_image_free(&img);
	ms_rh_machine_free(m);
}

/* A reset vector without the Thumb bit: INVSTATE escalated to HardFault, whose handler runs. */
static void test_reset_vector_without_thumb_bit(void **s)
{
	uint8_t bin[72] = {0};
	struct ms_rh_opts opts = {.board = "mps2-an385", .no_infer = true}; /* RAM for the frame */
	struct ms_rh_machine *m;
	struct ms_image img;
	struct ms_err e;
	uint32_t sp = 0x20001000, reset = 0x40, hardfault = 0x45;

	memcpy(bin, &sp, 4);
	memcpy(bin + 4, &reset, 4);
	memcpy(bin + 12, &hardfault, 4);
	bin[0x44] = 0xfe; /* HardFault handler: b . */
	bin[0x45] = 0xe7;
	assert_int_equal(ms_image_parse(bin, sizeof(bin), 0, &img, &e), 0);
	assert_int_equal(ms_rh_machine_new(&opts, &m, &e), 0);
	assert_int_equal(ms_rh_machine_load(m, &img, &e), 0);
	if (ms_rh_machine_run(m, 1000) != MS_RH_STOP_LIMIT)
		fail_msg("stopped: %s", m->crash);
	assert_false(m->locked_up);
	assert_int_equal(ms__rh_pc(m) & ~1u, 0x44);
	assert_true(m->scs.cfsr & (1u << 17)); /* INVSTATE */
	assert_true(m->scs.hfsr & (1u << 30)); /* FORCED */
	ms_image_free(&img);
	ms_rh_machine_free(m);
}

static void test_runaway_stopped_by_limit(void **s)
{
	/* Vector table then "b ." at 0x40. */
	uint8_t bin[68] = {0};
	struct ms_rh_opts opts = {.cpu = "cortex-m0"};
	struct ms_rh_machine *m;
	struct ms_image img;
	struct ms_err e;
	uint32_t sp = 0x20001000, pc = 0x41;

	memcpy(bin, &sp, 4);
	memcpy(bin + 4, &pc, 4);
	bin[0x40] = 0xfe;
	bin[0x41] = 0xe7;
	assert_int_equal(ms_image_parse(bin, sizeof(bin), 0, &img, &e), 0);
	assert_int_equal(ms_rh_machine_new(&opts, &m, &e), 0);
	assert_int_equal(ms_rh_machine_load(m, &img, &e), 0);
	assert_int_equal(ms_rh_machine_run(m, 5000000), MS_RH_STOP_LIMIT);
	assert_true(m->icount >= 5000000 && m->icount < 5000010);
	ms_image_free(&img);
	ms_rh_machine_free(m);
}

static void test_hostile_images(void **s)
{
	struct ms_rh_opts opts = {.cpu = "cortex-m3"};
	struct ms_rh_machine *m;
	struct ms_image img;
	struct ms_err e;
	char path[1200];
	uint8_t *data;
	size_t n, cut;
	FILE *f;

	snprintf(path, sizeof(path), "%s/mps2-hello.elf", fwdir);
	f = fopen(path, "rb");
	assert_non_null(f);
	data = malloc(1 << 20);
	n = fread(data, 1, 1 << 20, f);
	fclose(f);
	/* Every truncation is either refused by the parser or loads something we can reset. */
	for (cut = 0; cut < n; cut += 97) {
		if (ms_image_parse(data, cut, 0, &img, &e) != 0)
			continue;
		assert_int_equal(ms_rh_machine_new(&opts, &m, &e), 0);
		if (ms_rh_machine_load(m, &img, &e) == 0)
			ms_rh_machine_run(m, 10000);
		ms_rh_machine_free(m);
		ms_image_free(&img);
	}
	/* A segment in the peripheral window is refused. */
	{
		static const char hex[] = ":0400000540000000B7\n:04000000010203049C\n"
		                          ":020000044000BA\n:0400000001020304F2\n:00000001FF\n";

		if (ms_image_parse((const uint8_t *)hex, strlen(hex), 0, &img, &e) == 0) {
			assert_int_equal(ms_rh_machine_new(&opts, &m, &e), 0);
			assert_int_not_equal(ms_rh_machine_load(m, &img, &e), 0);
			assert_non_null(strstr(e.message, "peripheral window"));
			ms_rh_machine_free(m);
			ms_image_free(&img);
		}
	}
	free(data);
}

static void test_board_parser_hostile(void **s)
{
	static const char *const bad[] = {
	    "",
	    "name: x\n",
	    "name: x\ncpu: cortex-m99\n",
	    "name: x\ncpu: cortex-m3\nirqs: 999\n",
	    "name: x\ncpu: cortex-m3\nmemory: [{name: a, base: 0x123, size: 0x1000}]\n",
	    "name: x\ncpu: cortex-m3\nmemory: [{name: a, base: 0xfffff000, size: 0x2000}]\n",
	    "name: x\ncpu: cortex-m3\nmemory: [{name: b, base: 0, alias: nope}]\n",
	    "name: x\ncpu: cortex-m3\ndevices: [{type: warp-drive, name: w, base: 0x40000000}]\n",
	    "name: x\ncpu: cortex-m3\nbogus: 1\n",
	    "name: x\ncpu: cortex-m3\ndevices: [{type: cmsdk-uart, name: u, base: 0x40000000, "
	    "irqs: [1,2,3,4,5]}]\n",
	    "name: &a x\ncpu: *a\n",
	    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]",
	    "name: x\ncpu: cortex-m3\nmemory: {a: 1}\n",
	    "name: x\n  cpu: : :\n",
	};
	struct ms_rh_board b;
	struct ms_err e;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms_err_clear(&e);
		assert_int_not_equal(ms_rh_board_parse(bad[i], strlen(bad[i]), "t", &b, &e), 0);
		assert_true(e.status == 400 || e.status == 413);
		assert_true(e.message[0] != 0);
	}
	assert_int_equal(ms_rh_board_load("mps2-an385", &b, &e), 0);
	assert_int_equal(b.n_dev, 5);
	assert_int_equal(ms_rh_board_load("stm32f103", &b, &e), 0);
	assert_string_equal(b.mem[1].alias, "flash");
	assert_int_not_equal(ms_rh_board_load("../etc/passwd", &b, &e), 0);
	assert_int_not_equal(ms_rh_board_load("no-such-board", &b, &e), 0);
	assert_int_equal(e.status, 404);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_board_parser_hostile),
	    cmocka_unit_test(test_hello_matches_qemu),
	    cmocka_unit_test(test_systick_matches_qemu),
	    cmocka_unit_test(test_tasks_match_qemu),
	    cmocka_unit_test(test_nested_matches_qemu),
	    cmocka_unit_test(test_fault_matches_qemu),
	    cmocka_unit_test(test_fpu_matches_qemu),
	    cmocka_unit_test(test_lazyfp_matches_qemu),
	    cmocka_unit_test(test_nocp_matches_qemu),
	    cmocka_unit_test(test_vector_faults_match_qemu),
	    cmocka_unit_test(test_vecttbl_hardfault),
	    cmocka_unit_test(test_m0plus_and_m0),
	    cmocka_unit_test(test_fp_on_m3_is_nocp),
	    cmocka_unit_test(test_snapshot_with_lazy_fp_pending),
	    cmocka_unit_test(test_sysresetreq),
	    cmocka_unit_test(test_echo_and_determinism),
	    cmocka_unit_test(test_snapshot_restore_twice),
	    cmocka_unit_test(test_snapshot_file_hostile),
	    cmocka_unit_test(test_vector_table_nowhere),
	    cmocka_unit_test(test_reset_vector_without_thumb_bit),
	    cmocka_unit_test(test_runaway_stopped_by_limit),
	    cmocka_unit_test(test_hostile_images),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
