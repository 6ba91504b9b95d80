/*
 * log: timestamped diagnostics on standard error.
 *
 * Thread safety: any thread; each line is written with one write(2) so lines
 * from different threads do not interleave.
 */
#ifndef MS_LOG_H
#define MS_LOG_H

enum ms_log_level { MS_LOG_DEBUG, MS_LOG_INFO, MS_LOG_WARN, MS_LOG_ERROR };

/* Lines below this level are dropped; default MS_LOG_INFO. */
void ms_log_set_level(enum ms_log_level level);

void ms_log(enum ms_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ms_debug(...) ms_log(MS_LOG_DEBUG, __VA_ARGS__)
#define ms_info(...) ms_log(MS_LOG_INFO, __VA_ARGS__)
#define ms_warn(...) ms_log(MS_LOG_WARN, __VA_ARGS__)
#define ms_error(...) ms_log(MS_LOG_ERROR, __VA_ARGS__)

#endif
