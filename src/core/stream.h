/*
 * stream: a bounded in-memory byte ring with an append-only log file behind
 * it, and any number of readers that each keep their own position.
 *
 * Used for a session's console (UART bytes) and its event stream
 * (newline-delimited JSON). Positions are absolute byte offsets since the
 * stream was created. A reader that falls more than the ring's capacity
 * behind is served the missing bytes from the log file, so nothing written
 * is ever lost to a slow or late reader. The file is written behind the
 * ring (before the ring drops a byte, at least every 100 ms while writes
 * go on, and on ms_stream_flush), so together they hold everything.
 *
 * Readers are woken through an eventfd (ms_stream_reader_fd) so that a
 * WebSocket thread can poll() it beside its socket.
 *
 * Threads: every function may be called from any thread; one mutex per
 * stream guards the ring, the log file and the reader list.
 * Ownership: ms_stream_new returns a stream with one reference;
 * ms_stream_ref/ms_stream_unref count them. A reader holds a reference to
 * its stream until ms_stream_reader_close.
 */
#ifndef MS_STREAM_H
#define MS_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ms_stream;
struct ms_stream_reader;

/*
 * Create a stream with a ring of ring_cap bytes. log_path may be NULL (no
 * log file: a late reader then only gets what the ring still holds); when
 * given it is created 0600 (and its directory 0700) at the first flush,
 * not here. If the file already holds data (daemon restart), positions
 * continue after it.
 */
struct ms_stream *ms_stream_new(size_t ring_cap, const char *log_path);
void ms_stream_ref(struct ms_stream *st);
void ms_stream_unref(struct ms_stream *st);

/* Append bytes; wakes all readers. Never blocks on readers. */
void ms_stream_write(struct ms_stream *st, const void *data, size_t len);

/* Total bytes ever written (the position of the next byte). */
uint64_t ms_stream_end(struct ms_stream *st);

/* Mark the stream finished: readers get EOF once they have read everything. */
void ms_stream_close(struct ms_stream *st);

/*
 * Write what the log file does not have yet. The last reference does it
 * too; a closed stream no longer creates a missing directory.
 */
void ms_stream_flush(struct ms_stream *st);

/*
 * Open a reader at absolute position from (0 = everything since creation,
 * UINT64_MAX = only new bytes).
 */
struct ms_stream_reader *ms_stream_reader_open(struct ms_stream *st, uint64_t from);
void ms_stream_reader_close(struct ms_stream_reader *r);

/* An fd that polls readable when there is something to read (or EOF). */
int ms_stream_reader_fd(struct ms_stream_reader *r);

/*
 * Copy up to cap bytes from the reader's position. Returns the number of
 * bytes (>0), 0 when nothing is available yet, or -1 at EOF (stream closed
 * and fully read). Clears the wakeup fd when it returns 0.
 */
ssize_t ms_stream_read(struct ms_stream_reader *r, void *buf, size_t cap);

/*
 * Copy the whole log (or, without a log file, what the ring holds) into a
 * heap buffer the caller frees. At most max bytes, taken from the end.
 */
int ms_stream_snapshot(struct ms_stream *st, size_t max, char **out, size_t *out_len);

#endif
