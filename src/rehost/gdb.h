/*
 * gdb: a GDB Remote Serial Protocol server for one rehost machine, on
 * 127.0.0.1.
 *
 * It serves an M-profile target description (org.gnu.gdb.arm.m-profile,
 * plus the VFP registers on cores with an FPU), register and memory
 * read/write, software and hardware breakpoints (Z0/Z1), watchpoints
 * (Z2/Z3/Z4), step, continue, Ctrl-C, detach and kill.
 *
 * The server runs on the machine's owner thread: the run loop calls
 * ms_rh_gdb_poll between slices (non-blocking while the guest runs) and
 * ms_rh_gdb_serve while the guest is halted, so gdb and the CPU never touch
 * the machine at the same time. One client at a time.
 *
 * Ownership: ms_rh_gdb_new returns an object the machine frees
 * (ms_rh_machine_free calls ms_rh_gdb_free).
 */
#ifndef MS_RH_GDB_H
#define MS_RH_GDB_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct ms_rh_machine;
struct ms_rh_gdb;

/* Listen on 127.0.0.1:port (0 picks a free port; see ms_rh_gdb_port). */
int ms_rh_gdb_new(struct ms_rh_machine *m, int port, struct ms_rh_gdb **out, struct ms_err *e);
void ms_rh_gdb_free(struct ms_rh_gdb *g);
int ms_rh_gdb_port(const struct ms_rh_gdb *g);
bool ms_rh_gdb_attached(const struct ms_rh_gdb *g);

/* Record why the guest stopped (signal, "swbreak"/"hwbreak"/"watch"...). */
void ms_rh_gdb_note_stop(struct ms_rh_gdb *g, int sig, const char *why);

/*
 * The guest is halted (initially, or after a breakpoint): talk to gdb
 * until it resumes (returns 0 and the caller runs the machine), kills
 * (returns 1: the caller ends the run) or detaches (returns 0, running on
 * without a debugger). Returns -1 when ms_rh_machine_request_stop was
 * called meanwhile: the guest stays halted for gdb, the caller does what
 * the host needs and calls this again. timeout_ms bounds the wait for a
 * client to connect (-1: wait forever).
 */
int ms_rh_gdb_serve(struct ms_rh_gdb *g, int timeout_ms);

/*
 * The guest is running: accept a new client, or notice Ctrl-C. Returns
 * true when the guest must halt (the caller then calls ms_rh_gdb_serve).
 */
bool ms_rh_gdb_poll(struct ms_rh_gdb *g);

/* The run is over: tell an attached gdb the program exited with code, and drop it. */
void ms_rh_gdb_exited(struct ms_rh_gdb *g, int code);

/* Instructions to run before stopping for a single step (0: not stepping). */
bool ms_rh_gdb_stepping(const struct ms_rh_gdb *g);

#endif
