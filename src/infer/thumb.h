/*
 * thumb: instruction-level analysis of Thumb code for peripheral inference.
 *
 * Decoding goes through Capstone (with a per-address cache); on top of it
 * sits a small concrete interpreter for the instructions that appear in
 * status-poll loops, delay loops and interrupt handlers (moves, ALU,
 * shifts, bit-field extracts, compares, loads from RAM/flash, branches,
 * returns). Given the register file at a peripheral load and a candidate
 * value for that load, it runs the code that follows and reports whether
 * execution comes back to the loop (stay) or goes on (leave), and which
 * peripheral access comes next. That is how the status-poll solver reads
 * "the loop's own instructions".
 *
 * Threads: an ms__dis belongs to one ms_infer and is used only on the
 * engine's owner thread.
 */
#ifndef MS_INFER_THUMB_H
#define MS_INFER_THUMB_H

#include <stdbool.h>
#include <stdint.h>

#include <capstone/capstone.h>
#include <unicorn/unicorn.h>

struct ms__dis;

/*
 * Register file for the interpreter: r[13] sp, r[14] lr, r[15] pc. A file
 * made by ms__cpu_lazy reads registers from Unicorn only when they are
 * needed (have: bit i set when r[i] is loaded, bit 16 for the flags), which
 * keeps the common MMIO access cheap; the interpreter loads all of them.
 */
struct ms__cpu {
	uint32_t r[16];
	bool n, z, c, v;
	uc_engine *uc;
	uint32_t have;
};

/* Start a lazily loaded register file. */
void ms__cpu_lazy(uc_engine *uc, struct ms__cpu *cpu);

/* Make sure register i (or all, with i < 0) of a lazy file is loaded. */
void ms__cpu_need(const struct ms__cpu *cpu, int i);

enum ms__end {
	MS__UNKNOWN = 0, /* hit something we do not interpret before any decision */
	MS__STAY, /* came back into the loop */
	MS__LEAVE, /* went on past the loop */
};

struct ms__run {
	enum ms__end end;
	unsigned ninsn;
	bool branched; /* a conditional branch was evaluated */
	bool acc; /* a peripheral access followed (after leaving) */
	bool acc_write;
	bool acc_byte; /* the write stores a byte/halfword loaded from memory (a buffer) */
	bool acked; /* the polled register itself was written on the way (an event cleared) */
	uint32_t acc_addr;
	unsigned acc_size;
	uint32_t acc_pc;
};

/* Open a decoder reading code through uc. NULL when Capstone fails. */
struct ms__dis *ms__dis_new(uc_engine *uc);
void ms__dis_free(struct ms__dis *d);

/* Decoded instruction at addr (Thumb bit ignored) or NULL; owned by the cache. */
const cs_insn *ms__dis_at(struct ms__dis *d, uint32_t addr);

/* "ldr r2, [r3, #8]" into buf. */
void ms__dis_text(struct ms__dis *d, uint32_t addr, char *buf, size_t cap);

/* Read the live register file from Unicorn. */
void ms__cpu_read(uc_engine *uc, struct ms__cpu *cpu);

/*
 * Find the instruction that performs a data access to addr (is_write,
 * size bytes) in the block that starts at block_pc, starting the search at
 * *cursor (an address inside the block, or 0 for the block start) and
 * evaluating effective addresses with the live registers. On success
 * stores its address in *pc, moves *cursor past it and returns true.
 */
bool ms__locate(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t block_pc, uint32_t *cursor,
                bool is_write, uint32_t addr, unsigned size, uint32_t *pc);

/*
 * Run from the load at load_pc (which reads addr) with the load returning
 * value, on a copy of cpu. Peripheral accesses other than stores to addr
 * itself end the run. max_insns bounds the work.
 */
void ms__simulate(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t load_pc, uint32_t addr,
                  uint32_t value, unsigned max_insns, struct ms__run *out);

/*
 * The same, following calls made after the decision (two levels) instead
 * of skipping them, to find the device access a handler makes in a helper
 * (`if (SR & RXNE) receive_char(dev)`). Used to name what comes next, not
 * to decide between staying and leaving (a callee that waits would hide
 * the loop's own back branch).
 */
void ms__simulate_follow(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t load_pc,
                         uint32_t addr, uint32_t value, unsigned max_insns, struct ms__run *out);

/*
 * The same, ending at the first return after the decision instead of
 * watching whether the caller calls the helper again. A helper that is
 * called once per byte (`twi_write_byte` returning 0 when sent) looks like
 * a retry loop from the caller; when every value seems to stay, the
 * solver asks again with this.
 */
void ms__simulate_flat(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t load_pc,
                       uint32_t addr, uint32_t value, unsigned max_insns, struct ms__run *out);

/* A device load met while walking a handler, with the register file just before it. */
struct ms__devload {
	uint32_t addr, pc;
	struct ms__cpu at;
};

/*
 * Walk an interrupt handler from start (its entry, with cpu as the
 * register file and ipsr its exception number, for wrappers that read
 * IPSR) and collect its device loads in order, at most cap (a register
 * read twice is listed twice: HAL tests EXTI PR once per pin with another
 * mask): the walk follows calls three levels deep, steps over device
 * stores and goes on after each load as if it read 0 (no event there), so
 * a handler that tests several flags in turn (EXTI9_5, a loop over GPIOTE
 * channels) yields each of them. Ends at the handler's return, an
 * instruction it does not interpret or max_insns. Returns the count; run
 * ms__simulate from an entry's pc with its at and addr to see what the
 * handler does with a value.
 */
int ms__device_loads(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t ipsr, uint32_t start,
                     unsigned max_insns, struct ms__devload *out, int cap);

/*
 * Let the interpreter read a device register without side effects (the
 * model's current value) before the decision: `sr = SR; cr = CR1; if ...`
 * reads a second register first. peek returns false when it has no value.
 * after: the read comes after the decision (only asked when
 * ms__dis_peek_after is on: `if ((SR & TXE) && (CR1 & TXEIE))` reads the
 * enable after the status test); the callback answers only for registers
 * that cannot be what the decision announces (configuration, not data).
 */
void ms__dis_set_peek(struct ms__dis *d,
                      bool (*peek)(void *ud, uint32_t addr, bool after, uint32_t *v), void *ud);
void ms__dis_peek_after(struct ms__dis *d, bool on);

/*
 * Answer every register peek with all bits set: "what would the code do
 * if every enable were on" (a receive path that exists but is switched
 * off shows up as the difference from the real values).
 */
void ms__dis_peek_all_set(struct ms__dis *d, bool on);

/*
 * Delay loop test for the block at addr: a block that branches back to its
 * own start, only touches registers (no loads, stores or calls) and counts
 * one register down (subs rX, #k ... bne / cmp). On success stores the
 * counter register index, the step, the number of instructions per
 * iteration and the value at which the loop ends (usually 0), and returns
 * true.
 */
bool ms__delay_loop(struct ms__dis *d, uint32_t addr, uint32_t size, int *reg, uint32_t *step,
                    uint32_t *insns, uint32_t *end);

/* Whether the interpreter treats addr as a device (not RAM/flash). */
bool ms__is_device_addr(uint32_t addr);

/*
 * Add a test for device addresses outside the fixed windows (pages the
 * owner mapped with uc_mmio_map): the interpreter must never uc_mem_read
 * them, their callbacks would run inside the analysis.
 */
void ms__dis_set_device_test(struct ms__dis *d, bool (*is_dev)(void *ud, uint32_t addr), void *ud);

/*
 * Dry run of an interrupt handler to its first read of a device register
 * for which want() is true (the caller sets up the exception frame in
 * cpu); other device registers on the way are read through the peek
 * callback (their model values); calls are followed two deep. On success
 * stores that load's pc, address and the register file there (for
 * ms__simulate*) and returns true; false when the handler returns first,
 * reads a register with no model value or does something not interpreted.
 * Nothing is executed for real.
 */
bool ms__run_to_read(struct ms__dis *d, const struct ms__cpu *cpu, uint32_t entry,
                     unsigned max_insns, bool (*want)(void *ud, uint32_t addr), void *ud,
                     uint32_t *pc, uint32_t *addr, struct ms__cpu *at);

/*
 * A straight-line walk over at most n instructions, from pc on
 * (ms__walk_from) or after the one at pc (ms__walk_after, false when pc
 * does not decode): the loop the inference scanners share ("the next few
 * instructions after this load"). ms__walk_next returns NULL at the end
 * or where decoding fails; it does not follow branches.
 */
struct ms__walk {
	struct ms__dis *d;
	uint32_t a;
	int left;
};
void ms__walk_from(struct ms__walk *w, struct ms__dis *d, uint32_t pc, int n);
bool ms__walk_after(struct ms__walk *w, struct ms__dis *d, uint32_t pc, int n);
const cs_insn *ms__walk_next(struct ms__walk *w);

/* Whether in leaves the straight line: branch, call, return, compare-and-branch. */
bool ms__insn_leaves(const cs_insn *in);

/*
 * How in uses the Capstone register reg: read or written as a register
 * operand, used in an address (base or index), and whether it reads any
 * other register operand.
 */
struct ms__use {
	bool read, write, addr, other_read;
};
void ms__insn_use(const cs_insn *in, int reg, struct ms__use *u);

/*
 * Candidate values for a register polled at pc whose model holds cur: cur,
 * each single-bit flip, 0, ~0, 1, and the constants the loop compares or
 * masks with, placed under the masks and shifts used (multi-bit fields
 * such as "SWS must equal SW"). Stores at most cap in c, returns the count.
 */
int ms__poll_candidates(struct ms__dis *d, uint32_t pc, uint32_t cur, uint32_t *c, int cap);

/*
 * Whether the value loaded at pc is used: a later instruction reads its
 * destination register before anything overwrites it. A discarded read
 * (`(void)I2C->SR2`, done for its side effect) is not received data.
 */
bool ms__value_used(struct ms__dis *d, uint32_t pc);

/*
 * Whether the load at pc is the first half of a read-modify-write: a store
 * through the same base register and offset follows within a few
 * instructions, before any branch. Configuration registers are read that
 * way after a ready poll (PLLRDY, then CFGR |= SW); data registers are not.
 */
bool ms__read_modify_write(struct ms__dis *d, uint32_t pc);

/*
 * Whether the value loaded at pc is used as a number rather than as flags:
 * subtracted, added or compared with another register (elapsed-time
 * arithmetic), within the next few instructions. Flags are tested against
 * immediates (tst, ands, lsls, ubfx).
 */
bool ms__arithmetic_use(struct ms__dis *d, uint32_t pc);

/* Unicorn register id for interpreter index 0..15. */
int ms__uc_reg(int i);

#endif
