/*
 * run: "machineserver run", the one-shot runner for CI pipelines — run a
 * firmware on the rehost engine (or a QEMU child), feed it input, watch its
 * console for an expected or a failure text, and exit with a verdict.
 *
 * Exit codes: 0 expected text seen (or, without --expect, the run reached
 * its limit without failure); 1 failure text seen or the firmware crashed;
 * 3 timeout or instruction limit before the expected text; 4 bad file,
 * bad option or another infrastructure error.
 *
 * On rehost, --timeout counts virtual seconds (instructions / cpu_hz), so
 * a verdict is the same on a loaded CI machine as on an idle one; a
 * firmware idle in WFI with no input left and nothing scheduled has
 * reached its end of time at once. External events (--events FILE,
 * --inject AT_US:JSON: GPIO levels and their interrupts, the daemon's
 * inject body plus a virtual time) are injected when the instruction
 * count reaches their time; a firmware asleep until then jumps there.
 *
 * Threads: the calling thread only (the machine's owner).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/image.h"
#include "core/log.h"
#include "core/text.h"
#include "infer/infer.h"
#include "rehost/coverage.h"
#include "rehost/gdb.h"
#include "rehost/machine.h"
#include "rehost/run.h"

#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_TIMEOUT 3
#define EXIT_INFRA 4

struct run_opts {
	const char *backend;
	const char *board;
	const char *cpu;
	const char *svd[16];
	size_t n_svd;
	const char *models;
	const char *input_file;
	char *input_text;
	size_t input_text_len;
	char *expect;
	size_t expect_len;
	char *fail;
	size_t fail_len;
	double timeout;
	uint64_t max_insns;
	uint64_t cpu_hz;
	const char *bb_out;
	const char *lcov_out;
	const char *mmio_log;
	const char *events;
	const char *inject[64];
	int n_inject;
	int gdb_port;
	bool no_infer;
	const char *firmware;
	uint64_t load_addr;
	bool has_load_addr;
};

/* Console text seen so far, for --expect / --fail-text. */
struct watch {
	char *buf;
	size_t len, cap;
	const struct run_opts *o;
	struct ms_rh_machine *m;
	int verdict; /* -1 undecided, EXIT_PASS or EXIT_FAIL */
};

static void usage(FILE *to)
{
	fprintf(
	    to,
	    "usage: machineserver run [options] FIRMWARE\n"
	    "\n"
	    "Runs FIRMWARE (ELF, Intel HEX, or raw binary with --load-addr) once and exits with\n"
	    "a verdict. Console output goes to standard output as it happens; diagnostics to\n"
	    "standard error.\n"
	    "\n"
	    "  --backend rehost|qemu   engine (default rehost)\n"
	    "  --board NAME            board file boards/NAME.yaml (e.g. mps2-an385)\n"
	    "  --cpu NAME              cortex-m0|m0plus|m3|m4|m7|m33 (m33 without TrustZone);\n"
	    "                          default: the board's, else the ELF's build attributes,\n"
	    "                          else cortex-m3 (no board: memory from the image)\n"
	    "  --cpu-hz N              CPU clock for virtual time (default: the board's, or 25 "
	    "MHz)\n"
	    "  --svd FILE              SVD file(s) for peripheral inference (repeatable)\n"
	    "  --models FILE           device map from an earlier run (no inference needed)\n"
	    "  --no-infer              do not infer peripherals (unknown accesses fault)\n"
	    "  --input FILE            bytes for the console UART's receive side\n"
	    "  --input-text TEXT       same, from TEXT (C escapes: \\r \\n \\t \\\\ \\xNN)\n"
	    "  --expect TEXT           pass when TEXT appears on the console (C escapes)\n"
	    "  --fail-text TEXT        fail when TEXT appears on the console (C escapes)\n"
	    "  --timeout SECONDS       limit (virtual seconds on rehost, wall on qemu; default "
	    "10)\n"
	    "  --max-insns N           instruction limit (rehost)\n"
	    "  --bb-out FILE           executed basic blocks, one 0x%%08x per line, "
	    "first-execution order\n"
	    "  --lcov-out FILE         LCOV line coverage from the ELF's DWARF (genhtml makes "
	    "HTML)\n"
	    "  --mmio-log FILE         every peripheral access and inference decision, JSON lines\n"
	    "  --events FILE           external events at points of virtual time (rehost), one\n"
	    "                          JSON object per line: the daemon's inject body plus\n"
	    "                          \"at_us\" (virtual microseconds), e.g.\n"
	    "                          {\"at_us\":1000,\"kind\":\"gpio\",\"addr\":\"0x40010808\",\n"
	    "                           \"mask\":1,\"value\":1,\"irq\":6}\n"
	    "                          sets pin levels the firmware reads and raises the\n"
	    "                          interrupt; blank and '#' lines are skipped; a bad line\n"
	    "                          or a refused event is an error naming FILE:LINE (exit 4)\n"
	    "  --inject AT_US:JSON     one such event on the command line (repeatable), e.g.\n"
	    "                          "
	    "1000:{\"kind\":\"gpio\",\"addr\":\"0x40010808\",\"mask\":1,\n"
	    "                          \"value\":1,\"irq\":6}; merged with --events in time order\n"
	    "  --gdb PORT              wait for gdb on 127.0.0.1:PORT before running\n"
	    "  --load-addr ADDR        where a raw binary goes (default 0)\n"
	    "\n"
	    "exit codes: 0 expected text seen (without --expect: limit reached, no failure)\n"
	    "            1 failure text seen, or the firmware crashed (lockup, unhandled fault)\n"
	    "            3 timeout or instruction limit before the expected text\n"
	    "            4 infrastructure error (bad file, bad option)\n");
}

/* Decode C escapes into a new NUL-terminated buffer (see ms_unescape). NULL on a bad escape. */
char *ms_run_unescape(const char *s, size_t *out_len)
{
	char err[160];
	uint8_t *r = malloc(strlen(s) + 1);
	long n;

	if (r == NULL)
		return NULL;
	n = ms_unescape(s, r, err, sizeof(err));
	if (n < 0) {
		free(r);
		return NULL;
	}
	r[n] = 0;
	*out_len = (size_t)n;
	return (char *)r;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == 0 || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != 0)
		return false;
	*out = v;
	return true;
}

static int parse_opts(int argc, char **argv, struct run_opts *o)
{
	enum {
		O_BACKEND = 256,
		O_BOARD,
		O_CPU,
		O_SVD,
		O_INPUT,
		O_INPUT_TEXT,
		O_EXPECT,
		O_FAIL,
		O_TIMEOUT,
		O_MAX_INSNS,
		O_BB,
		O_LCOV,
		O_MMIO,
		O_GDB,
		O_HELP,
		O_MODELS,
		O_NO_INFER,
		O_CPU_HZ,
		O_LOAD_ADDR,
		O_EVENTS,
		O_INJECT,
	};
	static const struct option lo[] = {
	    {"backend", required_argument, 0, O_BACKEND},
	    {"board", required_argument, 0, O_BOARD},
	    {"cpu", required_argument, 0, O_CPU},
	    {"cpu-hz", required_argument, 0, O_CPU_HZ},
	    {"svd", required_argument, 0, O_SVD},
	    {"models", required_argument, 0, O_MODELS},
	    {"no-infer", no_argument, 0, O_NO_INFER},
	    {"input", required_argument, 0, O_INPUT},
	    {"input-text", required_argument, 0, O_INPUT_TEXT},
	    {"expect", required_argument, 0, O_EXPECT},
	    {"fail-text", required_argument, 0, O_FAIL},
	    {"timeout", required_argument, 0, O_TIMEOUT},
	    {"max-insns", required_argument, 0, O_MAX_INSNS},
	    {"bb-out", required_argument, 0, O_BB},
	    {"lcov-out", required_argument, 0, O_LCOV},
	    {"mmio-log", required_argument, 0, O_MMIO},
	    {"gdb", required_argument, 0, O_GDB},
	    {"load-addr", required_argument, 0, O_LOAD_ADDR},
	    {"events", required_argument, 0, O_EVENTS},
	    {"inject", required_argument, 0, O_INJECT},
	    {"help", no_argument, 0, O_HELP},
	    {0, 0, 0, 0},
	};
	uint64_t u;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->backend = "rehost";
	o->timeout = 10;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_BACKEND:
			if (strcmp(optarg, "rehost") != 0 && strcmp(optarg, "qemu") != 0) {
				fprintf(stderr, "run: unknown backend %s (rehost or qemu)\n",
				        optarg);
				return -1;
			}
			o->backend = optarg;
			break;
		case O_BOARD:
			o->board = optarg;
			break;
		case O_CPU:
			o->cpu = optarg;
			break;
		case O_CPU_HZ:
			if (!parse_u64(optarg, &o->cpu_hz) || o->cpu_hz < 1000 ||
			    o->cpu_hz > 10000000000ull) {
				fprintf(stderr, "run: bad --cpu-hz %s\n", optarg);
				return -1;
			}
			break;
		case O_SVD:
			if (o->n_svd >= 16) {
				fprintf(stderr, "run: at most 16 --svd files\n");
				return -1;
			}
			o->svd[o->n_svd++] = optarg;
			break;
		case O_MODELS:
			o->models = optarg;
			break;
		case O_NO_INFER:
			o->no_infer = true;
			break;
		case O_INPUT:
			o->input_file = optarg;
			break;
		case O_INPUT_TEXT:
			free(o->input_text);
			o->input_text = ms_run_unescape(optarg, &o->input_text_len);
			if (o->input_text == NULL) {
				fprintf(stderr, "run: bad escape in --input-text\n");
				return -1;
			}
			break;
		case O_EXPECT:
			free(o->expect);
			o->expect = ms_run_unescape(optarg, &o->expect_len);
			if (o->expect == NULL || o->expect_len == 0) {
				fprintf(stderr, "run: bad or empty --expect\n");
				return -1;
			}
			break;
		case O_FAIL:
			free(o->fail);
			o->fail = ms_run_unescape(optarg, &o->fail_len);
			if (o->fail == NULL || o->fail_len == 0) {
				fprintf(stderr, "run: bad or empty --fail-text\n");
				return -1;
			}
			break;
		case O_TIMEOUT:
			errno = 0;
			o->timeout = strtod(optarg, &end);
			if (errno != 0 || *end != 0 || !(o->timeout > 0) || o->timeout > 1e6) {
				fprintf(stderr, "run: bad --timeout %s (seconds, > 0)\n", optarg);
				return -1;
			}
			break;
		case O_MAX_INSNS:
			if (!parse_u64(optarg, &o->max_insns) || o->max_insns == 0) {
				fprintf(stderr, "run: bad --max-insns %s\n", optarg);
				return -1;
			}
			break;
		case O_BB:
			o->bb_out = optarg;
			break;
		case O_LCOV:
			o->lcov_out = optarg;
			break;
		case O_MMIO:
			o->mmio_log = optarg;
			break;
		case O_EVENTS:
			o->events = optarg;
			break;
		case O_INJECT:
			if (o->n_inject >= 64) {
				fprintf(stderr, "run: at most 64 --inject options\n");
				return -1;
			}
			o->inject[o->n_inject++] = optarg;
			break;
		case O_GDB:
			if (!parse_u64(optarg, &u) || u == 0 || u > 65535) {
				fprintf(stderr, "run: bad --gdb port %s\n", optarg);
				return -1;
			}
			o->gdb_port = (int)u;
			break;
		case O_LOAD_ADDR:
			if (!parse_u64(optarg, &o->load_addr) || o->load_addr > 0xffffffffull) {
				fprintf(stderr, "run: bad --load-addr %s\n", optarg);
				return -1;
			}
			o->has_load_addr = true;
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			return 1;
		default:
			fprintf(stderr, "run: unknown or incomplete option %s\n", argv[optind - 1]);
			return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "run: exactly one FIRMWARE file expected (see --help)\n");
		return -1;
	}
	o->firmware = argv[optind];
	if (o->board != NULL && o->cpu != NULL) {
		fprintf(stderr, "run: give --board or --cpu, not both\n");
		return -1;
	}
	if ((o->events != NULL || o->n_inject > 0) && o->no_infer) {
		fprintf(stderr,
		        "run: --events and --inject need peripheral inference (drop --no-infer)\n");
		return -1;
	}
	return 0;
}

static bool read_file(const char *path, char **out, size_t *len, size_t max)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (f == NULL)
		return false;
	for (;;) {
		size_t r;

		if (n == cap) {
			char *nb;

			cap = cap ? cap * 2 : 4096;
			if (cap > max + 1)
				cap = max + 1;
			nb = realloc(buf, cap);
			if (nb == NULL || n == cap) {
				free(nb ? nb : buf);
				fclose(f);
				return false;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
		if (n > max) {
			free(buf);
			fclose(f);
			return false;
		}
	}
	fclose(f);
	*out = buf;
	*len = n;
	return true;
}

/* ---- --events ---- */

void ms_run_events_free(struct ms_run_events *evs)
{
	for (size_t i = 0; i < evs->n; i++)
		json_decref(evs->v[i].ev);
	free(evs->v);
	evs->v = NULL;
	evs->n = 0;
}

/*
 * Check one event object against what ms_infer_inject accepts, so that a
 * mistake is reported with its line before the run starts rather than in
 * the middle of it. Unknown keys are refused: a misspelt "irq" would
 * otherwise silently inject a level without its interrupt.
 */
static bool event_check(json_t *o, uint64_t *at_us, char *why, size_t cap)
{
	static const char *const keys[] = {"at_us", "kind", "addr", "mask", "value", "irq"};
	const char *k;
	json_t *v;
	uint64_t u;

	if (!json_is_object(o)) {
		snprintf(why, cap, "not a JSON object");
		return false;
	}
	json_object_foreach(o, k, v)
	{
		size_t i;

		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			snprintf(
			    why, cap,
			    "unknown key \"%.40s\" (known: at_us, kind, addr, mask, value, irq)",
			    k);
			return false;
		}
	}
	if (!ms_json_uint(json_object_get(o, "at_us"), MS_RUN_EVENT_AT_US_MAX, at_us)) {
		snprintf(why, cap,
		         "\"at_us\" missing or not a whole number of microseconds <= %llu",
		         (unsigned long long)MS_RUN_EVENT_AT_US_MAX);
		return false;
	}
	k = json_string_value(json_object_get(o, "kind"));
	if (k == NULL || strcmp(k, "gpio") != 0) {
		snprintf(why, cap, "\"kind\" must be \"gpio\" (the only event kind)");
		return false;
	}
	if (!ms_json_uint(json_object_get(o, "addr"), UINT32_MAX, &u)) {
		snprintf(why, cap, "\"addr\" missing or not a 32-bit address");
		return false;
	}
	if (!ms_json_uint(json_object_get(o, "mask"), UINT32_MAX, &u) || u == 0) {
		snprintf(why, cap, "\"mask\" missing, 0 or not a 32-bit number");
		return false;
	}
	if (!ms_json_uint(json_object_get(o, "value"), UINT32_MAX, &u)) {
		snprintf(why, cap, "\"value\" missing or not a 32-bit number");
		return false;
	}
	v = json_object_get(o, "irq");
	if (v != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 239)) {
		snprintf(why, cap, "\"irq\" must be an interrupt number 0..239");
		return false;
	}
	return true;
}

int ms_run_events_parse(const char *text, size_t len, const char *name, struct ms_run_events *out,
                        char *err, size_t cap)
{
	size_t pos = 0, cap_ev = 0;
	int line = 0;
	char why[160];

	out->v = NULL;
	out->n = 0;
	if (memchr(text, 0, len) != NULL) {
		/* Name the line that holds the NUL. */
		line = 1;
		for (const char *c = text; *c != 0; c++)
			line += *c == '\n';
		snprintf(err, cap, "%s:%d: NUL byte (not JSON lines text)", name, line);
		return -1;
	}
	while (pos < len) {
		const char *l = text + pos;
		const char *nl = memchr(l, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - l) : len - pos;
		size_t a = 0;
		json_error_t je;
		json_t *o;
		uint64_t at;

		line++;
		pos += n + (nl != NULL);
		if (n > MS_RUN_EVENT_LINE_MAX) {
			snprintf(err, cap, "%s:%d: line longer than %d bytes", name, line,
			         MS_RUN_EVENT_LINE_MAX);
			goto fail;
		}
		while (a < n && (l[a] == ' ' || l[a] == '\t' || l[a] == '\r'))
			a++;
		if (a == n || l[a] == '#')
			continue;
		o = json_loadb(l, n, JSON_REJECT_DUPLICATES, &je);
		if (o == NULL) {
			snprintf(err, cap, "%s:%d: bad JSON at column %d: %s%s", name, line,
			         je.column, je.text, nl == NULL ? " (truncated last line?)" : "");
			goto fail;
		}
		if (!event_check(o, &at, why, sizeof(why))) {
			json_decref(o);
			snprintf(err, cap, "%s:%d: %s", name, line, why);
			goto fail;
		}
		if (out->n > 0 && at < out->v[out->n - 1].at_us) {
			json_decref(o);
			snprintf(err, cap,
			         "%s:%d: events must be in time order (at_us %llu after %llu on "
			         "line %d)",
			         name, line, (unsigned long long)at,
			         (unsigned long long)out->v[out->n - 1].at_us,
			         out->v[out->n - 1].line);
			goto fail;
		}
		if (out->n == MS_RUN_EVENTS_MAX) {
			json_decref(o);
			snprintf(err, cap, "%s:%d: more than %d events", name, line,
			         MS_RUN_EVENTS_MAX);
			goto fail;
		}
		if (out->n == cap_ev) {
			size_t nc = cap_ev ? cap_ev * 2 : 16;
			struct ms_run_event *nv = realloc(out->v, nc * sizeof(*nv));

			if (nv == NULL) {
				json_decref(o);
				snprintf(err, cap, "%s:%d: out of memory", name, line);
				goto fail;
			}
			out->v = nv;
			cap_ev = nc;
		}
		json_object_del(o, "at_us");
		out->v[out->n].at_us = at;
		out->v[out->n].ev = o;
		out->v[out->n].line = line;
		out->v[out->n].spec = 0;
		out->n++;
	}
	return 0;
fail:
	ms_run_events_free(out);
	return -1;
}

int ms_run_events_add_spec(struct ms_run_events *evs, const char *spec, int index, char *err,
                           size_t cap)
{
	const char *colon = strchr(spec, ':');
	char why[160], num[24];
	size_t nlen = colon != NULL ? (size_t)(colon - spec) : 0;
	uint64_t at;
	json_error_t je;
	json_t *o;
	size_t i;

	if (colon == NULL || nlen == 0 || nlen >= sizeof(num) ||
	    strspn(spec, "0123456789") != nlen) {
		snprintf(err, cap,
		         "--inject #%d: expected AT_US:JSON (e.g. 1000:{\"kind\":\"gpio\",...})",
		         index);
		return -1;
	}
	memcpy(num, spec, nlen);
	num[nlen] = 0;
	if (!parse_u64(num, &at) || at > MS_RUN_EVENT_AT_US_MAX) {
		snprintf(err, cap, "--inject #%d: time %s is over %llu us", index, num,
		         (unsigned long long)MS_RUN_EVENT_AT_US_MAX);
		return -1;
	}
	if (strlen(colon + 1) > MS_RUN_EVENT_LINE_MAX) {
		snprintf(err, cap, "--inject #%d: longer than %d bytes", index,
		         MS_RUN_EVENT_LINE_MAX);
		return -1;
	}
	o = json_loads(colon + 1, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL) {
		snprintf(err, cap, "--inject #%d: bad JSON at column %d: %s", index, je.column,
		         je.text);
		return -1;
	}
	if (json_is_object(o) && json_object_get(o, "at_us") != NULL) {
		json_decref(o);
		snprintf(err, cap, "--inject #%d: the time goes before the colon, not in \"at_us\"",
		         index);
		return -1;
	}
	if (json_is_object(o))
		json_object_set_new(o, "at_us", json_integer((json_int_t)at));
	if (!event_check(o, &at, why, sizeof(why))) {
		json_decref(o);
		snprintf(err, cap, "--inject #%d: %s", index, why);
		return -1;
	}
	json_object_del(o, "at_us");
	if (evs->n >= MS_RUN_EVENTS_MAX) {
		json_decref(o);
		snprintf(err, cap, "--inject #%d: more than %d events", index, MS_RUN_EVENTS_MAX);
		return -1;
	}
	{
		struct ms_run_event *nv = realloc(evs->v, (evs->n + 1) * sizeof(*nv));

		if (nv == NULL) {
			json_decref(o);
			snprintf(err, cap, "--inject #%d: out of memory", index);
			return -1;
		}
		evs->v = nv;
	}
	/* After every event due no later: file lines and earlier --inject options first. */
	for (i = evs->n; i > 0 && evs->v[i - 1].at_us > at; i--)
		evs->v[i] = evs->v[i - 1];
	evs->v[i].at_us = at;
	evs->v[i].ev = o;
	evs->v[i].line = 0;
	evs->v[i].spec = index;
	evs->n++;
	return 0;
}

int ms_run_events_load(const char *path, struct ms_run_events *out, char *err, size_t cap)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	out->v = NULL;
	out->n = 0;
	if (!read_file(path, &buf, &len, 16u << 20)) {
		snprintf(err, cap, "%s: cannot read (missing, unreadable or over 16 MiB)", path);
		return -1;
	}
	rc = ms_run_events_parse(buf, len, path, out, err, cap);
	free(buf);
	return rc;
}

/* ---- watching the console ---- */

static bool contains_new(struct watch *w, const char *pat, size_t plen, size_t before)
{
	size_t from = before >= plen ? before - plen + 1 : 0;

	return plen > 0 && w->len >= plen &&
	    memmem(w->buf + from, w->len - from, pat, plen) != NULL;
}

static void watch_console(void *ud, const uint8_t *b, size_t n)
{
	struct watch *w = ud;
	size_t before = w->len;

	fwrite(b, 1, n, stdout);
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		char *nb;

		while (cap < w->len + n)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (nb == NULL)
			return;
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, b, n);
	w->len += n;
	if (w->verdict >= 0)
		return;
	if (w->o->fail != NULL && contains_new(w, w->o->fail, w->o->fail_len, before))
		w->verdict = EXIT_FAIL;
	else if (w->o->expect != NULL && contains_new(w, w->o->expect, w->o->expect_len, before))
		w->verdict = EXIT_PASS;
	if (w->verdict >= 0 && w->m != NULL)
		ms_rh_machine_request_stop(w->m);
}

/*
 * Inference decisions go to --mmio-log (the engine writes them); only an
 * injected event whose interrupt was held back is worth a line here, since
 * the firmware will not react to it.
 */
static void watch_event(void *ud, const char *type, json_t *data)
{
	(void)ud;
	if (strcmp(type, "infer.inject") == 0 && json_is_false(json_object_get(data, "raised")) &&
	    json_integer_value(json_object_get(data, "irq")) >= 0)
		fprintf(stderr, "run: event at %s: interrupt %lld not raised: %s\n",
		        json_string_value(json_object_get(data, "addr")) ?: "?",
		        (long long)json_integer_value(json_object_get(data, "irq")),
		        json_string_value(json_object_get(data, "reason")) ?: "held back");
}

/* Instruction count at which an event is due: at_us of virtual time at cpu_hz. */
static uint64_t event_icount(const struct ms_run_event *ev, uint64_t cpu_hz)
{
	unsigned __int128 n = (unsigned __int128)ev->at_us * cpu_hz / 1000000u;

	return n > UINT64_MAX ? UINT64_MAX : (uint64_t)n;
}

/*
 * Inject every event that is due. A refused event (an address outside
 * the peripheral windows, an interrupt the firmware never enabled) is an
 * error of the events file for this firmware: it is named by its line.
 */
static int inject_due(const struct run_opts *o, struct ms_rh_machine *m,
                      const struct ms_run_events *evs, size_t *next)
{
	while (*next < evs->n && m->icount >= event_icount(&evs->v[*next], m->cpu_hz)) {
		const struct ms_run_event *ev = &evs->v[*next];
		struct ms_err e;

		char where[600];

		if (ev->spec > 0)
			snprintf(where, sizeof(where), "--inject #%d", ev->spec);
		else
			snprintf(where, sizeof(where), "%s:%d", o->events, ev->line);
		ms_err_clear(&e);
		if (ms_infer_inject(m->inf, ev->ev, &e) != 0) {
			fprintf(stderr, "run: %s: event at %" PRIu64 " us refused: %s\n", where,
			        ev->at_us, e.message);
			return -1;
		}
		fprintf(stderr,
		        "run: %s: event injected at %" PRIu64 " us (%" PRIu64 " instructions)\n",
		        where, ev->at_us, m->icount);
		(*next)++;
	}
	return 0;
}

/* ---- rehost ---- */

/* Serve gdb while the guest is halted; a stop request meanwhile is ours to drop. */
static int serve_gdb(struct ms_rh_machine *m)
{
	int r;

	while ((r = ms_rh_gdb_serve(m->gdb, -1)) < 0)
		__atomic_store_n(&m->stop_request, 0, __ATOMIC_SEQ_CST);
	return r;
}

static int run_rehost(const struct run_opts *o)
{
	struct ms_rh_opts mo = {0};
	struct ms_rh_machine *m = NULL;
	struct watch w = {.o = o, .verdict = -1};
	struct ms_image img;
	struct ms_err e;
	FILE *mmio = NULL;
	uint64_t limit, budget;
	int rc = EXIT_INFRA;
	bool have_img = false;
	char *in = NULL;
	size_t in_len = 0, next_ev = 0;
	struct ms_run_events evs = {0};
	char everr[512];

	ms_err_clear(&e);
	if (o->events != NULL && ms_run_events_load(o->events, &evs, everr, sizeof(everr)) != 0) {
		fprintf(stderr, "run: %s\n", everr);
		return EXIT_INFRA;
	}
	for (int i = 0; i < o->n_inject; i++) {
		if (ms_run_events_add_spec(&evs, o->inject[i], i + 1, everr, sizeof(everr)) != 0) {
			fprintf(stderr, "run: %s\n", everr);
			ms_run_events_free(&evs);
			return EXIT_INFRA;
		}
	}
	if (ms_image_load_file(o->firmware, o->load_addr, 256u << 20, &img, &e) != 0) {
		fprintf(stderr, "run: %s: %s\n", o->firmware, e.message);
		return EXIT_INFRA;
	}
	have_img = true;
	if (img.format == MS_IMAGE_BIN && !o->has_load_addr)
		fprintf(stderr, "run: %s is a raw binary: loading it at 0x00000000\n", o->firmware);
	if (o->mmio_log != NULL) {
		mmio = fopen(o->mmio_log, "w");
		if (mmio == NULL) {
			fprintf(stderr, "run: cannot write %s: %s\n", o->mmio_log, strerror(errno));
			goto out;
		}
	}
	if (o->input_file != NULL && !read_file(o->input_file, &in, &in_len, 64u << 20)) {
		fprintf(stderr, "run: cannot read input file %s\n", o->input_file);
		goto out;
	}
	mo.board = o->board;
	mo.cpu = o->cpu;
	if (o->cpu == NULL && o->board == NULL && img.cpu[0] != 0) {
		/* No board, no --cpu: the core the toolchain built for, from the ELF. */
		mo.cpu = img.cpu;
		fprintf(stderr, "run: cpu %s (from the ELF's build attributes)\n", img.cpu);
	}
	mo.cpu_hz = o->cpu_hz;
	mo.no_infer = o->no_infer;
	mo.svd_paths = o->svd;
	mo.n_svd = o->n_svd;
	mo.models_path = o->models;
	mo.console = watch_console;
	mo.event = watch_event;
	mo.ud = &w;
	mo.mmio_log = mmio;
	if (ms_rh_machine_new(&mo, &m, &e) != 0) {
		fprintf(stderr, "run: %s\n", e.message);
		goto out;
	}
	w.m = m;
	if (o->bb_out != NULL || o->lcov_out != NULL) {
		struct ms_rh_cov *cov = ms_rh_cov_new();

		if (cov == NULL) {
			fprintf(stderr, "run: out of memory\n");
			goto out;
		}
		ms_rh_machine_cov_attach(m, cov);
	}
	if (ms_rh_machine_load(m, &img, &e) != 0) {
		fprintf(stderr, "run: %s: %s\n", o->firmware, e.message);
		goto out;
	}
	if (in != NULL)
		ms_rh_machine_input_push(m, in, in_len);
	if (o->input_text != NULL)
		ms_rh_machine_input_push(m, o->input_text, o->input_text_len);
	if (o->gdb_port != 0) {
		if (ms_rh_gdb_new(m, o->gdb_port, &m->gdb, &e) != 0) {
			fprintf(stderr, "run: %s\n", e.message);
			goto out;
		}
		fprintf(stderr, "run: waiting for gdb on 127.0.0.1:%d\n", o->gdb_port);
		if (serve_gdb(m) == 1) {
			fprintf(stderr, "run: killed by gdb\n");
			rc = EXIT_FAIL;
			goto report;
		}
	}
	limit = (uint64_t)(o->timeout * (double)m->cpu_hz);
	if (o->max_insns != 0 && o->max_insns < limit)
		limit = o->max_insns;
	if (evs.n > 0 && m->inf == NULL) {
		fprintf(stderr, "run: --events needs peripheral inference, which is off\n");
		goto report;
	}
	for (;;) {
		enum ms_rh_stop st;

		if (inject_due(o, m, &evs, &next_ev) != 0) {
			rc = EXIT_INFRA;
			break;
		}
		if (m->icount >= limit) {
			rc = o->expect != NULL ? EXIT_TIMEOUT : EXIT_PASS;
			fprintf(stderr,
			        "run: %s reached (%" PRIu64 " instructions, %.6f virtual s)\n",
			        o->max_insns != 0 && limit == o->max_insns ? "instruction limit"
			                                                   : "timeout",
			        m->icount, (double)ms_rh_machine_now_ns(m) / 1e9);
			break;
		}
		budget = limit - m->icount;
		/* Stop at the next event's time, so that it is injected on time. */
		if (next_ev < evs.n &&
		    event_icount(&evs.v[next_ev], m->cpu_hz) - m->icount < budget)
			budget = event_icount(&evs.v[next_ev], m->cpu_hz) - m->icount;
		if (m->gdb != NULL && budget > 1000000)
			budget = 1000000;
		st = ms_rh_machine_run(m, budget);
		fflush(stdout);
		if (w.verdict >= 0) {
			rc = w.verdict;
			fprintf(stderr,
			        "run: %s text seen after %" PRIu64
			        " instructions (%.6f virtual s)\n",
			        rc == EXIT_FAIL ? "failure" : "expected", m->icount,
			        (double)ms_rh_machine_now_ns(m) / 1e9);
			break;
		}
		if (st == MS_RH_STOP_LOCKUP || st == MS_RH_STOP_HOST_ERROR) {
			fprintf(stderr, "run: firmware crashed: %s\n", m->crash);
			rc = EXIT_FAIL;
			break;
		}
		if (st == MS_RH_STOP_IDLE) {
			if (m->gdb != NULL && ms_rh_gdb_attached(m->gdb)) {
				if (ms_rh_gdb_poll(m->gdb)) {
					ms_rh_gdb_note_stop(m->gdb, 2, NULL);
					if (serve_gdb(m) == 1)
						break;
				}
				usleep(1000);
				continue;
			}
			/* Asleep until the next external event: its time comes at once. */
			if (next_ev < evs.n && event_icount(&evs.v[next_ev], m->cpu_hz) < limit) {
				m->icount = event_icount(&evs.v[next_ev], m->cpu_hz);
				continue;
			}
			/* Asleep with no input left and nothing scheduled: time runs out. */
			fprintf(stderr,
			        "run: firmware idle with no input left and nothing scheduled\n");
			m->icount = limit;
			continue;
		}
		if (m->gdb != NULL) {
			if (st == MS_RH_STOP_BREAK || ms_rh_gdb_poll(m->gdb)) {
				if (st != MS_RH_STOP_BREAK)
					ms_rh_gdb_note_stop(m->gdb, 2, NULL);
				if (serve_gdb(m) == 1) {
					fprintf(stderr, "run: killed by gdb\n");
					rc = EXIT_FAIL;
					goto report;
				}
			}
		}
	}
report:
	if (m->gdb != NULL)
		ms_rh_gdb_exited(m->gdb, rc);
	if (m->cov != NULL && o->bb_out != NULL && ms_rh_cov_write_bb(m->cov, o->bb_out, &e) != 0) {
		fprintf(stderr, "run: %s\n", e.message);
		rc = EXIT_INFRA;
	}
	if (m->cov != NULL && o->lcov_out != NULL &&
	    ms_rh_cov_write_lcov(m->cov, o->firmware, o->lcov_out, &e) != 0) {
		fprintf(stderr, "run: %s\n", e.message);
		rc = EXIT_INFRA;
	}
out:
	fflush(stdout);
	ms_rh_machine_free(m);
	if (mmio != NULL)
		fclose(mmio);
	if (have_img)
		ms_image_free(&img);
	free(in);
	free(w.buf);
	ms_run_events_free(&evs);
	return rc;
}

/* ---- qemu ---- */

static int run_qemu(const struct run_opts *o)
{
	struct watch w = {.o = o, .verdict = -1};
	const char *machine = o->board != NULL ? o->board : "mps2-an385";
	char gdbarg[32];
	const char *argv[20];
	int in_pipe[2], out_pipe[2], argc = 0, status, rc = EXIT_INFRA;
	struct timespec t0, t1;
	char *in = NULL;
	size_t in_len = 0, in_off = 0;
	pid_t pid;

	if (o->bb_out || o->lcov_out || o->mmio_log || o->max_insns || o->n_svd || o->models ||
	    o->events || o->n_inject) {
		fprintf(stderr,
		        "run: --bb-out, --lcov-out, --mmio-log, --max-insns, --svd, --models, "
		        "--events and --inject need --backend rehost\n");
		return EXIT_INFRA;
	}
	if (o->cpu != NULL && o->board == NULL) {
		fprintf(stderr, "run: --backend qemu needs --board (a QEMU machine name)\n");
		return EXIT_INFRA;
	}
	if (access(o->firmware, R_OK) != 0) {
		fprintf(stderr, "run: cannot read %s\n", o->firmware);
		return EXIT_INFRA;
	}
	if (o->input_file != NULL && !read_file(o->input_file, &in, &in_len, 64u << 20)) {
		fprintf(stderr, "run: cannot read input file %s\n", o->input_file);
		return EXIT_INFRA;
	}
	if (o->input_text != NULL) {
		char *nb = realloc(in, in_len + o->input_text_len + 1);

		if (nb == NULL) {
			free(in);
			return EXIT_INFRA;
		}
		in = nb;
		memcpy(in + in_len, o->input_text, o->input_text_len);
		in_len += o->input_text_len;
	}
	argv[argc++] = "qemu-system-arm";
	argv[argc++] = "-M";
	argv[argc++] = machine;
	argv[argc++] = "-nographic";
	argv[argc++] = "-monitor";
	argv[argc++] = "none";
	argv[argc++] = "-serial";
	argv[argc++] = "stdio";
	argv[argc++] = "-kernel";
	argv[argc++] = o->firmware;
	if (o->gdb_port) {
		snprintf(gdbarg, sizeof(gdbarg), "tcp:127.0.0.1:%d", o->gdb_port);
		argv[argc++] = "-gdb";
		argv[argc++] = gdbarg;
		argv[argc++] = "-S";
	}
	argv[argc] = NULL;
	if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0) {
		free(in);
		return EXIT_INFRA;
	}
	pid = fork();
	if (pid < 0) {
		free(in);
		return EXIT_INFRA;
	}
	if (pid == 0) {
		dup2(in_pipe[0], 0);
		dup2(out_pipe[1], 1);
		close(in_pipe[1]);
		close(out_pipe[0]);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "run: cannot start qemu-system-arm: %s\n", strerror(errno));
		_exit(127);
	}
	close(in_pipe[0]);
	close(out_pipe[1]);
	fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p[2] = {{.fd = out_pipe[0], .events = POLLIN},
		                      {.fd = in_pipe[1], .events = POLLOUT}};
		double el;
		int np = in_off < in_len ? 2 : 1;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (el >= o->timeout) {
			rc = o->expect != NULL ? EXIT_TIMEOUT : EXIT_PASS;
			fprintf(stderr, "run: timeout reached (%.1f s)\n", o->timeout);
			break;
		}
		if (poll(p, (nfds_t)np, 50) < 0 && errno != EINTR)
			break;
		if (np == 2 && (p[1].revents & POLLOUT)) {
			ssize_t k = write(in_pipe[1], in + in_off, in_len - in_off);

			if (k > 0)
				in_off += (size_t)k;
		}
		if (p[0].revents & (POLLIN | POLLHUP)) {
			char buf[4096];
			ssize_t k = read(out_pipe[0], buf, sizeof(buf));

			if (k <= 0) {
				fprintf(stderr, "run: qemu exited\n");
				rc = o->expect != NULL ? EXIT_FAIL : EXIT_PASS;
				break;
			}
			watch_console(&w, (const uint8_t *)buf, (size_t)k);
			fflush(stdout);
			if (w.verdict >= 0) {
				rc = w.verdict;
				break;
			}
		}
	}
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	close(in_pipe[1]);
	close(out_pipe[0]);
	free(in);
	free(w.buf);
	return rc;
}

int ms_run_main(int argc, char **argv)
{
	struct run_opts o;
	int rc = parse_opts(argc, argv, &o);

	if (rc != 0) {
		if (rc < 0)
			fprintf(stderr, "run: see machineserver run --help\n");
		free(o.input_text);
		free(o.expect);
		free(o.fail);
		return rc > 0 ? 0 : EXIT_INFRA;
	}
	if (strcmp(o.backend, "qemu") == 0)
		rc = run_qemu(&o);
	else
		rc = run_rehost(&o);
	free(o.input_text);
	free(o.expect);
	free(o.fail);
	return rc;
}
