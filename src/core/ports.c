/*
 * ports: the GDB port table; see ports.h.
 *
 * Threads: any; mu guards used[] and next.
 */
#include "core/ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int port_min, port_max, next_port;
static bool *used;

int ms_ports_init(int min, int max)
{
	if (min < 1 || max > 65535 || min > max)
		return -EINVAL;
	pthread_mutex_lock(&mu);
	free(used);
	used = calloc((size_t)(max - min + 1), sizeof(bool));
	port_min = min;
	port_max = max;
	next_port = min;
	pthread_mutex_unlock(&mu);
	return used != NULL ? 0 : -ENOMEM;
}

/* True when nobody listens on 127.0.0.1:port right now. */
static bool bindable(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	bool ok;

	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

int ms_port_alloc(void)
{
	int n, port = MS_EQUOTA;

	pthread_mutex_lock(&mu);
	n = port_max - port_min + 1;
	/* Round robin, so a just-freed port (maybe in TIME_WAIT) is reused last. */
	for (int i = 0; used != NULL && i < n; i++) {
		int p = next_port;

		next_port = next_port == port_max ? port_min : next_port + 1;
		if (!used[p - port_min] && bindable(p)) {
			used[p - port_min] = true;
			port = p;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return port;
}

int ms_port_claim(int port)
{
	int rc = -ERANGE;

	pthread_mutex_lock(&mu);
	if (used != NULL && port >= port_min && port <= port_max) {
		rc = used[port - port_min] ? -EBUSY : 0;
		used[port - port_min] = true;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void ms_port_free(int port)
{
	pthread_mutex_lock(&mu);
	if (used != NULL && port >= port_min && port <= port_max)
		used[port - port_min] = false;
	pthread_mutex_unlock(&mu);
}
