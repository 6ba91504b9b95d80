/*
 * ports: hands out TCP ports on 127.0.0.1 from the configured range
 * (resources.gdb_port_min..gdb_port_max) for per-session GDB servers.
 *
 * A port is handed out only when it is free in our table and a test bind on
 * 127.0.0.1 succeeds, so a port taken by another program is skipped.
 * Threads: any thread; one mutex guards the table.
 */
#ifndef MS_PORTS_H
#define MS_PORTS_H

int ms_ports_init(int min, int max);

/* Returns a port, or MS_EQUOTA when the range is exhausted. */
int ms_port_alloc(void);

/* Mark a port as ours again (daemon restart reloading a session). */
int ms_port_claim(int port);

void ms_port_free(int port);

#endif
