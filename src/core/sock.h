/*
 * sock: writing a whole buffer to a stream socket that may be slow to drain
 * (QEMU's monitor, a guest UART that is not reading).
 *
 * Thread safety: stateless; callers serialise writers of one socket.
 */
#ifndef MS_SOCK_H
#define MS_SOCK_H

#include <stddef.h>

/*
 * Send all len bytes of p on fd (never raising SIGPIPE, never blocking in
 * send itself), waiting up to timeout_ms each time the socket is full.
 * Returns 0, -EAGAIN when it stayed full that long (part may have been
 * sent), or -EPIPE when the peer is gone or the socket failed.
 */
int ms_send_all(int fd, const void *p, size_t len, int timeout_ms);

#endif
