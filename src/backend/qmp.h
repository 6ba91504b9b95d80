/*
 * qmp: a client for QEMU's machine protocol (QMP) over a connected socket.
 *
 * QEMU writes one JSON object per line: a greeting, then replies
 * ({"return":...} or {"error":{"class","desc"}}, echoing our "id") and
 * asynchronous events ({"event":NAME,"data":...,"timestamp":...}). Events
 * may arrive before the reply of the command that caused them; the reader
 * keeps them apart by the "event" key and matches replies by "id".
 *
 * The client owns no thread. Exactly one thread (the session supervisor, or
 * a test's pump thread) calls ms_qmp_on_readable whenever ms_qmp_fd polls
 * readable; it parses lines, hands events to the callback and wakes the
 * thread waiting for a reply. Any other thread may call ms_qmp_execute,
 * which sends the command and sleeps until its reply, the timeout, or the
 * connection's end.
 *
 * Robustness: a line that is not a JSON object, an oversized line, a reply
 * with an unknown id, or bytes that never end in a newline are counted and
 * dropped; they never crash the reader or confuse a waiting command.
 *
 * Threads and locks: q->lock guards the write side, the waiter list and the
 * greeting; it is never held while the event callback runs. The callback
 * runs on the reader thread and may call ms_qmp_execute only from another
 * thread (the reader would wait for itself).
 * Ownership: ms_qmp_new takes the fd; ms_qmp_free closes it. Replies handed
 * to callers are new references the caller releases with json_decref.
 */
#ifndef MS_QMP_H
#define MS_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "core/err.h"

struct ms_qmp;

/*
 * Called on the reader thread for each event. name and data are borrowed
 * for the call (data may be NULL).
 */
typedef void (*ms_qmp_event_cb)(void *ud, const char *name, json_t *data);

/* Longest line accepted from QEMU; longer lines are dropped whole. */
#define MS_QMP_MAX_LINE (8u << 20)

/* Wrap a connected stream socket. Returns NULL on allocation failure (fd is then closed). */
struct ms_qmp *ms_qmp_new(int fd, ms_qmp_event_cb cb, void *ud);

/*
 * Connect to a unix socket path. Returns a connected fd or -errno. The
 * path must fit in sun_path (-ENAMETOOLONG otherwise).
 */
int ms_qmp_connect_unix(const char *path);

/* The socket to poll for readability. */
int ms_qmp_fd(struct ms_qmp *q);

/*
 * Read what is available and dispatch complete lines. Returns 0 while the
 * connection lives, -EPIPE once the peer closed it or it failed; after that
 * every waiting and future command fails at once with 502.
 */
int ms_qmp_on_readable(struct ms_qmp *q);

/*
 * Wait for the greeting (timeout_ms), then negotiate with qmp_capabilities.
 * On success *greeting (may be NULL) receives a new reference to the
 * greeting's "QMP" object.
 */
int ms_qmp_handshake(struct ms_qmp *q, int timeout_ms, json_t **greeting, struct ms_err *e);

/*
 * The same handshake done by the thread that will be the reader, before it
 * starts its read loop: this call reads the socket itself. It gives up with
 * 502 "emulator_gone" as soon as stop_fd (e.g. a pidfd; -1 for none)
 * becomes readable, so a child that dies while starting is noticed at once.
 */
int ms_qmp_handshake_direct(struct ms_qmp *q, int stop_fd, int timeout_ms, struct ms_err *e);

/*
 * Run a command. args (may be NULL) is stolen. On success *ret (may be NULL)
 * receives a new reference to the "return" value. Failures: QEMU's error
 * (502 "emulator_failed", message "CMD: <QEMU's desc>"), timeout (502
 * "emulator_timeout"), connection closed (502 "emulator_gone").
 */
int ms_qmp_execute(struct ms_qmp *q, const char *cmd, json_t *args, int timeout_ms, json_t **ret,
                   struct ms_err *e);

/*
 * Send a command without arguments and without waiting: its reply is
 * dropped. Safe on the reader thread (which must never wait for a reply).
 * cmd is one of our fixed command names. 0, -EINVAL or -EPIPE.
 */
int ms_qmp_send(struct ms_qmp *q, const char *cmd);

/*
 * Error class of the last QEMU error reply seen by this client, e.g.
 * "GenericError", copied into buf; "" when none.
 */
void ms_qmp_last_error_class(struct ms_qmp *q, char *buf, size_t cap);

/* Lines dropped as malformed since creation (tests and diagnostics). */
unsigned long ms_qmp_dropped(struct ms_qmp *q);

/* Mark the connection dead and wake all waiters (they fail with 502). */
void ms_qmp_shutdown(struct ms_qmp *q);

/* Close the socket and free. No thread may be inside any ms_qmp_* call. */
void ms_qmp_free(struct ms_qmp *q);

#endif
