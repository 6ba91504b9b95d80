/*
 * gdb: GDB Remote Serial Protocol server for a rehost machine (gdb.h).
 *
 * Breakpoints are Unicorn code hooks on single addresses (cheap: only
 * those addresses are instrumented); a single step is a temporary code
 * hook over all code that stops at the second instruction it sees;
 * watchpoints are memory hooks on their ranges. Hooks are added and
 * removed only while the guest is halted, and the translation cache is
 * flushed so existing blocks pick them up.
 *
 * Threads: the machine's owner thread only (see gdb.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/text.h"
#include "rehost/gdb.h"
#include "rehost/machine.h"

#define MAX_BP 64
#define MAX_WP 16
#define PKT_MAX 16384

struct bp {
	uint32_t addr;
	uc_hook h;
	bool used;
};

struct wp {
	uint32_t addr, len;
	int type; /* 2 write, 3 read, 4 access */
	uc_hook h;
	bool used;
};

struct ms_rh_gdb {
	struct ms_rh_machine *m;
	int lfd, cfd;
	int port;
	bool noack;
	bool resumed; /* gdb waits for a stop reply */
	struct bp bps[MAX_BP];
	struct wp wps[MAX_WP];
	uc_hook step_hook;
	bool stepping;
	int step_seen;
	uint32_t skip_addr;
	bool skip;
	/* Why we stopped, for the stop reply. */
	int stop_sig;
	char stop_why[48];
	char inbuf[PKT_MAX];
	char pkt[PKT_MAX];
	size_t inlen;
};

static const char target_xml_head[] =
    "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
    "<target version=\"1.0\"><architecture>arm</architecture>"
    "<feature name=\"org.gnu.gdb.arm.m-profile\">"
    "<reg name=\"r0\" bitsize=\"32\" regnum=\"0\"/><reg name=\"r1\" bitsize=\"32\"/>"
    "<reg name=\"r2\" bitsize=\"32\"/><reg name=\"r3\" bitsize=\"32\"/>"
    "<reg name=\"r4\" bitsize=\"32\"/><reg name=\"r5\" bitsize=\"32\"/>"
    "<reg name=\"r6\" bitsize=\"32\"/><reg name=\"r7\" bitsize=\"32\"/>"
    "<reg name=\"r8\" bitsize=\"32\"/><reg name=\"r9\" bitsize=\"32\"/>"
    "<reg name=\"r10\" bitsize=\"32\"/><reg name=\"r11\" bitsize=\"32\"/>"
    "<reg name=\"r12\" bitsize=\"32\"/>"
    "<reg name=\"sp\" bitsize=\"32\" type=\"data_ptr\"/>"
    "<reg name=\"lr\" bitsize=\"32\"/>"
    "<reg name=\"pc\" bitsize=\"32\" type=\"code_ptr\"/>"
    "<reg name=\"xpsr\" bitsize=\"32\" regnum=\"16\"/></feature>"
    "<feature name=\"org.gnu.gdb.arm.m-system\">"
    "<reg name=\"msp\" bitsize=\"32\" regnum=\"17\" type=\"data_ptr\"/>"
    "<reg name=\"psp\" bitsize=\"32\" type=\"data_ptr\"/>"
    "<reg name=\"primask\" bitsize=\"32\"/><reg name=\"basepri\" bitsize=\"32\"/>"
    "<reg name=\"faultmask\" bitsize=\"32\"/><reg name=\"control\" bitsize=\"32\"/>"
    "</feature>";
static const char target_xml_vfp[] =
    "<feature name=\"org.gnu.gdb.arm.vfp\">"
    "<reg name=\"d0\" bitsize=\"64\" type=\"ieee_double\" regnum=\"23\"/>"
    "<reg name=\"d1\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d2\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d3\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d4\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d5\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d6\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d7\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d8\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d9\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d10\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d11\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d12\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d13\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d14\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"d15\" bitsize=\"64\" type=\"ieee_double\"/>"
    "<reg name=\"fpscr\" bitsize=\"32\" type=\"int\" group=\"float\"/></feature>";

static const int core_regs[] = {
    UC_ARM_REG_R0,      UC_ARM_REG_R1,        UC_ARM_REG_R2,      UC_ARM_REG_R3,
    UC_ARM_REG_R4,      UC_ARM_REG_R5,        UC_ARM_REG_R6,      UC_ARM_REG_R7,
    UC_ARM_REG_R8,      UC_ARM_REG_R9,        UC_ARM_REG_R10,     UC_ARM_REG_R11,
    UC_ARM_REG_R12,     UC_ARM_REG_SP,        UC_ARM_REG_LR,      UC_ARM_REG_PC,
    UC_ARM_REG_XPSR,    UC_ARM_REG_MSP,       UC_ARM_REG_PSP,     UC_ARM_REG_PRIMASK,
    UC_ARM_REG_BASEPRI, UC_ARM_REG_FAULTMASK, UC_ARM_REG_CONTROL,
};
#define N_CORE 23

static int nregs(struct ms_rh_gdb *g)
{
	return g->m->has_fpu ? N_CORE + 17 : N_CORE;
}

static int reg_size(int n)
{
	return (n >= N_CORE && n < N_CORE + 16) ? 8 : 4;
}

static void reg_get(struct ms_rh_gdb *g, int n, uint8_t *out)
{
	uint32_t v = 0, w[2] = {0, 0};

	if (n < N_CORE) {
		if (n >= 17 && n <= 21)
			v = ms__rh_sysreg(g->m, core_regs[n]);
		else
			uc_reg_read(g->m->uc, core_regs[n], &v);
		memcpy(out, &v, 4);
	} else if (n < N_CORE + 16) {
		uc_reg_read(g->m->uc, UC_ARM_REG_S0 + 2 * (n - N_CORE), &w[0]);
		uc_reg_read(g->m->uc, UC_ARM_REG_S0 + 2 * (n - N_CORE) + 1, &w[1]);
		memcpy(out, w, 8);
	} else {
		uc_reg_read(g->m->uc, UC_ARM_REG_FPSCR, &v);
		memcpy(out, &v, 4);
	}
}

static void reg_set(struct ms_rh_gdb *g, int n, const uint8_t *in)
{
	uint32_t v, w[2];

	if (n < N_CORE) {
		memcpy(&v, in, 4);
		if (core_regs[n] == UC_ARM_REG_PC)
			v |= 1;
		uc_reg_write(g->m->uc, core_regs[n], &v);
	} else if (n < N_CORE + 16) {
		memcpy(w, in, 8);
		uc_reg_write(g->m->uc, UC_ARM_REG_S0 + 2 * (n - N_CORE), &w[0]);
		uc_reg_write(g->m->uc, UC_ARM_REG_S0 + 2 * (n - N_CORE) + 1, &w[1]);
	} else {
		memcpy(&v, in, 4);
		uc_reg_write(g->m->uc, UC_ARM_REG_FPSCR, &v);
	}
}

/* ---- I/O ---- */

static void tohex(char *out, const uint8_t *in, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = 0;
}

static bool fromhex(uint8_t *out, const char *in, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int a = ms_hexval(in[2 * i]), b = ms_hexval(in[2 * i + 1]);

		if (a < 0 || b < 0)
			return false;
		out[i] = (uint8_t)(a * 16 + b);
	}
	return true;
}

static void drop_client(struct ms_rh_gdb *g);

static void send_all(struct ms_rh_gdb *g, const char *buf, size_t n)
{
	while (n > 0 && g->cfd >= 0) {
		ssize_t k = send(g->cfd, buf, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			drop_client(g);
			return;
		}
		buf += k;
		n -= (size_t)k;
	}
}

static void send_pkt(struct ms_rh_gdb *g, const char *data)
{
	size_t n = strlen(data);
	char *p = malloc(n + 5);
	unsigned cs = 0;
	size_t i;

	if (p == NULL)
		return;
	p[0] = '$';
	for (i = 0; i < n; i++)
		cs += (unsigned char)data[i];
	memcpy(p + 1, data, n);
	snprintf(p + 1 + n, 4, "#%02x", cs & 0xff);
	send_all(g, p, n + 4);
	free(p);
}

static void drop_client(struct ms_rh_gdb *g)
{
	int i;

	if (g->cfd >= 0)
		close(g->cfd);
	g->cfd = -1;
	g->noack = false;
	g->resumed = false;
	g->inlen = 0;
	for (i = 0; i < MAX_BP; i++)
		if (g->bps[i].used) {
			uc_hook_del(g->m->uc, g->bps[i].h);
			g->bps[i].used = false;
		}
	for (i = 0; i < MAX_WP; i++)
		if (g->wps[i].used) {
			uc_hook_del(g->m->uc, g->wps[i].h);
			g->wps[i].used = false;
		}
	if (g->stepping) {
		uc_hook_del(g->m->uc, g->step_hook);
		g->stepping = false;
	}
	ms__rh_flush_code(g->m);
}

/*
 * Read one packet into out (NUL-terminated). Returns 1 for a packet,
 * 2 for a Ctrl-C byte, 0 when nothing complete arrived within timeout_ms,
 * -1 when the client went away.
 */
static int read_pkt(struct ms_rh_gdb *g, char *out, size_t cap, int timeout_ms)
{
	for (;;) {
		char *start, *hash;
		size_t i;

		/* Skip acks and noise before '$'; a 0x03 is an interrupt. */
		for (i = 0; i < g->inlen; i++) {
			if (g->inbuf[i] == 3) {
				memmove(g->inbuf, g->inbuf + i + 1, g->inlen - i - 1);
				g->inlen -= i + 1;
				return 2;
			}
			if (g->inbuf[i] == '$')
				break;
		}
		if (i > 0) {
			memmove(g->inbuf, g->inbuf + i, g->inlen - i);
			g->inlen -= i;
		}
		start = g->inlen > 0 ? g->inbuf : NULL;
		hash = start != NULL ? memchr(start, '#', g->inlen) : NULL;
		if (hash != NULL && (size_t)(hash - start) + 3 <= g->inlen) {
			size_t n = (size_t)(hash - start) - 1;
			unsigned cs = 0, want;
			int a = ms_hexval(hash[1]), b = ms_hexval(hash[2]);

			for (i = 0; i < n; i++)
				cs += (unsigned char)start[1 + i];
			want = (a < 0 || b < 0) ? 0x100 : (unsigned)(a * 16 + b);
			if (n >= cap || (cs & 0xff) != want) {
				if (!g->noack)
					send_all(g, "-", 1);
				memmove(g->inbuf, hash + 3, g->inlen - (size_t)(hash + 3 - start));
				g->inlen -= (size_t)(hash + 3 - start);
				continue;
			}
			memcpy(out, start + 1, n);
			out[n] = 0;
			memmove(g->inbuf, hash + 3, g->inlen - (size_t)(hash + 3 - start));
			g->inlen -= (size_t)(hash + 3 - start);
			if (!g->noack)
				send_all(g, "+", 1);
			return 1;
		}
		if (g->inlen >= sizeof(g->inbuf)) {
			/* A packet larger than we accept: drop it. */
			g->inlen = 0;
			if (!g->noack)
				send_all(g, "-", 1);
		}
		{
			struct pollfd p = {.fd = g->cfd, .events = POLLIN};
			ssize_t k;
			int r = poll(&p, 1, timeout_ms);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return r == 0 ? 0 : -1;
			k = recv(g->cfd, g->inbuf + g->inlen, sizeof(g->inbuf) - g->inlen, 0);
			if (k <= 0)
				return -1;
			g->inlen += (size_t)k;
		}
	}
}

/* ---- hooks ---- */

static void bp_hook(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	struct ms_rh_gdb *g = ud;

	if (g->skip && g->skip_addr == (uint32_t)addr) {
		g->skip = false;
		return;
	}
	g->skip = false;
	ms_rh_gdb_note_stop(g, 5, "hwbreak");
	g->m->halted_for_debug = true;
	uc_emu_stop(uc);
}

static void step_hook(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	struct ms_rh_gdb *g = ud;

	if (++g->step_seen < 2)
		return;
	ms_rh_gdb_note_stop(g, 5, NULL);
	g->m->halted_for_debug = true;
	uc_emu_stop(uc);
}

/* The watchpoint hook needs both the gdb object and which watchpoint: find it by address. */
static void wp_hook_g(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value,
                      void *ud)
{
	struct ms_rh_gdb *g = ud;
	int i;

	for (i = 0; i < MAX_WP; i++) {
		struct wp *w = &g->wps[i];
		bool is_write = type == UC_MEM_WRITE;

		if (!w->used || addr + (uint64_t)size <= w->addr ||
		    addr >= (uint64_t)w->addr + w->len)
			continue;
		if ((w->type == 2 && !is_write) || (w->type == 3 && is_write))
			continue;
		{
			char why[48];

			snprintf(why, sizeof(why), "%swatch:%x",
			         w->type == 2       ? ""
			             : w->type == 3 ? "r"
			                            : "a",
			         w->addr);
			ms_rh_gdb_note_stop(g, 5, why);
		}
		g->m->halted_for_debug = true;
		uc_emu_stop(uc);
		return;
	}
}

/* ---- commands ---- */

static void stop_reply(struct ms_rh_gdb *g)
{
	char buf[96];

	if (g->stop_why[0] != 0)
		snprintf(buf, sizeof(buf), "T%02x%s;", g->stop_sig, g->stop_why);
	else
		snprintf(buf, sizeof(buf), "T%02x", g->stop_sig);
	send_pkt(g, buf);
}

static bool parse_hex(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0, d;

	while ((d = ms_hexval(**p)) >= 0 && n < 16) {
		v = v * 16 + (uint64_t)d;
		(*p)++;
		n++;
	}
	*out = v;
	return n > 0;
}

static void cmd_read_mem(struct ms_rh_gdb *g, const char *args)
{
	uint64_t addr, len;
	uint8_t *buf;
	char *hex;

	if (!parse_hex(&args, &addr) || *args++ != ',' || !parse_hex(&args, &len) || len > 4096) {
		send_pkt(g, "E01");
		return;
	}
	buf = malloc(len + 1);
	hex = malloc(2 * len + 1);
	if (buf == NULL || hex == NULL || ms_rh_mem_read(g->m, (uint32_t)addr, buf, len) != 0) {
		/* Memory-mapped devices and unmapped space: what Unicorn can read, else an error. */
		if (buf != NULL && hex != NULL &&
		    uc_mem_read(g->m->uc, addr, buf, len) == UC_ERR_OK) {
			tohex(hex, buf, len);
			send_pkt(g, hex);
		} else {
			send_pkt(g, "E14");
		}
		free(buf);
		free(hex);
		return;
	}
	tohex(hex, buf, len);
	send_pkt(g, hex);
	free(buf);
	free(hex);
}

static void cmd_write_mem(struct ms_rh_gdb *g, const char *args)
{
	uint64_t addr, len;
	uint8_t *buf;

	if (!parse_hex(&args, &addr) || *args++ != ',' || !parse_hex(&args, &len) ||
	    *args++ != ':' || len > 4096 || strlen(args) != 2 * len) {
		send_pkt(g, "E01");
		return;
	}
	buf = malloc(len + 1);
	if (buf == NULL || !fromhex(buf, args, len) ||
	    ms_rh_mem_write(g->m, (uint32_t)addr, buf, len) != 0)
		send_pkt(g, "E14");
	else
		send_pkt(g, "OK");
	free(buf);
}

static void cmd_z(struct ms_rh_gdb *g, const char *pkt, bool insert)
{
	const char *p = pkt + 1;
	uint64_t type, addr, kind;
	int i;

	type = (uint64_t)(pkt[1] - '0');
	p = pkt + 2;
	if (type > 4 || *p++ != ',' || !parse_hex(&p, &addr) || *p++ != ',' ||
	    !parse_hex(&p, &kind)) {
		send_pkt(g, "E01");
		return;
	}
	if (type <= 1) {
		for (i = 0; i < MAX_BP; i++)
			if (g->bps[i].used && g->bps[i].addr == (uint32_t)addr)
				break;
		if (insert) {
			if (i < MAX_BP) {
				send_pkt(g, "OK");
				return;
			}
			for (i = 0; i < MAX_BP && g->bps[i].used; i++)
				;
			if (i == MAX_BP ||
			    uc_hook_add(g->m->uc, &g->bps[i].h, UC_HOOK_CODE, (void *)bp_hook, g,
			                addr, addr) != UC_ERR_OK) {
				send_pkt(g, "E0c");
				return;
			}
			g->bps[i].used = true;
			g->bps[i].addr = (uint32_t)addr;
		} else if (i < MAX_BP) {
			uc_hook_del(g->m->uc, g->bps[i].h);
			g->bps[i].used = false;
		}
		uc_ctl_remove_cache(g->m->uc, addr & ~1ull, (addr & ~1ull) + 4);
		send_pkt(g, "OK");
		return;
	}
	if (kind == 0 || kind > 4096) {
		send_pkt(g, "E01");
		return;
	}
	for (i = 0; i < MAX_WP; i++)
		if (g->wps[i].used && g->wps[i].addr == (uint32_t)addr &&
		    g->wps[i].len == (uint32_t)kind && g->wps[i].type == (int)type)
			break;
	if (insert) {
		int htype = type == 2 ? UC_HOOK_MEM_WRITE
		    : type == 3       ? UC_HOOK_MEM_READ
		                      : (UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE);

		if (i < MAX_WP) {
			send_pkt(g, "OK");
			return;
		}
		for (i = 0; i < MAX_WP && g->wps[i].used; i++)
			;
		if (i == MAX_WP ||
		    uc_hook_add(g->m->uc, &g->wps[i].h, htype, (void *)wp_hook_g, g, addr,
		                addr + kind - 1) != UC_ERR_OK) {
			send_pkt(g, "E0c");
			return;
		}
		g->wps[i].used = true;
		g->wps[i].addr = (uint32_t)addr;
		g->wps[i].len = (uint32_t)kind;
		g->wps[i].type = (int)type;
	} else if (i < MAX_WP) {
		uc_hook_del(g->m->uc, g->wps[i].h);
		g->wps[i].used = false;
	}
	ms__rh_flush_code(g->m);
	send_pkt(g, "OK");
}

static void arm_skip(struct ms_rh_gdb *g)
{
	uint32_t pc = ms__rh_pc(g->m);
	int i;

	g->skip = false;
	for (i = 0; i < MAX_BP; i++)
		if (g->bps[i].used && g->bps[i].addr == (pc & ~1u)) {
			g->skip = true;
			g->skip_addr = pc & ~1u;
		}
}

static void begin_step(struct ms_rh_gdb *g)
{
	g->step_seen = 0;
	if (!g->stepping &&
	    uc_hook_add(g->m->uc, &g->step_hook, UC_HOOK_CODE, (void *)step_hook, g, 1, 0) ==
	        UC_ERR_OK)
		g->stepping = true;
	ms__rh_flush_code(g->m);
}

static void end_step(struct ms_rh_gdb *g)
{
	if (g->stepping) {
		uc_hook_del(g->m->uc, g->step_hook);
		g->stepping = false;
		ms__rh_flush_code(g->m);
	}
}

static void cmd_xfer(struct ms_rh_gdb *g, const char *pkt)
{
	const char *p = pkt + strlen("qXfer:features:read:target.xml:");
	uint64_t off, len;
	size_t total;
	char *xml, *out;

	if (!parse_hex(&p, &off) || *p++ != ',' || !parse_hex(&p, &len)) {
		send_pkt(g, "E01");
		return;
	}
	total = strlen(target_xml_head) + strlen(target_xml_vfp) + 16;
	xml = malloc(total);
	if (xml == NULL) {
		send_pkt(g, "E01");
		return;
	}
	snprintf(xml, total, "%s%s</target>", target_xml_head, g->m->has_fpu ? target_xml_vfp : "");
	total = strlen(xml);
	if (off >= total) {
		send_pkt(g, "l");
		free(xml);
		return;
	}
	if (len > total - off)
		len = total - off;
	if (len > PKT_MAX / 2)
		len = PKT_MAX / 2;
	out = malloc(len + 2);
	if (out != NULL) {
		out[0] = off + len >= total ? 'l' : 'm';
		memcpy(out + 1, xml + off, len);
		out[len + 1] = 0;
		send_pkt(g, out);
	}
	free(out);
	free(xml);
}

/* Handle one packet. Returns 0 to keep serving, 1 resume, 2 kill, 3 detach. */
static int handle(struct ms_rh_gdb *g, char *pkt)
{
	char buf[(N_CORE + 17) * 16 + 8];
	uint8_t raw[8];
	int n, off;

	switch (pkt[0]) {
	case '?':
		stop_reply(g);
		return 0;
	case 'g':
		off = 0;
		for (n = 0; n < nregs(g); n++) {
			reg_get(g, n, raw);
			tohex(buf + off, raw, (size_t)reg_size(n));
			off += 2 * reg_size(n);
		}
		send_pkt(g, buf);
		return 0;
	case 'G':
		off = 0;
		for (n = 0;
		     n < nregs(g) && (size_t)off + 2 * (size_t)reg_size(n) <= strlen(pkt + 1);
		     n++) {
			if (!fromhex(raw, pkt + 1 + off, (size_t)reg_size(n))) {
				send_pkt(g, "E01");
				return 0;
			}
			reg_set(g, n, raw);
			off += 2 * reg_size(n);
		}
		send_pkt(g, "OK");
		return 0;
	case 'p': {
		const char *p = pkt + 1;
		uint64_t r;

		if (!parse_hex(&p, &r) || r >= (uint64_t)nregs(g)) {
			send_pkt(g, "E01");
			return 0;
		}
		reg_get(g, (int)r, raw);
		tohex(buf, raw, (size_t)reg_size((int)r));
		send_pkt(g, buf);
		return 0;
	}
	case 'P': {
		const char *p = pkt + 1;
		uint64_t r;

		if (!parse_hex(&p, &r) || *p++ != '=' || r >= (uint64_t)nregs(g) ||
		    strlen(p) != 2 * (size_t)reg_size((int)r) ||
		    !fromhex(raw, p, (size_t)reg_size((int)r))) {
			send_pkt(g, "E01");
			return 0;
		}
		reg_set(g, (int)r, raw);
		send_pkt(g, "OK");
		return 0;
	}
	case 'm':
		cmd_read_mem(g, pkt + 1);
		return 0;
	case 'M':
		cmd_write_mem(g, pkt + 1);
		return 0;
	case 'Z':
	case 'z':
		cmd_z(g, pkt, pkt[0] == 'Z');
		return 0;
	case 'c':
		arm_skip(g);
		return 1;
	case 's':
		arm_skip(g);
		begin_step(g);
		return 1;
	case 'D':
		send_pkt(g, "OK");
		return 3;
	case 'k':
		return 2;
	case 'H':
		send_pkt(g, "OK");
		return 0;
	case 'T':
		send_pkt(g, "OK");
		return 0;
	case 'v':
		if (strcmp(pkt, "vCont?") == 0) {
			send_pkt(g, "vCont;c;C;s;S");
			return 0;
		}
		if (strncmp(pkt, "vCont;", 6) == 0) {
			arm_skip(g);
			if (pkt[6] == 's' || pkt[6] == 'S')
				begin_step(g);
			return 1;
		}
		if (strncmp(pkt, "vKill", 5) == 0) {
			send_pkt(g, "OK");
			return 2;
		}
		send_pkt(g, "");
		return 0;
	case 'q':
		if (strncmp(pkt, "qSupported", 10) == 0) {
			send_pkt(g,
			         "PacketSize=3fff;qXfer:features:read+;QStartNoAckMode+;"
			         "swbreak+;hwbreak+;vContSupported+");
			return 0;
		}
		if (strncmp(pkt, "qXfer:features:read:target.xml:", 31) == 0) {
			cmd_xfer(g, pkt);
			return 0;
		}
		if (strcmp(pkt, "qAttached") == 0) {
			send_pkt(g, "1");
			return 0;
		}
		if (strcmp(pkt, "qC") == 0) {
			send_pkt(g, "QC1");
			return 0;
		}
		if (strcmp(pkt, "qfThreadInfo") == 0) {
			send_pkt(g, "m1");
			return 0;
		}
		if (strcmp(pkt, "qsThreadInfo") == 0) {
			send_pkt(g, "l");
			return 0;
		}
		send_pkt(g, "");
		return 0;
	case 'Q':
		if (strcmp(pkt, "QStartNoAckMode") == 0) {
			send_pkt(g, "OK");
			g->noack = true;
			return 0;
		}
		send_pkt(g, "");
		return 0;
	default:
		send_pkt(g, "");
		return 0;
	}
}

/* ---- public ---- */

int ms_rh_gdb_new(struct ms_rh_machine *m, int port, struct ms_rh_gdb **out, struct ms_err *e)
{
	struct ms_rh_gdb *g = calloc(1, sizeof(*g));
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int one = 1;

	if (g == NULL)
		return ms_fail(e, 500, "internal", "out of memory");
	g->m = m;
	g->cfd = -1;
	g->stop_sig = 5;
	g->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g->lfd < 0) {
		free(g);
		return ms_fail(e, 500, "internal", "socket: %s", strerror(errno));
	}
	setsockopt(g->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(g->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(g->lfd, 1) != 0) {
		int err = errno;

		close(g->lfd);
		free(g);
		return ms_fail(e, 409, "port_in_use", "cannot listen on 127.0.0.1:%d: %s", port,
		               strerror(err));
	}
	getsockname(g->lfd, (struct sockaddr *)&a, &al);
	g->port = ntohs(a.sin_port);
	*out = g;
	return 0;
}

void ms_rh_gdb_free(struct ms_rh_gdb *g)
{
	if (g == NULL)
		return;
	if (g->cfd >= 0)
		close(g->cfd);
	close(g->lfd);
	free(g);
}

int ms_rh_gdb_port(const struct ms_rh_gdb *g)
{
	return g->port;
}

bool ms_rh_gdb_attached(const struct ms_rh_gdb *g)
{
	return g->cfd >= 0;
}

bool ms_rh_gdb_stepping(const struct ms_rh_gdb *g)
{
	return g->stepping;
}

void ms_rh_gdb_note_stop(struct ms_rh_gdb *g, int sig, const char *why)
{
	g->stop_sig = sig;
	snprintf(g->stop_why, sizeof(g->stop_why), "%s", why != NULL ? why : "");
	if (why != NULL && (strcmp(why, "hwbreak") == 0 || strcmp(why, "swbreak") == 0))
		snprintf(g->stop_why, sizeof(g->stop_why), "%s:", why);
}

static bool try_accept(struct ms_rh_gdb *g, int timeout_ms)
{
	struct pollfd p = {.fd = g->lfd, .events = POLLIN};
	int one = 1;

	if (poll(&p, 1, timeout_ms) <= 0)
		return false;
	g->cfd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (g->cfd < 0)
		return false;
	setsockopt(g->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	g->noack = false;
	g->inlen = 0;
	/* A new client finds the guest halted. */
	g->stop_sig = 5;
	g->stop_why[0] = 0;
	return true;
}

int ms_rh_gdb_serve(struct ms_rh_gdb *g, int timeout_ms)
{
	char *pkt = g->pkt;

	end_step(g);
	if (g->cfd < 0 && !try_accept(g, timeout_ms))
		return 0;
	if (g->resumed) {
		g->resumed = false;
		stop_reply(g);
	}
	for (;;) {
		int r = read_pkt(g, pkt, PKT_MAX, 100);

		if (r < 0) {
			drop_client(g);
			return 0;
		}
		if (r == 0) {
			/* The host needs the machine (a command, or the session is going away). */
			if (__atomic_load_n(&g->m->stop_request, __ATOMIC_SEQ_CST))
				return -1;
			continue;
		}
		if (r == 2) {
			/* Ctrl-C while halted: report the halt again. */
			g->stop_sig = 2;
			stop_reply(g);
			continue;
		}
		if (r == 0)
			continue;
		switch (handle(g, pkt)) {
		case 0:
			break;
		case 1:
			g->resumed = true;
			return 0;
		case 2:
			drop_client(g);
			return 1;
		case 3:
			drop_client(g);
			return 0;
		}
	}
}

void ms_rh_gdb_exited(struct ms_rh_gdb *g, int code)
{
	char buf[8];

	if (g->cfd < 0)
		return;
	snprintf(buf, sizeof(buf), "W%02x", code & 0xff);
	send_pkt(g, buf);
	drop_client(g);
}

bool ms_rh_gdb_poll(struct ms_rh_gdb *g)
{
	char *pkt = g->pkt;

	if (g->cfd < 0)
		return try_accept(g, 0);
	for (;;) {
		int r = read_pkt(g, pkt, PKT_MAX, 0);

		if (r == 0)
			return false;
		if (r < 0) {
			drop_client(g);
			return false;
		}
		if (r == 2)
			return true;
		/* A packet while running (other than Ctrl-C) is a protocol error: answer empty. */
		send_pkt(g, "");
	}
}
