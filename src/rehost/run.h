/*
 * run: "machineserver run", the one-shot runner (see run.c for the exit
 * codes and the meaning of --timeout on each backend).
 * Threads: the calling thread.
 */
#ifndef MS_RH_RUN_H
#define MS_RH_RUN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Entry point for "machineserver run ..." (argv[0] is "run"). Returns the exit code. */
int ms_run_main(int argc, char **argv);

/*
 * Decode C escapes (\r \n \t \0 \\ \" \' \xNN) into a new NUL-terminated
 * buffer the caller frees; *out_len excludes the NUL. NULL for a bad or
 * truncated escape.
 */
char *ms_run_unescape(const char *s, size_t *out_len);

/*
 * --events FILE: external events injected at points of virtual time. One
 * JSON object per line, the body of the daemon's
 * POST /api/v1/sessions/:id/inject plus "at_us", the virtual time in
 * microseconds (derived from the instruction count, so a run is
 * deterministic):
 *   {"at_us": 1000, "kind": "gpio", "addr": "0x40010808", "mask": 1,
 *    "value": 1, "irq": 6}
 * Blank lines and lines starting with '#' are skipped. Events must be in
 * time order. ev is the line's object without "at_us" (owned by the list);
 * line is its 1-based line number in the file, or for an event given with
 * --inject, 0 with spec its 1-based position among the --inject options.
 */
struct ms_run_event {
	uint64_t at_us;
	json_t *ev;
	int line;
	int spec;
};

struct ms_run_events {
	struct ms_run_event *v;
	size_t n;
};

/* Limits: a line, the number of events, the latest time (about 11.6 days). */
#define MS_RUN_EVENT_LINE_MAX 4096
#define MS_RUN_EVENTS_MAX 100000
#define MS_RUN_EVENT_AT_US_MAX 1000000000000ull

/*
 * Parse len bytes of events text; name is used in messages. Returns 0 and
 * fills *out (freed with ms_run_events_free), or -1 with "NAME:LINE: what
 * is wrong" in err (cap bytes) and *out empty.
 */
int ms_run_events_parse(const char *text, size_t len, const char *name, struct ms_run_events *out,
                        char *err, size_t cap);

/* The same for a file (at most 16 MiB). */
int ms_run_events_load(const char *path, struct ms_run_events *out, char *err, size_t cap);

/*
 * --inject AT_US:JSON (repeatable): one event on the command line, e.g.
 * 1000:{"kind":"gpio","addr":"0x40010808","mask":1,"value":1,"irq":6}.
 * Appends it to *evs as the index-th --inject (1-based) and keeps *evs in
 * time order (events at the same time: file lines first, then --inject
 * options in their order). Returns 0, or -1 with "--inject #INDEX: what
 * is wrong" in err.
 */
int ms_run_events_add_spec(struct ms_run_events *evs, const char *spec, int index, char *err,
                           size_t cap);

void ms_run_events_free(struct ms_run_events *evs);

#endif
