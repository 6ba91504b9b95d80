/*
 * thumb: Capstone decoding with a cache, locating the instruction behind a
 * data access, a small taint-tracking interpreter for poll-loop analysis
 * and handler dry runs, delay-loop recognition, and the straight-line
 * scanners over the code after a load (value used, read-modify-write,
 * arithmetic use, the poll solver's candidate values). See thumb.h.
 *
 * Threads: an ms__dis is used only by the engine's owner thread; there is
 * no locking here.
 */
#include "infer/thumb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/infer.h"

#define CACHE_BITS 14
#define CACHE_SIZE (1u << CACHE_BITS)

struct slot {
	uint32_t addr;
	bool valid;
	bool bad; /* decoding failed at addr */
	cs_insn *insn;
};

struct ms__dis {
	uc_engine *uc;
	csh cs;
	struct slot *cache;
	bool (*is_dev)(void *ud, uint32_t addr);
	void *dev_ud;
	bool (*peek)(void *ud, uint32_t addr, bool after, uint32_t *v);
	void *peek_ud;
	bool peek_after;
	bool peek_all_set;
};

void ms__dis_set_peek(struct ms__dis *d,
                      bool (*peek)(void *ud, uint32_t addr, bool after, uint32_t *v), void *ud)
{
	d->peek = peek;
	d->peek_ud = ud;
}

void ms__dis_peek_after(struct ms__dis *d, bool on)
{
	d->peek_after = on;
}

void ms__dis_peek_all_set(struct ms__dis *d, bool on)
{
	d->peek_all_set = on;
}

void ms__dis_set_device_test(struct ms__dis *d, bool (*is_dev)(void *ud, uint32_t addr), void *ud)
{
	d->is_dev = is_dev;
	d->dev_ud = ud;
}

static bool is_device(const struct ms__dis *d, uint32_t addr)
{
	return ms__is_device_addr(addr) || (d->is_dev && d->is_dev(d->dev_ud, addr));
}

bool ms__is_device_addr(uint32_t addr)
{
	/* Peripherals, external device space and the whole system region. */
	return (addr >= 0x40000000u && addr < 0x60000000u) || addr >= 0xA0000000u;
}

struct ms__dis *ms__dis_new(uc_engine *uc)
{
	struct ms__dis *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->uc = uc;
	if (cs_open(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS, &d->cs) != CS_ERR_OK) {
		free(d);
		return NULL;
	}
	cs_option(d->cs, CS_OPT_DETAIL, CS_OPT_ON);
	d->cache = calloc(CACHE_SIZE, sizeof(*d->cache));
	if (!d->cache) {
		cs_close(&d->cs);
		free(d);
		return NULL;
	}
	return d;
}

void ms__dis_free(struct ms__dis *d)
{
	if (!d)
		return;
	for (uint32_t i = 0; i < CACHE_SIZE; i++)
		if (d->cache[i].insn)
			cs_free(d->cache[i].insn, 1);
	free(d->cache);
	cs_close(&d->cs);
	free(d);
}

const cs_insn *ms__dis_at(struct ms__dis *d, uint32_t addr)
{
	addr &= ~1u;
	struct slot *s = &d->cache[(addr >> 1) & (CACHE_SIZE - 1)];
	if (s->valid && s->addr == addr)
		return s->bad ? NULL : s->insn;
	uint8_t buf[4];
	s->valid = true;
	s->addr = addr;
	s->bad = true;
	if (uc_mem_read(d->uc, addr, buf, 4) != UC_ERR_OK &&
	    uc_mem_read(d->uc, addr, buf, 2) != UC_ERR_OK)
		return NULL;
	if (!s->insn)
		s->insn = cs_malloc(d->cs);
	if (!s->insn)
		return NULL;
	const uint8_t *p = buf;
	size_t n = 4;
	uint64_t a = addr;
	if (!cs_disasm_iter(d->cs, &p, &n, &a, s->insn))
		return NULL;
	s->bad = false;
	return s->insn;
}

void ms__dis_text(struct ms__dis *d, uint32_t addr, char *buf, size_t cap)
{
	const cs_insn *in = ms__dis_at(d, addr);
	if (!in) {
		snprintf(buf, cap, "(undecodable)");
		return;
	}
	snprintf(buf, cap, "%s %s", in->mnemonic, in->op_str);
}

int ms__uc_reg(int i)
{
	static const int map[16] = {
	    UC_ARM_REG_R0,  UC_ARM_REG_R1, UC_ARM_REG_R2,  UC_ARM_REG_R3,
	    UC_ARM_REG_R4,  UC_ARM_REG_R5, UC_ARM_REG_R6,  UC_ARM_REG_R7,
	    UC_ARM_REG_R8,  UC_ARM_REG_R9, UC_ARM_REG_R10, UC_ARM_REG_R11,
	    UC_ARM_REG_R12, UC_ARM_REG_SP, UC_ARM_REG_LR,  UC_ARM_REG_PC,
	};
	return map[i & 15];
}

void ms__cpu_lazy(uc_engine *uc, struct ms__cpu *cpu)
{
	cpu->uc = uc;
	cpu->have = 0;
}

void ms__cpu_need(const struct ms__cpu *cpu, int i)
{
	/* The file is the caller's (never const storage): loading is not a change it sees. */
	struct ms__cpu *c = (struct ms__cpu *)cpu;
	if (!c->uc)
		return;
	if (i < 0) {
		if (c->have != 0x1ffff)
			ms__cpu_read(c->uc, c);
		return;
	}
	if (!((c->have >> i) & 1)) {
		uc_reg_read(c->uc, ms__uc_reg(i), &c->r[i]);
		c->have |= 1u << i;
	}
}

void ms__cpu_read(uc_engine *uc, struct ms__cpu *cpu)
{
	int ids[17];
	void *vals[17];
	uint32_t xpsr = 0;
	for (int i = 0; i < 16; i++) {
		ids[i] = ms__uc_reg(i);
		vals[i] = &cpu->r[i];
	}
	ids[16] = UC_ARM_REG_XPSR;
	vals[16] = &xpsr;
	uc_reg_read_batch(uc, ids, vals, 17);
	cpu->n = (xpsr >> 31) & 1;
	cpu->z = (xpsr >> 30) & 1;
	cpu->c = (xpsr >> 29) & 1;
	cpu->v = (xpsr >> 28) & 1;
	cpu->uc = uc;
	cpu->have = 0x1ffff;
}

/* Capstone register id to interpreter index, -1 for anything else. */
static int reg_index(int reg)
{
	if (reg >= ARM_REG_R0 && reg <= ARM_REG_R12)
		return reg - ARM_REG_R0;
	if (reg == ARM_REG_SP)
		return 13;
	if (reg == ARM_REG_LR)
		return 14;
	if (reg == ARM_REG_PC)
		return 15;
	return -1;
}

static bool is_load(unsigned id)
{
	return id == ARM_INS_LDR || id == ARM_INS_LDRB || id == ARM_INS_LDRH ||
	    id == ARM_INS_LDRSB || id == ARM_INS_LDRSH || id == ARM_INS_LDREX ||
	    id == ARM_INS_LDRT || id == ARM_INS_LDRBT || id == ARM_INS_LDRHT;
}

static bool is_store(unsigned id)
{
	return id == ARM_INS_STR || id == ARM_INS_STRB || id == ARM_INS_STRH ||
	    id == ARM_INS_STREX || id == ARM_INS_STRT || id == ARM_INS_STRBT || id == ARM_INS_STRHT;
}

static unsigned access_size(unsigned id)
{
	switch (id) {
	case ARM_INS_LDRB:
	case ARM_INS_LDRSB:
	case ARM_INS_STRB:
	case ARM_INS_LDRBT:
	case ARM_INS_STRBT:
		return 1;
	case ARM_INS_LDRH:
	case ARM_INS_LDRSH:
	case ARM_INS_STRH:
	case ARM_INS_LDRHT:
	case ARM_INS_STRHT:
		return 2;
	default:
		return 4;
	}
}

/* Value of a register operand as the instruction sees it (PC reads ahead). */
static uint32_t rd_reg(const struct ms__cpu *c, int idx, uint32_t pc)
{
	if (idx == 15)
		return pc + 4;
	return c->r[idx];
}

/* Effective address of the memory operand op (pre-index form). */
static bool mem_ea(const struct ms__cpu *c, const cs_insn *in, const cs_arm_op *op, uint32_t *ea)
{
	int b = reg_index(op->mem.base);
	if (b < 0)
		return false;
	if (b != 15)
		ms__cpu_need(c, b);
	if (op->mem.index != ARM_REG_INVALID && reg_index(op->mem.index) >= 0)
		ms__cpu_need(c, reg_index(op->mem.index));
	uint32_t base = rd_reg(c, b, (uint32_t)in->address);
	if (b == 15)
		base &= ~3u;
	uint32_t off;
	if (op->mem.index != ARM_REG_INVALID) {
		int x = reg_index(op->mem.index);
		if (x < 0)
			return false;
		/* Thumb-2 `ldr r0, [r1, r4, lsl #2]`: Capstone gives the shift in op->shift. */
		unsigned sh = op->mem.lshift;
		if (!sh && op->shift.type == ARM_SFT_LSL)
			sh = op->shift.value;
		off = c->r[x] << (sh & 31);
		if (op->subtracted)
			off = -off;
	} else {
		off = (uint32_t)op->mem.disp;
	}
	*ea = base + off;
	return true;
}

/* The memory operand of a load/store, or NULL. */
static const cs_arm_op *mem_op(const cs_insn *in)
{
	const cs_arm *a = &in->detail->arm;
	for (int i = 0; i < a->op_count; i++)
		if (a->operands[i].type == ARM_OP_MEM)
			return &a->operands[i];
	return NULL;
}

bool ms__locate(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t block_pc, uint32_t *cursor,
                bool is_write, uint32_t addr, unsigned size, uint32_t *pc)
{
	uint32_t start = *cursor ? *cursor : block_pc;
	/* A Thumb block rarely holds more than a few dozen instructions. */
	for (int pass = 0; pass < 2; pass++) {
		uint32_t a = pass == 0 ? start : block_pc;
		for (int i = 0; i < 64; i++) {
			const cs_insn *in = ms__dis_at(d, a);
			if (!in)
				break;
			unsigned id = in->id;
			bool ld = is_load(id), st = is_store(id);
			if ((is_write ? st : ld) && access_size(id) == size) {
				const cs_arm_op *m = mem_op(in);
				uint32_t ea;
				if (m && mem_ea(cpu, in, m, &ea) && ea == addr) {
					*pc = a;
					*cursor = a + in->size;
					return true;
				}
			}
			/* ldm/stm/push/pop and other multi-register forms are not MMIO idioms. */
			if (cs_insn_group(d->cs, in, ARM_GRP_JUMP) || id == ARM_INS_BL ||
			    id == ARM_INS_BLX || id == ARM_INS_BX || id == ARM_INS_CBZ ||
			    id == ARM_INS_CBNZ)
				break;
			a += in->size;
		}
		if (start == block_pc)
			break;
	}
	return false;
}

static bool cond_pass(const struct ms__cpu *c, arm_cc cc)
{
	switch (cc) {
	case ARM_CC_EQ:
		return c->z;
	case ARM_CC_NE:
		return !c->z;
	case ARM_CC_HS:
		return c->c;
	case ARM_CC_LO:
		return !c->c;
	case ARM_CC_MI:
		return c->n;
	case ARM_CC_PL:
		return !c->n;
	case ARM_CC_VS:
		return c->v;
	case ARM_CC_VC:
		return !c->v;
	case ARM_CC_HI:
		return c->c && !c->z;
	case ARM_CC_LS:
		return !c->c || c->z;
	case ARM_CC_GE:
		return c->n == c->v;
	case ARM_CC_LT:
		return c->n != c->v;
	case ARM_CC_GT:
		return !c->z && c->n == c->v;
	case ARM_CC_LE:
		return c->z || c->n != c->v;
	default:
		return true;
	}
}

/* Interpreter state: registers plus taint (which values derive from the load). */
struct sim {
	struct ms__dis *d;
	struct ms__cpu c;
	uint32_t taint; /* bit i: r[i] derives from the polled value */
	bool flag_taint; /* NZCV derive from it */
	uint32_t lo, hi; /* the loop window: a retry branch back into it means stay */
	uint32_t slo, shi; /* reaching these addresses again means stay */
	struct {
		uint32_t addr, val;
	} ov[16]; /* stores to RAM made during the run */
	int nov;
	bool decided; /* a conditional branch on the value was taken */
	uint32_t bytes; /* bit i: r[i] holds a byte or halfword loaded from memory */
	/*
	 * Walking a handler from its entry (ms__device_loads): also MRS of
	 * IPSR (the exception number, known to the walker) and LDM from RAM,
	 * which RTOS interrupt wrappers use to dispatch through a table. The
	 * poll solver never interprets them, so its decisions do not change.
	 */
	bool walk;
	uint32_t ipsr;
	bool acked; /* the polled register was written (an event acknowledged) */
};

static bool ram_read(struct sim *s, uint32_t ea, unsigned size, uint32_t *v)
{
	for (int i = s->nov - 1; i >= 0; i--)
		if (s->ov[i].addr == (ea & ~3u) && size == 4 && (ea & 3) == 0) {
			*v = s->ov[i].val;
			return true;
		}
	uint32_t x = 0;
	if (uc_mem_read(s->d->uc, ea, &x, size) != UC_ERR_OK)
		return false;
	*v = x;
	return true;
}

static void ram_write(struct sim *s, uint32_t ea, uint32_t v)
{
	if (s->nov < 16) {
		s->ov[s->nov].addr = ea & ~3u;
		s->ov[s->nov].val = v;
		s->nov++;
	}
}

/* Second operand with its shifter; sets *carry for flag-setting logic ops. */
static bool op_value(struct sim *s, const cs_insn *in, const cs_arm_op *op, uint32_t *v, bool *t,
                     bool *carry)
{
	if (op->type == ARM_OP_IMM) {
		*v = (uint32_t)op->imm;
		*t = false;
		return true;
	}
	if (op->type != ARM_OP_REG)
		return false;
	int r = reg_index(op->reg);
	if (r < 0)
		return false;
	uint32_t x = rd_reg(&s->c, r, (uint32_t)in->address);
	*t = (s->taint >> r) & 1;
	unsigned n = op->shift.value;
	switch (op->shift.type) {
	case ARM_SFT_INVALID:
		break;
	case ARM_SFT_LSL:
		if (n) {
			*carry = (x >> (32 - n)) & 1;
			x <<= n;
		}
		break;
	case ARM_SFT_LSR:
		*carry = (x >> (n - 1)) & 1;
		x = n >= 32 ? 0 : x >> n;
		break;
	case ARM_SFT_ASR:
		*carry = (x >> (n - 1)) & 1;
		x = (uint32_t)((int32_t)x >> (n >= 32 ? 31 : n));
		break;
	case ARM_SFT_ROR:
		x = (x >> (n & 31)) | (x << ((32 - n) & 31));
		*carry = x >> 31;
		break;
	default:
		return false;
	}
	*v = x;
	return true;
}

static void set_nz(struct ms__cpu *c, uint32_t r)
{
	c->n = r >> 31;
	c->z = r == 0;
}

static uint32_t add_flags(struct ms__cpu *c, uint32_t a, uint32_t b, bool cin, bool setf)
{
	uint64_t u = (uint64_t)a + b + cin;
	uint32_t r = (uint32_t)u;
	if (setf) {
		set_nz(c, r);
		c->c = u >> 32;
		c->v = (~(a ^ b) & (a ^ r)) >> 31;
	}
	return r;
}

enum step {
	STEP_NEXT, /* fell through */
	STEP_JUMP, /* pc changed */
	STEP_CALL, /* bl/blx */
	STEP_RETURN, /* bx lr / pop pc */
	STEP_DEVICE, /* a device access (recorded) */
	STEP_UNKNOWN, /* not interpreted */
};

struct access {
	bool write;
	bool byte; /* a store of a byte/halfword loaded from memory (a buffer) */
	uint32_t addr;
	unsigned size;
};

static void set_reg(struct sim *s, int r, uint32_t v, bool t)
{
	s->c.r[r] = v;
	s->bytes &= ~(1u << r);
	if (t)
		s->taint |= 1u << r;
	else
		s->taint &= ~(1u << r);
}

/* Where the call instruction in (BL, BLX) goes: its target, 0 when the register is unknown. */
static uint32_t call_target(const struct sim *s, const cs_insn *in)
{
	const cs_arm_op *t = &in->detail->arm.operands[0];

	if (t->type == ARM_OP_IMM)
		return (uint32_t)t->imm & ~1u;
	if (t->type == ARM_OP_REG && reg_index(t->reg) >= 0)
		return s->c.r[reg_index(t->reg)] & ~1u;
	return 0;
}

/* Step over a call without following it: the callee's caller-saved registers become unknown. */
static void skip_call(struct sim *s, const cs_insn *in)
{
	for (int i = 0; i < 4; i++)
		set_reg(s, i, 0, false);
	s->c.r[12] = 0;
	s->c.r[15] = (uint32_t)in->address + in->size;
}

/*
 * Execute one instruction. poll_addr/poll_val inject the polled value on
 * loads of poll_addr. Returns what happened; *cond_tainted tells whether a
 * conditional branch depended on the polled value.
 */
static enum step exec1(struct sim *s, const cs_insn *in, uint32_t poll_addr, uint32_t poll_val,
                       bool inject, struct access *acc, bool *cond_branch, bool *cond_tainted)
{
	const cs_arm *a = &in->detail->arm;
	const cs_arm_op *o = a->operands;
	uint32_t pc = (uint32_t)in->address;
	uint32_t next = pc + in->size;
	unsigned id = in->id;
	*cond_branch = false;
	*cond_tainted = false;

	/*
	 * Conditional execution inside IT blocks (not branches: handled
	 * below). Predication on flags derived from the value is a decision
	 * like a branch (`lsls; itte mi; ldrmi r0, [DR]; movpl r0, #-1`).
	 */
	if (a->cc != ARM_CC_AL && a->cc != ARM_CC_INVALID && id != ARM_INS_B) {
		*cond_branch = true;
		*cond_tainted = s->flag_taint;
		if (s->flag_taint)
			s->decided = true;
		if (!cond_pass(&s->c, a->cc)) {
			s->c.r[15] = next;
			return STEP_NEXT;
		}
	}

	if (is_load(id) || is_store(id)) {
		const cs_arm_op *m = mem_op(in);
		uint32_t ea;
		if (!m || !mem_ea(&s->c, in, m, &ea) || o[0].type != ARM_OP_REG)
			return STEP_UNKNOWN;
		int rt = reg_index(o[0].reg);
		int rb = reg_index(m->mem.base);
		unsigned sz = access_size(id);
		bool post = a->op_count == 3 && o[2].type == ARM_OP_IMM; /* ldr r0, [r1], #4 */
		uint32_t wb = ea;
		if (post) {
			wb = ea + (uint32_t)o[2].imm;
		}
		if (rt < 0 || rt == 15)
			return STEP_UNKNOWN;
		if (is_load(id)) {
			uint32_t v = 0;
			bool t = false;
			if (inject && ea == poll_addr) {
				v = poll_val;
				t = true;
			} else if (is_device(s->d, ea)) {
				/* Before the decision another register may be read: its model value. */
				if (!s->d->peek || (s->decided && !s->d->peek_after) ||
				    !s->d->peek(s->d->peek_ud, ea, s->decided, &v)) {
					acc->write = false;
					acc->addr = ea;
					acc->size = sz;
					return STEP_DEVICE;
				}
				if (s->d->peek_all_set)
					v = 0xffffffffu;
			} else if (!ram_read(s, ea, sz, &v)) {
				return STEP_UNKNOWN;
			}
			if (id == ARM_INS_LDRSB)
				v = (uint32_t)(int32_t)(int8_t)v;
			else if (id == ARM_INS_LDRSH)
				v = (uint32_t)(int32_t)(int16_t)v;
			else if (sz == 1)
				v &= 0xff;
			else if (sz == 2)
				v &= 0xffff;
			if (a->writeback && rb >= 0 && rb != rt)
				set_reg(s, rb, wb, false);
			set_reg(s, rt, v, t);
			if (sz <= 2 && !is_device(s->d, ea))
				s->bytes |= 1u << rt;
		} else {
			if (is_device(s->d, ea)) {
				if (ea == poll_addr && !((s->taint >> rt) & 1)) {
					/* Clearing the polled event/flag: part of the idiom. */
					s->acked = true;
					s->c.r[15] = next;
					return STEP_NEXT;
				}
				acc->write = true;
				acc->byte = (s->bytes >> rt) & 1;
				acc->addr = ea;
				acc->size = sz;
				return STEP_DEVICE;
			}
			if (sz == 4)
				ram_write(s, ea, s->c.r[rt]);
			if (a->writeback && rb >= 0)
				set_reg(s, rb, wb, false);
		}
		s->c.r[15] = next;
		return STEP_NEXT;
	}

	uint32_t x = 0, y = 0, r = 0;
	bool tx = false, ty = false;
	bool carry = s->c.c;
	int rd = a->op_count > 0 && o[0].type == ARM_OP_REG ? reg_index(o[0].reg) : -1;

	switch (id) {
	case ARM_INS_NOP:
	case ARM_INS_YIELD:
	case ARM_INS_WFI:
	case ARM_INS_WFE:
	case ARM_INS_DMB:
	case ARM_INS_DSB:
	case ARM_INS_ISB:
	case ARM_INS_IT:
		break;
	case ARM_INS_MOV:
	case ARM_INS_MVN:
	case ARM_INS_MOVW:
		if (rd < 0 || rd == 15 || !op_value(s, in, &o[1], &x, &tx, &carry))
			return STEP_UNKNOWN;
		r = id == ARM_INS_MVN ? ~x : x;
		{
			int rs = o[1].type == ARM_OP_REG ? reg_index(o[1].reg) : -1;
			bool byte = id == ARM_INS_MOV && rs >= 0 && ((s->bytes >> rs) & 1);
			set_reg(s, rd, r, tx);
			if (byte)
				s->bytes |= 1u << rd;
		}
		if (a->update_flags) {
			set_nz(&s->c, r);
			s->c.c = carry;
			s->flag_taint = tx;
		}
		break;
	case ARM_INS_MOVT:
		if (rd < 0 || rd == 15 || o[1].type != ARM_OP_IMM)
			return STEP_UNKNOWN;
		s->c.r[rd] = (s->c.r[rd] & 0xffff) | ((uint32_t)o[1].imm << 16);
		break;
	case ARM_INS_ADR:
		if (rd < 0 || o[1].type != ARM_OP_IMM)
			return STEP_UNKNOWN;
		set_reg(s, rd, ((pc + 4) & ~3u) + (uint32_t)o[1].imm, false);
		break;
	case ARM_INS_ADD:
	case ARM_INS_ADDW:
	case ARM_INS_SUB:
	case ARM_INS_SUBW:
	case ARM_INS_RSB:
	case ARM_INS_ADC:
	case ARM_INS_SBC:
	case ARM_INS_AND:
	case ARM_INS_ORR:
	case ARM_INS_EOR:
	case ARM_INS_BIC:
	case ARM_INS_ORN:
	case ARM_INS_LSL:
	case ARM_INS_LSR:
	case ARM_INS_ASR:
	case ARM_INS_ROR:
	case ARM_INS_MUL: {
		if (rd < 0 || rd == 15)
			return STEP_UNKNOWN;
		const cs_arm_op *pa = a->op_count >= 3 ? &o[1] : &o[0];
		const cs_arm_op *pb = a->op_count >= 3 ? &o[2] : &o[1];
		bool c2 = s->c.c;
		if (!op_value(s, in, pa, &x, &tx, &c2) || !op_value(s, in, pb, &y, &ty, &carry))
			return STEP_UNKNOWN;
		bool setf = a->update_flags;
		bool t = tx || ty;
		switch (id) {
		case ARM_INS_ADD:
		case ARM_INS_ADDW:
			r = add_flags(&s->c, x, y, 0, setf);
			break;
		case ARM_INS_ADC:
			r = add_flags(&s->c, x, y, s->c.c, setf);
			break;
		case ARM_INS_SUB:
		case ARM_INS_SUBW:
			r = add_flags(&s->c, x, ~y, 1, setf);
			break;
		case ARM_INS_SBC:
			r = add_flags(&s->c, x, ~y, s->c.c, setf);
			break;
		case ARM_INS_RSB:
			r = add_flags(&s->c, y, ~x, 1, setf);
			break;
		case ARM_INS_MUL:
			r = x * y;
			if (setf)
				set_nz(&s->c, r);
			break;
		case ARM_INS_LSL:
		case ARM_INS_LSR:
		case ARM_INS_ASR:
		case ARM_INS_ROR: {
			unsigned n = y & 0xff;
			if (id == ARM_INS_LSL) {
				if (n) {
					carry = n <= 32 ? (x >> (32 - n)) & 1 : 0;
					r = n >= 32 ? 0 : x << n;
				} else {
					r = x;
				}
			} else if (id == ARM_INS_LSR) {
				if (n) {
					carry = n <= 32 ? (x >> (n - 1)) & 1 : 0;
					r = n >= 32 ? 0 : x >> n;
				} else {
					r = x;
				}
			} else if (id == ARM_INS_ASR) {
				if (n) {
					unsigned k = n >= 32 ? 31 : n;
					carry = ((int32_t)x >> (k - (n < 32 ? 1 : 0))) & 1;
					r = (uint32_t)((int32_t)x >> k);
				} else {
					r = x;
				}
			} else {
				n &= 31;
				r = n ? (x >> n) | (x << (32 - n)) : x;
				carry = r >> 31;
			}
			if (setf) {
				set_nz(&s->c, r);
				s->c.c = carry;
			}
			break;
		}
		default: /* logic */
			if (id == ARM_INS_AND)
				r = x & y;
			else if (id == ARM_INS_ORR)
				r = x | y;
			else if (id == ARM_INS_EOR)
				r = x ^ y;
			else if (id == ARM_INS_BIC)
				r = x & ~y;
			else
				r = x | ~y;
			if (setf) {
				set_nz(&s->c, r);
				s->c.c = carry;
			}
			break;
		}
		if (setf)
			s->flag_taint = t;
		set_reg(s, rd, r, t);
		break;
	}
	case ARM_INS_CMP:
	case ARM_INS_CMN:
	case ARM_INS_TST:
	case ARM_INS_TEQ:
		if (!op_value(s, in, &o[0], &x, &tx, &carry) ||
		    !op_value(s, in, &o[1], &y, &ty, &carry))
			return STEP_UNKNOWN;
		if (id == ARM_INS_CMP)
			add_flags(&s->c, x, ~y, 1, true);
		else if (id == ARM_INS_CMN)
			add_flags(&s->c, x, y, 0, true);
		else {
			set_nz(&s->c, id == ARM_INS_TST ? x & y : x ^ y);
			s->c.c = carry;
		}
		s->flag_taint = tx || ty;
		break;
	case ARM_INS_UBFX:
	case ARM_INS_SBFX:
		if (rd < 0 || !op_value(s, in, &o[1], &x, &tx, &carry) || o[2].type != ARM_OP_IMM ||
		    o[3].type != ARM_OP_IMM)
			return STEP_UNKNOWN;
		{
			unsigned lsb = (unsigned)o[2].imm & 31, w = (unsigned)o[3].imm;
			uint32_t m = w >= 32 ? 0xffffffffu : (1u << w) - 1;
			r = (x >> lsb) & m;
			if (id == ARM_INS_SBFX && w && w < 32 && (r >> (w - 1)) & 1)
				r |= ~m;
		}
		set_reg(s, rd, r, tx);
		break;
	case ARM_INS_UXTB:
	case ARM_INS_UXTH:
	case ARM_INS_SXTB:
	case ARM_INS_SXTH:
		if (rd < 0 || !op_value(s, in, &o[1], &x, &tx, &carry))
			return STEP_UNKNOWN;
		if (id == ARM_INS_UXTB)
			r = x & 0xff;
		else if (id == ARM_INS_UXTH)
			r = x & 0xffff;
		else if (id == ARM_INS_SXTB)
			r = (uint32_t)(int32_t)(int8_t)x;
		else
			r = (uint32_t)(int32_t)(int16_t)x;
		{
			/* Narrowing a byte from memory keeps it one (`ldrb; uxtb; str`). */
			int rs = o[1].type == ARM_OP_REG ? reg_index(o[1].reg) : -1;
			bool byte = rs >= 0 && ((s->bytes >> rs) & 1);
			set_reg(s, rd, r, tx);
			if (byte)
				s->bytes |= 1u << rd;
		}
		break;
	case ARM_INS_BFC:
		if (rd < 0 || o[1].type != ARM_OP_IMM || o[2].type != ARM_OP_IMM)
			return STEP_UNKNOWN;
		{
			unsigned lsb = (unsigned)o[1].imm & 31, w = (unsigned)o[2].imm;
			uint32_t m = (w >= 32 ? 0xffffffffu : (1u << w) - 1) << lsb;
			s->c.r[rd] &= ~m;
		}
		break;
	case ARM_INS_B:
		if (o[0].type != ARM_OP_IMM)
			return STEP_UNKNOWN;
		if (a->cc != ARM_CC_AL && a->cc != ARM_CC_INVALID) {
			*cond_branch = true;
			*cond_tainted = s->flag_taint;
			if (!cond_pass(&s->c, a->cc)) {
				s->c.r[15] = next;
				return STEP_NEXT;
			}
		}
		s->c.r[15] = (uint32_t)o[0].imm;
		return STEP_JUMP;
	case ARM_INS_CBZ:
	case ARM_INS_CBNZ: {
		int rn = reg_index(o[0].reg);
		if (rn < 0 || o[1].type != ARM_OP_IMM)
			return STEP_UNKNOWN;
		*cond_branch = true;
		*cond_tainted = (s->taint >> rn) & 1;
		bool zero = s->c.r[rn] == 0;
		if (zero == (id == ARM_INS_CBZ)) {
			s->c.r[15] = (uint32_t)o[1].imm;
			return STEP_JUMP;
		}
		s->c.r[15] = next;
		return STEP_NEXT;
	}
	case ARM_INS_BL:
	case ARM_INS_BLX:
		s->c.r[14] = next | 1;
		return STEP_CALL;
	case ARM_INS_BX: {
		int rn = reg_index(o[0].reg);
		if (rn < 0)
			return STEP_UNKNOWN;
		s->c.r[15] = s->c.r[rn] & ~1u;
		return rn == 14 || (s->c.r[rn] & 0xf0000000u) == 0xf0000000u ? STEP_RETURN
		                                                             : STEP_JUMP;
	}
	case ARM_INS_MRS: {
		if (!s->walk || a->op_count != 2 || o[0].type != ARM_OP_REG ||
		    o[1].type != ARM_OP_SYSREG || o[1].reg != ARM_SYSREG_IPSR)
			return STEP_UNKNOWN;
		int rd = reg_index(o[0].reg);
		if (rd < 0 || rd > 12)
			return STEP_UNKNOWN;
		set_reg(s, rd, s->ipsr, false);
		break;
	}
	case ARM_INS_LDM: {
		/* ldm rn{!}, {list}: increment after, from RAM or flash only. */
		int rn = reg_index(o[0].reg);
		if (!s->walk || rn < 0 || rn == 15)
			return STEP_UNKNOWN;
		uint32_t ea = s->c.r[rn];
		bool loads_base = false;
		for (int i = 1; i < a->op_count; i++) {
			int rr = reg_index(o[i].reg);
			uint32_t v;
			if (rr < 0 || rr == 15 || is_device(s->d, ea) || !ram_read(s, ea, 4, &v))
				return STEP_UNKNOWN;
			set_reg(s, rr, v, false);
			loads_base |= rr == rn;
			ea += 4;
		}
		if (a->writeback && !loads_base)
			set_reg(s, rn, ea, false);
		break;
	}
	case ARM_INS_PUSH:
		for (int i = a->op_count - 1; i >= 0; i--) {
			int rr = reg_index(o[i].reg);
			if (rr < 0)
				return STEP_UNKNOWN;
			s->c.r[13] -= 4;
			ram_write(s, s->c.r[13], s->c.r[rr]);
		}
		break;
	case ARM_INS_POP: {
		bool ret = false;
		for (int i = 0; i < a->op_count; i++) {
			int rr = reg_index(o[i].reg);
			uint32_t v;
			if (rr < 0 || !ram_read(s, s->c.r[13], 4, &v))
				return STEP_UNKNOWN;
			s->c.r[13] += 4;
			set_reg(s, rr, v, false);
			if (rr == 15)
				ret = true;
		}
		if (ret) {
			s->c.r[15] &= ~1u;
			return STEP_RETURN;
		}
		break;
	}
	default:
		return STEP_UNKNOWN;
	}
	s->c.r[15] = next;
	return STEP_NEXT;
}

/*
 * Whether the straight line from a goes back into [lo, hi] by an
 * unconditional branch within a few instructions: the fall-through side of
 * a timeout check (`cmp; bhi timeout; b loop`, as HAL drivers write it).
 */
static bool falls_back(struct ms__dis *d, uint32_t a, uint32_t lo, uint32_t hi)
{
	struct ms__walk w;
	const cs_insn *in;
	ms__walk_from(&w, d, a, 6);
	while ((in = ms__walk_next(&w))) {
		const cs_arm *ar = &in->detail->arm;
		if (in->id == ARM_INS_B) {
			if (ar->cc != ARM_CC_AL && ar->cc != ARM_CC_INVALID)
				return false;
			uint32_t t = (uint32_t)ar->operands[0].imm;
			return t >= lo && t <= hi;
		}
		if (ms__insn_leaves(in) || is_store(in->id))
			return false;
	}
	return false;
}

static void simulate(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t load_pc, uint32_t addr,
                     uint32_t value, unsigned max_insns, bool follow, bool flat,
                     struct ms__run *out)
{
	int depth = 0;
	bool returned = false; /* went back to the caller after the decision */
	bool retested = false; /* the caller branched on the returned value */
	struct sim s;
	memset(&s, 0, sizeof(s));
	memset(out, 0, sizeof(*out));
	ms__cpu_need(cpu, -1);
	s.d = d;
	s.c = *cpu;
	s.c.r[15] = load_pc & ~1u;
	s.lo = load_pc > 64 ? load_pc - 64 : 0;
	s.hi = load_pc;
	s.slo = s.shi = load_pc & ~1u;
	unsigned after = 0; /* instructions since the decision */
	bool first = true;

	for (unsigned n = 0; n < max_insns; n++) {
		uint32_t pc = s.c.r[15];
		if (!first && pc >= s.slo && pc <= s.shi) {
			out->end = returned && !retested ? MS__LEAVE : MS__STAY;
			out->ninsn = n;
			return;
		}
		const cs_insn *in = ms__dis_at(d, pc);
		if (!in) {
			out->end = out->branched ? MS__LEAVE : MS__UNKNOWN;
			out->ninsn = n;
			return;
		}
		struct access acc = {0};
		bool cb, ct;
		enum step st = exec1(&s, in, addr, value, first, &acc, &cb, &ct);
		first = false;
		out->acked |= s.acked;
		if (out->branched)
			after++;
		if (cb && ct) {
			out->branched = true;
			s.decided = true;
			if (returned)
				retested = true;
		}
		switch (st) {
		case STEP_NEXT:
		case STEP_JUMP:
			/*
			 * After the decision, a branch that could go back into the
			 * loop window (a timeout check, a retry counter) is taken
			 * that way: the loop is what the code intends to repeat.
			 */
			if (cb && !ct && out->branched && (!returned || retested) &&
			    (in->id == ARM_INS_B || in->id == ARM_INS_CBZ ||
			     in->id == ARM_INS_CBNZ)) {
				const cs_arm_op *t =
				    &in->detail->arm.operands[in->id == ARM_INS_B ? 0 : 1];
				uint32_t tgt = (uint32_t)t->imm;
				if ((tgt >= s.lo && tgt <= s.hi) ||
				    falls_back(d, (uint32_t)in->address + in->size, s.lo, s.hi)) {
					out->end = MS__STAY;
					out->ninsn = n + 1;
					return;
				}
			}
			break;
		case STEP_CALL:
			if (!out->branched) {
				out->end = MS__UNKNOWN;
				out->ninsn = n;
				return;
			}
			if (follow && depth < 2) {
				uint32_t tgt = call_target(&s, in);
				if (tgt) {
					depth++;
					s.c.r[15] = tgt;
					break;
				}
			}
			skip_call(&s, in);
			break;
		case STEP_RETURN:
			if (depth > 0 && (s.c.r[15] & 0xf0000000u) != 0xf0000000u) {
				depth--; /* back from a followed call */
				break;
			}
			if ((s.c.r[15] & 0xf0000000u) == 0xf0000000u) {
				out->end = MS__LEAVE; /* exception return */
				out->ninsn = n + 1;
				return;
			}
			if (out->branched) {
				/*
				 * Decided inside a helper (`if (!(STATE & RXFULL)) return -1;`):
				 * see whether the caller calls it again (a loop around
				 * the call: stay) before doing anything else.
				 */
				if (follow || flat || returned) {
					out->end = MS__LEAVE;
					out->ninsn = n + 1;
					return;
				}
				returned = true;
				after = 0;
				/* Only a caller that tests what the helper returned retries it. */
				s.taint = 1;
				s.flag_taint = false;
				retested = false;
				s.hi = s.c.r[15] - 1;
				s.lo = s.c.r[15] > 64 ? s.c.r[15] - 64 : 0;
				s.slo = s.c.r[15] - 4;
				s.shi = s.c.r[15] - 1;
				break;
			}
			if (!(s.taint & 1)) {
				/* The function does not return anything derived from the value. */
				out->end = MS__UNKNOWN;
				out->ninsn = n + 1;
				return;
			}
			/* Follow into the caller: its loop surrounds the call. */
			s.hi = s.c.r[15] - 1;
			s.lo = s.c.r[15] > 64 ? s.c.r[15] - 64 : 0;
			s.slo = s.c.r[15] - 4;
			s.shi = s.c.r[15] - 1;
			break;
		case STEP_DEVICE:
			out->ninsn = n;
			out->acc_addr = acc.addr;
			out->acc_write = acc.write;
			out->acc_byte = acc.byte;
			out->acc_size = acc.size;
			out->acc_pc = (uint32_t)in->address;
			out->acc = true;
			out->end = out->branched ? MS__LEAVE : MS__UNKNOWN;
			return;
		case STEP_UNKNOWN:
			out->end = out->branched ? MS__LEAVE : MS__UNKNOWN;
			out->ninsn = n;
			return;
		}
		if (out->branched && after > (follow ? 64u : 24u)) {
			out->end = MS__LEAVE;
			out->ninsn = n + 1;
			return;
		}
	}
	out->end = out->branched ? MS__LEAVE : MS__UNKNOWN;
	out->ninsn = max_insns;
}

bool ms__delay_loop(struct ms__dis *d, uint32_t addr, uint32_t size, int *reg, uint32_t *step,
                    uint32_t *insns, uint32_t *end)
{
	addr &= ~1u;
	if (size < 4 || size > 24)
		return false;
	int counter = -1;
	uint32_t k = 0;
	uint32_t n = 0;
	bool flags_from_counter = false;
	uint32_t cmp_end = 0;
	for (uint32_t a = addr; a < addr + size;) {
		const cs_insn *in = ms__dis_at(d, a);
		if (!in)
			return false;
		const cs_arm *ar = &in->detail->arm;
		const cs_arm_op *o = ar->operands;
		n++;
		bool last = a + in->size >= addr + size;
		switch (in->id) {
		case ARM_INS_NOP:
			break;
		case ARM_INS_SUB:
		case ARM_INS_SUBW: {
			/* subs rX, #k  or  subs rX, rX, #k */
			int r0 = reg_index(o[0].reg);
			const cs_arm_op *im = &o[ar->op_count - 1];
			if (ar->op_count == 3 &&
			    (o[1].type != ARM_OP_REG || reg_index(o[1].reg) != r0))
				return false;
			if (r0 < 0 || r0 > 12 || im->type != ARM_OP_IMM || im->imm <= 0 ||
			    counter >= 0)
				return false;
			counter = r0;
			k = (uint32_t)im->imm;
			flags_from_counter = ar->update_flags;
			cmp_end = 0;
			break;
		}
		case ARM_INS_CMP:
			if (counter < 0 || o[0].type != ARM_OP_REG ||
			    reg_index(o[0].reg) != counter || o[1].type != ARM_OP_IMM ||
			    o[1].imm != 0)
				return false;
			flags_from_counter = true;
			break;
		case ARM_INS_B:
			if (!last || o[0].type != ARM_OP_IMM || (uint32_t)o[0].imm != addr)
				return false;
			if (ar->cc != ARM_CC_NE || !flags_from_counter)
				return false;
			break;
		case ARM_INS_CBNZ:
			if (!last || reg_index(o[0].reg) != counter || (uint32_t)o[1].imm != addr)
				return false;
			break;
		default:
			return false;
		}
		a += in->size;
	}
	if (counter < 0)
		return false;
	*reg = counter;
	*step = k;
	*insns = n;
	*end = cmp_end;
	return true;
}

void ms__simulate(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t load_pc, uint32_t addr,
                  uint32_t value, unsigned max_insns, struct ms__run *out)
{
	simulate(d, cpu, load_pc, addr, value, max_insns, false, false, out);
}

void ms__simulate_follow(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t load_pc,
                         uint32_t addr, uint32_t value, unsigned max_insns, struct ms__run *out)
{
	simulate(d, cpu, load_pc, addr, value, max_insns, true, false, out);
}

void ms__simulate_flat(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t load_pc,
                       uint32_t addr, uint32_t value, unsigned max_insns, struct ms__run *out)
{
	simulate(d, cpu, load_pc, addr, value, max_insns, false, true, out);
}

int ms__device_loads(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t ipsr, uint32_t start,
                     unsigned max_insns, struct ms__devload *out, int cap)
{
	struct sim s;
	int depth = 0, n = 0;

	memset(&s, 0, sizeof(s));
	ms__cpu_need(cpu, -1);
	s.d = d;
	s.c = *cpu;
	s.c.r[15] = start & ~1u;
	s.walk = true;
	s.ipsr = ipsr;
	for (unsigned k = 0; k < max_insns && n < cap; k++) {
		const cs_insn *in = ms__dis_at(d, s.c.r[15]);
		struct access acc = {0};
		bool cb, ct;
		uint32_t poll = 0;

		if (!in)
			return n;
		/*
		 * Every device load is a candidate; the walk goes on as if it
		 * read 0 ("not this event"), to the handler's next test.
		 */
		s.decided = true;
		enum step st = exec1(&s, in, 0, 0, false, &acc, &cb, &ct);
		if (st == STEP_DEVICE && !acc.write) {
			/* The same register may come again with another mask (HAL's per-pin calls). */
			out[n].at = s.c;
			out[n].addr = acc.addr;
			out[n].pc = (uint32_t)in->address;
			n++;
			poll = acc.addr;
			st = exec1(&s, in, poll, 0, true, &acc, &cb, &ct);
		}
		switch (st) {
		case STEP_DEVICE:
			/* A store (an acknowledge, a trigger): the reads come later. */
			s.c.r[15] = (uint32_t)in->address + in->size;
			break;
		case STEP_CALL: {
			uint32_t tgt = call_target(&s, in);

			if (tgt && depth < 3) {
				depth++;
				s.c.r[15] = tgt;
				break;
			}
			skip_call(&s, in);
			break;
		}
		case STEP_RETURN:
			if (depth > 0 && (s.c.r[15] & 0xf0000000u) != 0xf0000000u) {
				depth--;
				break;
			}
			return n;
		case STEP_UNKNOWN:
			return n;
		default:
			break;
		}
	}
	return n;
}

bool ms__run_to_read(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t start,
                     unsigned max_insns, bool (*want)(void *ud, uint32_t addr), void *ud,
                     uint32_t *pc, uint32_t *addr, struct ms__cpu *at)
{
	struct sim s;
	int depth = 0;

	memset(&s, 0, sizeof(s));
	ms__cpu_need(cpu, -1);
	s.d = d;
	s.c = *cpu;
	s.c.r[15] = start & ~1u;
	for (unsigned n = 0; n < max_insns; n++) {
		const cs_insn *in = ms__dis_at(d, s.c.r[15]);
		struct access acc = {0};
		bool cb, ct;

		if (!in)
			return false;
		if (is_load(in->id)) {
			const cs_arm_op *m = mem_op(in);
			uint32_t ea;
			if (m && mem_ea(&s.c, in, m, &ea) && is_device(d, ea) && want(ud, ea)) {
				*at = s.c;
				*addr = ea;
				*pc = (uint32_t)in->address;
				return true;
			}
		}
		/* Other device registers on the way are read through peek (their model values). */
		switch (exec1(&s, in, 0, 0, false, &acc, &cb, &ct)) {
		case STEP_DEVICE:
			if (!acc.write)
				return false; /* a register the models cannot answer */
			/* A store first (an acknowledge, a trigger): the read comes later. */
			s.c.r[15] = (uint32_t)in->address + in->size;
			break;
		case STEP_CALL: {
			uint32_t tgt = call_target(&s, in);

			if (!tgt || depth >= 2)
				return false;
			depth++;
			s.c.r[15] = tgt;
			break;
		}
		case STEP_RETURN:
			if (depth > 0 && (s.c.r[15] & 0xf0000000u) != 0xf0000000u) {
				depth--;
				break;
			}
			return false; /* the handler returned without reading one */
		case STEP_UNKNOWN:
			return false;
		default:
			break;
		}
	}
	return false;
}

void ms__walk_from(struct ms__walk *w, struct ms__dis *d, uint32_t pc, int n)
{
	w->d = d;
	w->a = pc;
	w->left = n;
}

bool ms__walk_after(struct ms__walk *w, struct ms__dis *d, uint32_t pc, int n)
{
	const cs_insn *in = ms__dis_at(d, pc);
	ms__walk_from(w, d, in ? pc + in->size : pc, in ? n : 0);
	return in != NULL;
}

const cs_insn *ms__walk_next(struct ms__walk *w)
{
	if (w->left <= 0)
		return NULL;
	const cs_insn *in = ms__dis_at(w->d, w->a);
	if (!in) {
		w->left = 0;
		return NULL;
	}
	w->left--;
	w->a += in->size;
	return in;
}

bool ms__insn_leaves(const cs_insn *in)
{
	switch (in->id) {
	case ARM_INS_B:
	case ARM_INS_BL:
	case ARM_INS_BLX:
	case ARM_INS_BX:
	case ARM_INS_POP:
	case ARM_INS_CBZ:
	case ARM_INS_CBNZ:
		return true;
	default:
		return false;
	}
}

void ms__insn_use(const cs_insn *in, int reg, struct ms__use *u)
{
	const cs_arm *a = &in->detail->arm;
	memset(u, 0, sizeof(*u));
	for (int k = 0; k < a->op_count; k++) {
		const cs_arm_op *o = &a->operands[k];
		if (o->type == ARM_OP_REG) {
			if (o->reg == reg && (o->access & CS_AC_READ))
				u->read = true;
			else if (o->reg != reg && (o->access & CS_AC_READ))
				u->other_read = true;
			if (o->reg == reg && (o->access & CS_AC_WRITE))
				u->write = true;
		} else if (o->type == ARM_OP_MEM &&
		           ((int)o->mem.base == reg || (int)o->mem.index == reg)) {
			u->addr = true;
		}
	}
}

int ms__poll_candidates(struct ms__dis *d, uint32_t pc, uint32_t cur, uint32_t *c, int cap)
{
	int n = 0;
#define ADD(v)                                                                                     \
	do {                                                                                       \
		uint32_t v_ = (v);                                                                 \
		bool dup_ = false;                                                                 \
		for (int k_ = 0; k_ < n; k_++)                                                     \
			if (c[k_] == v_)                                                           \
				dup_ = true;                                                       \
		if (!dup_ && n < cap)                                                              \
			c[n++] = v_;                                                               \
	} while (0)
	ADD(cur);
	for (int b = 0; b < 32; b++)
		ADD(cur ^ (1u << b));
	ADD(0);
	ADD(0xffffffffu);
	ADD(1);
	/* Multi-bit fields: constants compared against, placed under the masks used. */
	uint32_t imms[16], shifts[8];
	int ni = 0, ns = 0;
	struct ms__walk w;
	const cs_insn *in;
	ms__walk_from(&w, d, pc, 16);
	while ((in = ms__walk_next(&w))) {
		const cs_arm *ar = &in->detail->arm;
		for (int k = 0; k < ar->op_count; k++) {
			if (ar->operands[k].type != ARM_OP_IMM)
				continue;
			uint32_t v = (uint32_t)ar->operands[k].imm;
			if (in->id == ARM_INS_LSL || in->id == ARM_INS_LSR ||
			    in->id == ARM_INS_UBFX) {
				if (ns < 8)
					shifts[ns++] = v & 31;
			} else if (in->id == ARM_INS_CMP || in->id == ARM_INS_TST ||
			           in->id == ARM_INS_AND || in->id == ARM_INS_CMN ||
			           in->id == ARM_INS_TEQ || in->id == ARM_INS_EOR) {
				if (ni < 16)
					imms[ni++] = v;
			}
		}
	}
	for (int i = 0; i < ni; i++) {
		ADD(imms[i]);
		ADD(cur | imms[i]);
		ADD(cur & ~imms[i]);
		for (int j = 0; j < ni; j++)
			ADD((cur & ~imms[j]) | (imms[i] & imms[j]));
		for (int s = 0; s < ns; s++) {
			ADD(imms[i] << shifts[s]);
			ADD(cur | (imms[i] << shifts[s]));
			for (int j = 0; j < ni; j++)
				ADD((cur & ~(imms[j] << shifts[s])) |
				    ((imms[i] & imms[j]) << shifts[s]));
		}
	}
#undef ADD
	return n;
}

/* The register the load at pc writes, or -1 when pc is not a decodable load into a register. */
static int load_dest(struct ms__dis *d, uint32_t pc)
{
	const cs_insn *ld = ms__dis_at(d, pc);
	if (!ld || ld->detail->arm.op_count < 1 || ld->detail->arm.operands[0].type != ARM_OP_REG)
		return -1;
	return ld->detail->arm.operands[0].reg;
}

bool ms__value_used(struct ms__dis *d, uint32_t pc)
{
	int rt = load_dest(d, pc);
	if (rt < 0)
		return true;
	struct ms__walk w;
	ms__walk_after(&w, d, pc, 8);
	const cs_insn *in;
	while ((in = ms__walk_next(&w))) {
		struct ms__use u;
		ms__insn_use(in, rt, &u);
		if (u.read || u.addr)
			return true;
		if (u.write)
			return false;
		const cs_arm *a = &in->detail->arm;
		bool ret = in->id == ARM_INS_BX ||
		    (in->id == ARM_INS_POP && a->op_count &&
		     a->operands[a->op_count - 1].reg == ARM_REG_PC);
		if (in->id == ARM_INS_POP && !ret)
			continue; /* restoring other registers */
		/*
		 * Leaving the straight line: a returned value (r0, r1) or one
		 * passed to a call or a tail call (r0-r3) counts as used.
		 */
		if (ret)
			return rt == ARM_REG_R0 || rt == ARM_REG_R1;
		if (ms__insn_leaves(in))
			return rt >= ARM_REG_R0 && rt <= ARM_REG_R3;
	}
	return true;
}

bool ms__read_modify_write(struct ms__dis *d, uint32_t pc)
{
	const cs_insn *ld = ms__dis_at(d, pc);
	if (!ld)
		return false;
	const cs_arm *la = &ld->detail->arm;
	if (la->op_count < 2 || la->operands[1].type != ARM_OP_MEM)
		return false;
	arm_op_mem m = la->operands[1].mem;
	struct ms__walk w;
	ms__walk_after(&w, d, pc, 8);
	const cs_insn *in;
	while ((in = ms__walk_next(&w)) && !ms__insn_leaves(in)) {
		const cs_arm *ia = &in->detail->arm;
		if ((in->id == ARM_INS_STR || in->id == ARM_INS_STRH || in->id == ARM_INS_STRB) &&
		    ia->op_count >= 2 && ia->operands[1].type == ARM_OP_MEM &&
		    ia->operands[1].mem.base == m.base && ia->operands[1].mem.index == m.index &&
		    ia->operands[1].mem.disp == m.disp)
			return true;
		/* The base register changed: the store (if any) is somewhere else. */
		if (ia->op_count > 0 && ia->operands[0].type == ARM_OP_REG &&
		    ia->operands[0].reg == (int)m.base && (ia->operands[0].access & CS_AC_WRITE))
			return false;
	}
	return false;
}

bool ms__arithmetic_use(struct ms__dis *d, uint32_t pc)
{
	int rt = load_dest(d, pc);
	if (rt < 0)
		return false;
	struct ms__walk w;
	ms__walk_after(&w, d, pc, 8);
	const cs_insn *in;
	while ((in = ms__walk_next(&w))) {
		struct ms__use u;
		ms__insn_use(in, rt, &u);
		if (u.read && u.other_read &&
		    (in->id == ARM_INS_SUB || in->id == ARM_INS_ADD || in->id == ARM_INS_CMP ||
		     in->id == ARM_INS_RSB || in->id == ARM_INS_SBC))
			return true;
		if (u.read || u.write || ms__insn_leaves(in))
			return false;
	}
	return false;
}
