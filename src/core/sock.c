/*
 * sock: see sock.h. Threads: any; no state.
 */
#include "core/sock.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

int ms_send_all(int fd, const void *p, size_t len, int timeout_ms)
{
	const char *b = p;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, b + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};

			if (poll(&pf, 1, timeout_ms) > 0)
				continue;
			return -EAGAIN;
		}
		return -EPIPE;
	}
	return 0;
}
