/*
 * qemu: the QEMU backend (one supervised qemu-system-* child per session).
 * The backend itself is the vtable ms_backend_qemu (see backend.h); this
 * header exposes the pure text parsers inside qemu.c so that unit tests can
 * feed them hostile input.
 *
 * Thread safety: the parsers are pure and callable from any thread.
 */
#ifndef MS_QEMU_H
#define MS_QEMU_H

#include <stddef.h>
#include <jansson.h>

#include "backend/backend.h"

extern const struct ms_backend ms_backend_qemu;

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
