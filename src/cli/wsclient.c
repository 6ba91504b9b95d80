/*
 * wsclient: mctl's WebSocket client over a plain TCP socket — the HTTP/1.1
 * upgrade handshake (checking Sec-WebSocket-Accept), masked frames as
 * RFC 6455 requires of clients, and the ws.h parser in client mode.
 *
 * Threads: mctl is single-threaded; a connection belongs to its caller.
 */
#include "cli/mctl.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

/* Largest message accepted from the server (console chunks are far smaller). */
#define WS_MAX_MESSAGE (16u * 1024 * 1024)
#define HANDSHAKE_MAX 16384

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes. 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = events};
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return 0;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -1 : n > 0;
	}
}

static int connect_tcp(const struct mctl_url *u, long long deadline)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL, *ai;
	int err = 0;
	int fd = -1;
	int gai = getaddrinfo(u->host, u->port, &hints, &res);

	if (gai != 0) {
		mctl_err("cannot resolve %s: %s", u->host, gai_strerror(gai));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int one = 1;
		socklen_t len = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		            ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			err = 0;
		else if (errno != EINPROGRESS)
			err = errno;
		else if (wait_fd(fd, POLLOUT, deadline) <= 0)
			err = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == 0) {
			/* Keystrokes go out at once, not after Nagle's delay. */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		mctl_err("cannot connect to %s port %s: %s", u->host, u->port, strerror(err));
	return fd;
}

static int send_all(int fd, const void *data, size_t len, long long deadline)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (wait_fd(fd, POLLOUT, deadline) <= 0)
					return -ETIMEDOUT;
				continue;
			}
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Value of header name in the response head (NUL-terminated lines), trimmed; or NULL. */
static const char *find_header(char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	char *line = strstr(head, "\r\n");

	while (line != NULL && line[2] != '\0') {
		char *start = line + 2;
		char *end = strstr(start, "\r\n");
		size_t vl;
		char *v;

		if (end == NULL)
			break;
		if ((size_t)(end - start) > nl && strncasecmp(start, name, nl) == 0 &&
		    start[nl] == ':') {
			v = start + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			vl = (size_t)(end - v);
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return out;
		}
		line = end;
	}
	return NULL;
}

/* Explain a refused upgrade with the server's JSON error when there is one. */
static void report_refusal(int status, const char *body)
{
	json_t *j = json_loads(body, JSON_DECODE_ANY, NULL);
	json_t *e = json_object_get(j, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));

	if (msg != NULL)
		mctl_err("console: %s (HTTP %d %s)", msg, status, code != NULL ? code : "error");
	else
		mctl_err("console: the server refused the WebSocket upgrade with HTTP %d", status);
	json_decref(j);
}

int mctl_ws_connect(struct mctl_ws *ws, const char *server, const char *path,
                    const char *auth_header, int timeout_ms)
{
	struct mctl_url u;
	char err[256];
	uint8_t nonce[16];
	char key[32], want[29], got[64];
	char *req = NULL;
	char head[HANDSHAKE_MAX + 1];
	size_t have = 0;
	char *end = NULL;
	long long deadline = now_ms() + timeout_ms;
	int status = 0;
	int rc = MCTL_INFRA;
	int n;

	memset(ws, 0, sizeof(*ws));
	ws->fd = -1;
	if (mctl_parse_url(server, &u, err, sizeof(err)) != 0) {
		mctl_err("%s", err);
		return MCTL_USAGE;
	}
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		mctl_err("cannot get random bytes for the WebSocket key");
		return MCTL_INFRA;
	}
	EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
	if (ms_ws_accept_key(key, want) != 0) {
		mctl_err("cannot compute the WebSocket accept key");
		return MCTL_INFRA;
	}
	ws->fd = connect_tcp(&u, deadline);
	if (ws->fd < 0)
		return MCTL_INFRA;
	n = asprintf(&req,
	             "GET %s%s HTTP/1.1\r\n"
	             "Host: %s%s%s:%s\r\n"
	             "Upgrade: websocket\r\n"
	             "Connection: Upgrade\r\n"
	             "Sec-WebSocket-Key: %s\r\n"
	             "Sec-WebSocket-Version: 13\r\n"
	             "User-Agent: mctl/" MS_VERSION "\r\n"
	             "%s%s"
	             "\r\n",
	             u.prefix, path, strchr(u.host, ':') ? "[" : "", u.host,
	             strchr(u.host, ':') ? "]" : "", u.port, key,
	             auth_header != NULL ? auth_header : "", auth_header != NULL ? "\r\n" : "");
	if (n < 0) {
		req = NULL;
		mctl_err("out of memory");
		goto fail;
	}
	if (send_all(ws->fd, req, (size_t)n, deadline) != 0) {
		mctl_err("console: cannot send the WebSocket handshake to %s", server);
		goto fail;
	}

	/* Read the response head; what follows it already belongs to the WebSocket. */
	while (end == NULL) {
		ssize_t k;

		if (have == HANDSHAKE_MAX) {
			mctl_err("console: the server's handshake reply is larger than %d bytes",
			         HANDSHAKE_MAX);
			goto fail;
		}
		if (wait_fd(ws->fd, POLLIN, deadline) <= 0) {
			mctl_err("console: no handshake reply from %s within %d ms", server,
			         timeout_ms);
			goto fail;
		}
		k = recv(ws->fd, head + have, HANDSHAKE_MAX - have, 0);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0) {
			mctl_err("console: %s closed the connection during the handshake", server);
			goto fail;
		}
		have += (size_t)k;
		head[have] = '\0';
		end = memmem(head, have, "\r\n\r\n", 4);
	}
	if (sscanf(head, "HTTP/1.%*[01] %d", &status) != 1) {
		mctl_err("console: the server's reply is not HTTP");
		goto fail;
	}
	end[2] = '\0'; /* keep the last header's CRLF for find_header */
	if (status != 101) {
		/* Whatever part of the error body came with the head is enough for its message. */
		report_refusal(status, end + 4);
		rc = status >= 500 && status != 501 ? MCTL_INFRA : MCTL_FAIL;
		goto fail;
	}
	if (find_header(head, "Sec-WebSocket-Accept", got, sizeof(got)) == NULL ||
	    strcmp(got, want) != 0) {
		mctl_err("console: the server's Sec-WebSocket-Accept is missing or wrong");
		goto fail;
	}
	ms_ws_parser_init(&ws->parser, false, WS_MAX_MESSAGE);
	have -= (size_t)(end + 4 - head);
	ws->buf_cap = 65536;
	ws->buf = malloc(ws->buf_cap);
	if (ws->buf == NULL) {
		mctl_err("out of memory");
		goto fail;
	}
	memcpy(ws->buf, end + 4, have);
	ws->buf_len = have;
	free(req);
	return 0;
fail:
	free(req);
	if (ws->fd >= 0)
		close(ws->fd);
	ws->fd = -1;
	return rc;
}

int mctl_ws_send(struct mctl_ws *ws, int opcode, const void *data, size_t len)
{
	uint8_t mask[4];
	uint8_t hdr[14];
	size_t hl;
	uint8_t *frame;
	int rc;

	if (ws->fd < 0)
		return -ENOTCONN;
	if (RAND_bytes(mask, sizeof(mask)) != 1)
		return -EIO;
	hl = ms_ws_header(hdr, opcode, true, len, mask);
	frame = malloc(hl + len);
	if (frame == NULL)
		return -ENOMEM;
	memcpy(frame, hdr, hl);
	if (len > 0)
		memcpy(frame + hl, data, len);
	ms_ws_mask(frame + hl, len, mask, 0);
	rc = send_all(ws->fd, frame, hl + len, now_ms() + 10000);
	free(frame);
	return rc;
}

int mctl_ws_read(struct mctl_ws *ws)
{
	ssize_t k;

	if (ws->buf_off > 0) {
		memmove(ws->buf, ws->buf + ws->buf_off, ws->buf_len - ws->buf_off);
		ws->buf_len -= ws->buf_off;
		ws->buf_off = 0;
	}
	if (ws->buf_len == ws->buf_cap)
		return 0; /* parse what is there first */
	k = recv(ws->fd, ws->buf + ws->buf_len, ws->buf_cap - ws->buf_len, 0);
	if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (k <= 0)
		return -1;
	ws->buf_len += (size_t)k;
	return 0;
}

int mctl_ws_next(struct mctl_ws *ws, struct ms_ws_message *m)
{
	while (ws->buf_off < ws->buf_len) {
		size_t used = 0;
		int rc = ms_ws_parse(&ws->parser, ws->buf + ws->buf_off, ws->buf_len - ws->buf_off,
		                     &used, m);

		ws->buf_off += used;
		if (rc < 0) {
			mctl_err("console: the server broke the WebSocket protocol (close code %d)",
			         -rc);
			return -1;
		}
		if (rc == 0)
			return 0;
		switch (m->opcode) {
		case MS_WS_PING:
			mctl_ws_send(ws, MS_WS_PONG, m->data, m->len);
			break;
		case MS_WS_PONG:
			break;
		case MS_WS_CLOSE:
			if (!ws->closed)
				mctl_ws_send(ws, MS_WS_CLOSE, m->data, m->len >= 2 ? 2 : 0);
			ws->closed = true;
			return -1;
		default:
			return 1;
		}
	}
	return 0;
}

void mctl_ws_close(struct mctl_ws *ws)
{
	if (ws->fd >= 0) {
		if (!ws->closed) {
			const uint8_t normal[2] = {1000 >> 8, 1000 & 0xff};

			mctl_ws_send(ws, MS_WS_CLOSE, normal, sizeof(normal));
			ws->closed = true;
		}
		close(ws->fd);
	}
	ws->fd = -1;
	ms_ws_parser_free(&ws->parser);
	free(ws->buf);
	ws->buf = NULL;
}
