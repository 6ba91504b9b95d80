/*
 * run: "machineserver run", the one-shot runner (see run.c for the exit
 * codes and the meaning of --timeout on each backend).
 * Threads: the calling thread.
 */
#ifndef MS_RH_RUN_H
#define MS_RH_RUN_H

#include <stddef.h>

/* Entry point for "machineserver run ..." (argv[0] is "run"). Returns the exit code. */
int ms_run_main(int argc, char **argv);

/*
 * Decode C escapes (\r \n \t \0 \\ \" \' \xNN) into a new NUL-terminated
 * buffer the caller frees; *out_len excludes the NUL. NULL for a bad or
 * truncated escape.
 */
char *ms_run_unescape(const char *s, size_t *out_len);

#endif
