/*
 * metrics: Prometheus text exposition (format 0.0.4), our own.
 *
 * Families: machineserver_http_requests_total{method,route,status},
 * machineserver_http_request_duration_seconds (histogram by route),
 * machineserver_sessions{backend,state} (live), simulation_jobs_queued,
 * process figures (process_resident_memory_bytes, process_cpu_seconds_total,
 * process_open_fds, process_start_time_seconds, process_threads).
 *
 * Threads: any thread; one mutex guards the counters (requests are counted
 * once each, the lock is held for a table lookup).
 */
#ifndef MS_METRICS_H
#define MS_METRICS_H

#include <stddef.h>

void ms_metrics_init(void);
void ms_metrics_fini(void);

/* Count one finished request; route is the matched pattern or "unmatched". */
void ms_metrics_request(const char *method, const char *route, int status, double seconds);

/* Set the queue depth gauge. */
void ms_metrics_set_jobs_queued(long n);

/* Render everything; heap text the caller frees. */
char *ms_metrics_render(size_t *len);

#endif
