/*
 * infer: peripheral inference for the rehost engine (issue 4, the second seed).
 *
 * When firmware touches a peripheral address that no model covers, the
 * engine's UC_HOOK_MEM_UNMAPPED callback hands the access to
 * ms_infer_on_unmapped(). This module captures the context (PC, the
 * instruction through Capstone, registers, recent MMIO history), chooses a
 * region size and register models, maps the region with uc_mmio_map() and
 * returns true so that Unicorn retries the access against the new device.
 * From then on the device's registers are served by our models: they
 * remember writes, honour reset values, set/clear alias pairs and
 * write-1-to-clear flags, answer status polls with a value that leaves the
 * polling loop (read from the loop's own instructions), feed data registers
 * from the session's input stream and send transmit registers to the
 * console. Interrupts are raised only when enabled in the NVIC and in the
 * peripheral and when their event has happened.
 *
 * The boundary: the engine (src/rehost/) owns the CPU, memory, NVIC, SCB,
 * SysTick, virtual time, the console and input streams and the MMIO log
 * file. It gives this module a struct ms_infer_host of callbacks and the
 * uc_engine. This module owns every region it maps.
 *
 * Threads: every function except the JSON views and ms_infer_patch() must
 * be called from the engine's owner thread (the one running uc_emu_start),
 * because they touch the uc_engine. ms_infer_peripherals(),
 * ms_infer_mmio_recent(), ms_infer_export(), ms_infer_stats() and
 * ms_infer_patch() may be called from any thread: an internal mutex guards
 * the models, so the HTTP layer can read and correct them while the
 * firmware runs. Host callbacks are only ever called from the owner thread,
 * and never with that internal mutex held by another thread waiting on the
 * engine, so a host callback may take engine locks.
 *
 * Ownership: ms_infer_new() returns an object freed by ms_infer_free().
 * Functions returning json_t * return a new reference the caller decrefs.
 * json_t * arguments are borrowed unless said otherwise.
 */
#ifndef MS_INFER_H
#define MS_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <unicorn/unicorn.h>

#include "core/err.h"

struct ms_infer;

/*
 * What the engine provides. Every callback may be NULL except now_ns; a
 * NULL callback disables the feature that needs it (no console: transmit
 * bytes are dropped; no input: data-ready stays clear; no irq_*: no
 * interrupts are raised). All are called on the engine's owner thread.
 */
struct ms_infer_host {
	void *ud;

	/* Bytes the firmware transmitted on an inferred UART. */
	void (*console_out)(void *ud, const uint8_t *bytes, size_t n);

	/*
	 * The session's input stream (console text, --input, --input-text).
	 * input_avail returns how many bytes can be taken now; input_get takes
	 * one (0..255) or returns -1 when none is left.
	 */
	size_t (*input_avail)(void *ud);
	int (*input_get)(void *ud);

	/*
	 * NVIC. irq is the external interrupt number (0 = the first vector
	 * after SysTick, i.e. exception number 16 + irq). irq_set_pending
	 * marks it pending (level semantics are ours: we call it again while
	 * the line stays asserted). irq_enabled reports NVIC ISER.
	 */
	void (*irq_set_pending)(void *ud, int irq);
	bool (*irq_enabled)(void *ud, int irq);

	/* Current vector table address (VTOR), to find interrupt handlers. */
	uint32_t (*vtor)(void *ud);

	/* Virtual time in nanoseconds (derived from the instruction count). */
	uint64_t (*now_ns)(void *ud);

	/*
	 * A decision event. type is e.g. "infer.region", "infer.register",
	 * "infer.poll", "infer.irq", "infer.delay", "infer.llm"; data is an
	 * object {addr, pc, insn, model, confidence, reason, ...}, borrowed
	 * (json_incref to keep it). The engine puts it on the session's
	 * event stream and in --mmio-log.
	 */
	void (*event)(void *ud, const char *type, json_t *data);

	/*
	 * Every access served by an inferred device, for the engine's MMIO
	 * log (--mmio-log). is_write: value written; else value returned.
	 */
	void (*mmio)(void *ud, uint64_t pc, uint64_t addr, unsigned size, bool is_write,
	             uint64_t value);
};

enum ms_infer_mode {
	MS_INFER_RULES = 0, /* default: offline, deterministic */
	MS_INFER_SVD, /* rules + SVD register descriptions */
	MS_INFER_LLM, /* rules (+ SVD if given) + LLM for low-confidence registers */
};

struct ms_infer_opts {
	enum ms_infer_mode mode;

	/*
	 * SVD files (mode svd, optional in llm). With several, the one whose
	 * peripheral base addresses match what the firmware touches is used.
	 */
	const char *const *svd_paths;
	size_t n_svd;

	/* Device map (ms_infer_export format) to import at start; may be NULL. */
	const char *models_path;

	/*
	 * LLM mode. base_url is an OpenAI-compatible API root
	 * (".../v1"; "/chat/completions" is appended). key may be NULL
	 * (then $MS_LLM_API_KEY / $OPENAI_API_KEY are tried). cache_dir holds
	 * answers keyed by firmware hash and access context (NULL: no cache).
	 * timeout_ms per call (0: 20000); budget: max calls per session
	 * (0: 32).
	 */
	const char *llm_base_url;
	const char *llm_model;
	const char *llm_key;
	const char *llm_cache_dir;
	int llm_timeout_ms;
	int llm_budget;

	/* Identifies the firmware for the LLM cache (e.g. sha256 hex); may be NULL. */
	const char *firmware_hash;

	/* CPU clock, for cycle counters such as DWT CYCCNT (0: 16 MHz). */
	uint64_t cpu_hz;

	/* Skip pure delay loops in ms_infer_on_block (default on: set true to disable). */
	bool no_delay_skip;
};

/*
 * Create the inference state for one machine. Loads SVDs and the models
 * file (errors: 400 "bad_svd" / "bad_models" in *e, returns NULL). Devices
 * from a models file are mapped immediately. host is copied.
 */
struct ms_infer *ms_infer_new(uc_engine *uc, const struct ms_infer_host *host,
                              const struct ms_infer_opts *opts, struct ms_err *e);

/* Unmap nothing (the uc_engine is closed by its owner) and free everything. */
void ms_infer_free(struct ms_infer *inf);

/*
 * True if addr lies in a window this module serves: 0x40000000-0x5FFFFFFF,
 * the PPB outside the SCS (0xE0000000-0xE000DFFF, 0xE000F000-0xE00FFFFF),
 * vendor system space 0xE0100000-0xFFFFFFFF, external controller
 * register space such as 0xA0000000-0xA0000FFF (FSMC/FMC registers), and
 * the page at 0x10000000 (Nordic FICR when read first; mapped as plain
 * memory when written first, e.g. STM32F4 CCM).
 */
bool ms_infer_is_peripheral_addr(uint64_t addr);

/*
 * Call from UC_HOOK_MEM_UNMAPPED for every unmapped access (type is the
 * uc_mem_type: UC_MEM_READ_UNMAPPED, UC_MEM_WRITE_UNMAPPED,
 * UC_MEM_FETCH_UNMAPPED). Returns true when a device now covers addr (the
 * hook must return true so the access is retried). Returns false when the
 * address is not ours (not a peripheral window, or a fetch): the engine
 * then applies its own policy (lazy memory, or a fault).
 */
bool ms_infer_on_unmapped(struct ms_infer *inf, int type, uint64_t addr, int size, int64_t value);

/*
 * The block the CPU is executing. An inferred device's callback does not
 * get the PC of the access from Unicorn (it is stale inside a block), so
 * this module finds the instruction by walking the current block; the
 * engine keeps this slot current from its UC_HOOK_BLOCK with two stores,
 * which is cheaper than a call per block: pc = the block's address,
 * serial incremented (ms_infer_on_block does both itself). serial 0 means
 * no block is known yet (after reset).
 */
struct ms_infer_block {
	uint32_t pc;
	uint64_t serial;
};

/* The slot the engine writes at every block start; lives as long as inf. */
struct ms_infer_block *ms_infer_block_slot(struct ms_infer *inf);

/*
 * Whether ms_infer_on_block has work for the block at addr (size bytes):
 * true for a pure delay loop (a register-only countdown) it would skip.
 * The answer depends only on the code, so the engine asks once per block
 * and caches it.
 */
bool ms_infer_block_has_work(struct ms_infer *inf, uint32_t addr, uint32_t size);

/*
 * Call from the engine's UC_HOOK_BLOCK (before it accounts the block's
 * instructions) for the blocks ms_infer_block_has_work accepted; calling
 * it for any other block is harmless. Updates the block slot and skips
 * a pure delay loop by setting its counter so the loop ends on this
 * pass. Returns the number of guest instructions skipped, which the
 * engine adds to its instruction count (virtual time), 0 when nothing was
 * skipped.
 */
uint64_t ms_infer_on_block(struct ms_infer *inf, uint64_t addr, uint32_t size);

/*
 * Advance inferred timers and evaluate interrupt lines: raise an IRQ when
 * enabled in the NVIC and in the peripheral and its event has happened
 * (input arrived, transmit empty, timer period elapsed). Call at least at
 * every time slice boundary and after input arrives; deterministic for a
 * given sequence of now_ns values.
 */
void ms_infer_tick(struct ms_infer *inf, uint64_t now_ns);

/*
 * Virtual time of the next event of an inferred device (timer expiry), or
 * UINT64_MAX when none is scheduled. WFI/WFE may jump the clock there.
 */
uint64_t ms_infer_next_event_ns(struct ms_infer *inf);

/*
 * Machine reset (SYSRESETREQ, API reset): every register back to its
 * reset value, input/timer state cleared; learned models are kept.
 */
void ms_infer_reset(struct ms_infer *inf);

/*
 * Snapshot of the run-time state (register values, timers, pending
 * events) as JSON; restore puts it back. Learned models that appeared
 * after the snapshot stay mapped (they are knowledge, not machine state)
 * but their registers return to reset values. Restore errors: 400.
 */
json_t *ms_infer_state_save(struct ms_infer *inf);
int ms_infer_state_load(struct ms_infer *inf, json_t *state, struct ms_err *e);

/*
 * Device map (the seed's device_map.json): every peripheral with base,
 * size, source, irq and its registers with their models. Import maps the
 * devices it describes (a later session then needs no inference for
 * them); validation errors (400 "bad_models") leave the state unchanged.
 *
 * Format (numbers may be JSON integers or "0x.." strings; unknown keys are
 * ignored; what export writes, import reads):
 *   {"format": "machineserver-device-map", "version": 1,
 *    "peripherals": [
 *      {"base": "0x40002000",        4 KiB aligned, in a served window
 *       "size": 4096, "map_size": 4096, "name": "UART0",
 *       "source": "rules"|"svd"|"llm"|"user",
 *       "irq": 2 | null,             external interrupt number
 *       "irqs": [{"offset": "0x800", "irq": 37}],
 *                                    a page holding several peripherals
 *                                    at 1 KiB steps: each block's line
 *       "timer": {"period_ns": N, "irq": 28},  an inferred periodic source
 *       "uart": true,                its transmit register reaches the console
 *       "registers": [
 *         {"offset": "0x51c",        from base, < 0x1000
 *          "name": "UART0.TXD", "category": "control"|"status"|"data"|"control+status",
 *          "model": "memory"|"status"|"rx"|"tx"|"w1c"|"set"|"clear"|"bsrr"|"counter"|"const",
 *          "reset": "0x0", "value": "0x0", "confidence": 90, "source": "rules",
 *          "rx": true, "tx": true,   data register fed by / sent to the console
 *          "dma_tx": true,           a DMA pointer whose transfers (started by
 *                                    a write of 1, count in the next register)
 *                                    go to the console
 *          "rx_mask", "rx_ready", "rx_notready", "rx_data":
 *                                    bits that follow the input, their value
 *                                    with and without input, and the offset
 *                                    of the data register they announce
 *          "w1c_mask", "alias_of":   write-1-to-clear bits; target offset
 *                                    of a set/clear alias
 *          "polls": [{"pc": "0x1d50e", "kind": "ready"|"rx"|"tx"|"branch"|"stuck"|"none",
 *                     "mask": "0x1", "value": "0x1", "source": "rules"}]
 *                                    the answer remembered per (PC, register)
 *         }]}]}
 * Informational keys (reads, writes, reason, addr) are written but not read.
 */
json_t *ms_infer_export(struct ms_infer *inf);
int ms_infer_import(struct ms_infer *inf, json_t *map, struct ms_err *e);

/*
 * For GET /api/v1/sessions/:id/peripherals: array of peripherals {base,
 * size, source, irq, registers:[{offset, name, category, model, value,
 * reset, confidence, reads, writes}]}.
 */
json_t *ms_infer_peripherals(struct ms_infer *inf);

/*
 * Correct one register by hand (PATCH). patch: {"addr": N, and any of
 * "model", "reset", "value", "name", "category", "ready_mask",
 * "ready_value"}. Errors: 404 unknown register, 400 bad field.
 */
int ms_infer_patch(struct ms_infer *inf, json_t *patch, struct ms_err *e);

/*
 * An external event (the backend's inject_event, `machineserver run
 * --events`): {"kind": "gpio", "addr": N, "mask": M, "value": V, "irq": I}.
 * Sets the masked bits of the input register at addr (a pin level the
 * firmware reads; the firmware's writes and the poll solver leave them
 * alone). With "irq": the event's pending flag is found in that line's
 * handler (among the registers it reads and the bits it tests: the pin's
 * bit, else the flag whose interrupt is enabled; see evlink_find) and set,
 * reading 1 until the firmware acknowledges it (write 1 or write 0,
 * learned from its first write); the interrupt is raised when it is
 * enabled in the NVIC and
 * in the peripheral (an SVD enable/mask register by name, else the
 * register whose bit the firmware acted on last). An event whose
 * interrupt is held back still returns 0: its "infer.inject" decision
 * event says raised false and why. When no flag is found in the handler,
 * the interrupt is raised and its branches on event bits take their event
 * side once. An input register in a page the firmware has not touched yet
 * gets its device then. Errors: 400 bad event, 404 addr outside the
 * windows this module serves (or mapped by the engine), 409 irq not
 * enabled in the NVIC (nothing changes). Owner thread only (it
 * may raise an interrupt through the host).
 */
int ms_infer_inject(struct ms_infer *inf, json_t *ev, struct ms_err *e);

/*
 * The same, also returning the decision (the "infer.inject" event's data:
 * {addr, mask, value, irq, raised, reason, flag}) in *decision, a new
 * reference the caller decrefs (NULL on error or when decision is NULL),
 * so that an API can answer whether the interrupt was raised.
 */
int ms_infer_inject_ex(struct ms_infer *inf, json_t *ev, json_t **decision, struct ms_err *e);

/*
 * Recent accesses to inferred devices, oldest first: entries with
 * seq >= from, at most limit. {"next": seq, "entries":[{seq, pc, addr,
 * size, dir:"r"|"w", value}]}. The ring keeps the last 4096.
 */
json_t *ms_infer_mmio_recent(struct ms_infer *inf, uint64_t from, size_t limit);

/*
 * Counters: peripherals, registers, decisions by kind, fault-to-resume
 * latency (median, max, in ns of host time), llm calls.
 */
json_t *ms_infer_stats(struct ms_infer *inf);

#endif
