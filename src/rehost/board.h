/*
 * board: board descriptions for the rehost engine, read from YAML data
 * files (boards/<name>.yaml), and the list of CPUs the engine emulates.
 *
 * A board file names the CPU, its clock, the number of external
 * interrupts, memory regions and the peripherals modelled by hand:
 *
 *   name: mps2-an385
 *   cpu: cortex-m3
 *   cpu_hz: 25000000
 *   irqs: 32
 *   memory:
 *     - {name: flash, base: 0x00000000, size: 0x400000}
 *     - {name: ram, base: 0x20000000, size: 0x400000}
 *     - {name: boot, base: 0x08000000, alias: flash}     # alias of another region
 *   devices:
 *     - {type: cmsdk-uart, name: uart0, base: 0x40004000, irqs: [0, 1, 12], console: true}
 *     - {type: cmsdk-timer, name: timer0, base: 0x40000000, irqs: [8]}
 *
 * Adding a board is adding a file. The directory is $MS_BOARDS_DIR, else
 * ./boards, else the boards/ folder next to the executable's parent.
 *
 * Threads: pure functions, any thread.
 */
#ifndef MS_RH_BOARD_H
#define MS_RH_BOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "core/err.h"

#define MS_RH_BOARD_MAX_MEM 16
#define MS_RH_BOARD_MAX_DEV 24

struct ms_rh_board_mem {
	char name[32];
	uint32_t base;
	uint32_t size;
	bool readonly;
	char alias[32]; /* "" or the region this one mirrors */
};

struct ms_rh_board_dev {
	char type[32];
	char name[32];
	uint32_t base;
	int irqs[4];
	int n_irqs;
	bool console;
};

struct ms_rh_board {
	char name[64]; /* "" for a CPU-only machine */
	char cpu[32];
	uint64_t cpu_hz;
	uint32_t irqs;
	struct ms_rh_board_mem mem[MS_RH_BOARD_MAX_MEM];
	int n_mem;
	struct ms_rh_board_dev dev[MS_RH_BOARD_MAX_DEV];
	int n_dev;
};

/* The CPU names we emulate ("cortex-m0", ...); NULL-terminated. */
extern const char *const ms_rh_cpus[];

/* UC_CPU_ARM_* for a name, or -1. Sets *fpu for cores with a single-precision FPU. */
int ms_rh_cpu_model(const char *name, bool *fpu, bool *v6m);

/* Directory holding board files (see above). */
const char *ms_rh_boards_dir(void);

/* Load boards/<name>.yaml. 404 "board_not_found", 400 "bad_board". */
int ms_rh_board_load(const char *name, struct ms_rh_board *b, struct ms_err *e);

/* Parse a board description from YAML text (name used in messages). */
int ms_rh_board_parse(const char *yaml, size_t len, const char *name, struct ms_rh_board *b,
                      struct ms_err *e);

/* Names of every board file, as a JSON array (new reference). */
json_t *ms_rh_board_list(void);

/*
 * Generic YAML (block or flow, scalars, sequences, mappings) to JSON:
 * scalars that look like integers (decimal or 0x hex) become integers,
 * true/false booleans, the rest strings. 400 "bad_yaml" with line:col.
 */
int ms_rh_yaml_to_json(const char *yaml, size_t len, const char *name, json_t **out,
                       struct ms_err *e);

#endif
