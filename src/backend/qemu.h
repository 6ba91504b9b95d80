/*
 * qemu: the QEMU backend (one supervised qemu-system-* child per session).
 * The backend itself is the vtable ms_backend_qemu (see backend.h). The
 * ms__ declarations below are internal to src/backend/qemu*.c: the
 * capability cache and board_config resolution (qemu_caps.c) used by the
 * instance code (qemu.c), and the pure text parsers, exposed so that unit
 * tests can feed them hostile input.
 *
 * Thread safety: the parsers and helpers are pure; the capability cache is
 * filled by ms__qemu_caps_init before any session exists and read-only
 * afterwards (see qemu_caps.c).
 */
#ifndef MS_QEMU_H
#define MS_QEMU_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "backend/backend.h"

extern const struct ms_backend ms_backend_qemu;

/* One installed qemu-system-* binary and what it answered. */
struct ms__qemu_bin {
	char path[PATH_MAX];
	char arch[32]; /* suffix of qemu-system-<arch> */
	json_t *machines; /* [{name, description, alias_of?}] */
	json_t *machine_names; /* [name] */
	json_t *cpus; /* [name] */
	json_t *devices; /* {peripherals, bus_types} */
};

/* A board_config resolved against the installed binaries. */
struct ms__qemu_resolved {
	const struct ms__qemu_bin *bin; /* points into the cache; lives until fini */
	char machine[64]; /* QEMU's name (aliases resolved) */
	char cpu[64]; /* "" for the board's default */
	char memory[32]; /* "" or a -m value such as "256M" */
	bool network; /* keep QEMU's default NIC */
	bool m_profile; /* a Cortex-M board (no firmware: lockup at once) */
	bool no_restore; /* QEMU 7.2 aborts on loadvm for this board */
};

/*
 * Probe the binary `want` (a name looked up in PATH, or a path) and every
 * other qemu-system-* beside it and in /usr/bin. 500 when `want` is
 * missing or does not answer.
 */
int ms__qemu_caps_init(const char *want, struct ms_err *e);
void ms__qemu_caps_fini(void);

/* The capability object {backend, boards, processors, ...}; new reference. */
json_t *ms__qemu_caps_json(void);

/*
 * Resolve board_config (and, when not NULL, the architecture of the program
 * to run) to a binary, machine and options: 400 with the closest valid
 * names for unknown boards and CPUs, 400 for bad memory/network values or
 * a program no installed binary runs on that board.
 */
int ms__qemu_resolve(json_t *board_config, const char *prog_arch, struct ms__qemu_resolved *r,
                     struct ms_err *e);
bool ms__qemu_bin_fits_arch(const struct ms__qemu_bin *b, const char *arch);

/*
 * Run argv (never through a shell) with stdin from /dev/null and capture its
 * standard output (and standard error when with_stderr) into a
 * NUL-terminated heap buffer *out the caller frees; at most 16 MiB, killed
 * after timeout_ms. Returns 0 (then *wstatus is the wait status) or -errno.
 */
int ms__qemu_run_capture(char *const argv[], bool with_stderr, int timeout_ms, char **out,
                         int *wstatus);

/*
 * The line of QEMU's stderr that explains a failure: the last one QEMU
 * wrote itself ("qemu-system-arm: ...", "qemu: fatal: ...") rather than a
 * register dump; warnings never count. "" when there is none.
 */
void ms__qemu_last_line(const char *text, size_t len, char *buf, size_t cap);

/* Find an executable in PATH (or check a path with a '/'); 0 or -errno. */
int ms__qemu_find_in_path(const char *name, char *out, size_t cap);

/*
 * Parse the output of HMP "info mtree -f": the flat view of the first CPU's
 * address space ("cpu-memory-0"), or of system memory ("memory") when there
 * is none, into a new array of
 * {name, base, size, kind} where base and size are "0x..." strings and kind
 * is ram, rom, io or unimplemented (QEMU's unimplemented-device regions are
 * i/o regions at negative priority). Adjacent pieces of one region are
 * merged. Malformed lines are skipped. Never returns NULL.
 */
json_t *ms__qemu_parse_mtree(const char *text);

/*
 * Parse "-machine help" / "-cpu help" output into a new array of names
 * (for machines: objects {name, description, alias_of?}). Never NULL.
 */
json_t *ms__qemu_parse_machines(const char *text);
json_t *ms__qemu_parse_cpus(const char *text);

/*
 * Parse "-device help" into {peripherals: [{name, bus, category}],
 * bus_types: [names]}. Never NULL.
 */
json_t *ms__qemu_parse_devices(const char *text);

/*
 * Up to max names from the array of strings `names` closest to `word`
 * (edit distance, prefix matches first), joined with ", " into buf.
 */
void ms__qemu_closest(const char *word, json_t *names, size_t max, char *buf, size_t cap);

#endif
