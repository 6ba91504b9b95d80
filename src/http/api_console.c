/*
 * api_console: the console and event streams of a session — the log as
 * text, single-use tickets for browsers, and the WebSocket bridges.
 *
 * Threads: the HTTP handlers run on worker threads; each WebSocket bridge
 * runs on its own thread (started by the server after the upgrade) and
 * holds a reference to its session until it ends. A bridge ends when the
 * client closes, the socket fails, or the session's stream is closed
 * (session deleted).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/log.h"
#include "core/session.h"
#include "core/stream.h"
#include "http/api.h"
#include "http/auth.h"
#include "http/ws.h"

#define WS_MAX_MESSAGE (64 * 1024)
#define PING_EVERY_MS 30000

enum bridge_kind {
	BRIDGE_CONSOLE, /* console bytes as binary frames; client frames go to the UART */
	BRIDGE_EVENTS, /* one JSON event per text frame */
	BRIDGE_MMIO, /* batches of inferred-device accesses, polled from the backend */
};

struct bridge {
	struct ms_session *s;
	enum bridge_kind kind;
	bool console;
	uint64_t from;
};

#define MMIO_POLL_MS 100
#define MMIO_BATCH 1024

static struct ms_session *path_session(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s = ms_session_find(req->params[0]);

	if (s == NULL)
		ms_resp_fail(resp, 404, "session_not_found", "no session %.64s", req->params[0]);
	return s;
}

void ms_api_console_log(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s = path_session(req, resp);
	const char *tail = ms_req_query(req, "tail");
	size_t max = 64 * 1024 * 1024;
	char *text = NULL;
	size_t len = 0;

	if (s == NULL)
		return;
	if (tail != NULL) {
		char *end;
		unsigned long long v = strtoull(tail, &end, 10);

		if (*tail == '\0' || *end != '\0' || v == 0 || v > max) {
			ms_resp_fail(resp, 400, "bad_query", "tail must be 1..%zu bytes", max);
			ms_session_put(s);
			return;
		}
		max = (size_t)v;
	}
	if (ms_stream_snapshot(s->console, max, &text, &len) != 0) {
		ms_resp_fail(resp, 503, "host_failure", "cannot read the console log");
	} else {
		ms_resp_bytes(resp, 200, "text/plain; charset=utf-8", text, len);
		free(text);
	}
	ms_session_put(s);
}

void ms_api_console_ticket(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s = path_session(req, resp);
	char ticket[33], url[512];

	if (s == NULL)
		return;
	if (ms_ticket_issue(s->id, req->subject, ticket) != 0) {
		ms_resp_fail(resp, 503, "host_failure", "cannot issue a ticket");
	} else {
		snprintf(url, sizeof(url), "ws://%s:%d/api/v1/sessions/%s/stream/console?ticket=%s",
		         ms_api_config->server.bind, ms_api_config->server.port, s->id, ticket);
		ms_resp_json(resp, 201,
		             json_pack("{s:s,s:s,s:s,s:i}", "ticket", ticket, "url", url, "path",
		                       url + strlen("ws://") + strcspn(url + strlen("ws://"), "/"),
		                       "expires_in", 30));
	}
	ms_session_put(s);
}

/* Split event bytes into lines and send each complete line as a text frame. */
static int send_event_lines(int fd, char *pending, size_t *plen, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n') {
			if (*plen > 0 && ms_ws_send(fd, MS_WS_TEXT, pending, *plen) != 0)
				return -1;
			*plen = 0;
		} else if (*plen < WS_MAX_MESSAGE) {
			pending[(*plen)++] = data[i];
		}
	}
	return 0;
}

/* Handle client frames; returns false when the bridge must end. */
static bool on_client_bytes(struct bridge *b, int fd, struct ms_ws_parser *p, const uint8_t *data,
                            size_t len)
{
	bool dropping = false;

	while (len > 0) {
		struct ms_ws_message m;
		size_t used = 0;
		int rc = ms_ws_parse(p, data, len, &used, &m);

		if (rc < 0) {
			ms_ws_send_close(fd, (uint16_t)-rc,
			                 rc == -1009 ? "message too big" : "protocol error");
			return false;
		}
		data += used;
		len -= used;
		if (rc == 0)
			break;
		switch (m.opcode) {
		case MS_WS_TEXT:
		case MS_WS_BINARY:
			/*
			 * A refused write (a guest not reading its UART waits up to
			 * a second each, a session being deleted) drops the rest of
			 * this read too: waiting for each frame in turn would keep
			 * the bridge from seeing its client leave or the server stop.
			 */
			if (b->console && m.len > 0 && !dropping &&
			    ms_session_console_write(b->s, m.data, m.len) < 0) {
				ms_debug("session %s: console input dropped", b->s->id);
				dropping = true;
			}
			break;
		case MS_WS_PING:
			if (ms_ws_send(fd, MS_WS_PONG, m.data, m.len) != 0)
				return false;
			break;
		case MS_WS_CLOSE:
			ms_ws_send_close(fd, 1000, "");
			return false;
		default:
			break;
		}
	}
	return true;
}

static void bridge_run(int fd, const uint8_t *early, size_t early_len, void *ud)
{
	struct bridge *b = ud;
	struct ms_stream_reader *r = NULL;
	struct ms_ws_parser p;
	char *pending = NULL;
	size_t plen = 0;
	uint8_t buf[16384];
	bool go = true, watching = false;

	if (fd < 0)
		goto out;
	__atomic_add_fetch(&b->s->watchers, 1, __ATOMIC_SEQ_CST);
	watching = true;
	r = ms_stream_reader_open(b->console ? b->s->console : b->s->events, b->from);
	pending = malloc(WS_MAX_MESSAGE);
	if (r == NULL || pending == NULL)
		goto out;
	ms_ws_parser_init(&p, true, WS_MAX_MESSAGE);
	if (early_len > 0)
		go = on_client_bytes(b, fd, &p, early, early_len);
	while (go) {
		struct pollfd pf[2] = {
		    {.fd = fd, .events = POLLIN},
		    {.fd = ms_stream_reader_fd(r), .events = POLLIN},
		};
		int n = poll(pf, 2, PING_EVERY_MS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0) {
			/* Keeps proxies from dropping an idle console and finds dead peers. */
			if (ms_ws_send(fd, MS_WS_PING, "", 0) != 0)
				break;
			continue;
		}
		if (pf[1].revents & POLLIN) {
			ssize_t k;

			while ((k = ms_stream_read(r, buf, sizeof(buf))) > 0) {
				int rc = b->console
				    ? ms_ws_send(fd, MS_WS_BINARY, buf, (size_t)k)
				    : send_event_lines(fd, pending, &plen, (char *)buf, (size_t)k);

				if (rc != 0) {
					go = false;
					break;
				}
			}
			if (k < 0) {
				ms_ws_send_close(fd, 1001, "session closed");
				break;
			}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t k = recv(fd, buf, sizeof(buf), 0);

			if (k <= 0)
				break;
			go = go && on_client_bytes(b, fd, &p, buf, (size_t)k);
		}
	}
	ms_ws_parser_free(&p);
out:
	if (watching)
		__atomic_sub_fetch(&b->s->watchers, 1, __ATOMIC_SEQ_CST);
	free(pending);
	ms_stream_reader_close(r);
	ms_session_put(b->s);
	free(b);
}

/*
 * MMIO bridge: the access ring lives in the backend (inference module), so
 * it is polled every MMIO_POLL_MS and each non-empty batch is one text
 * frame {"next":SEQ,"entries":[...]}. A reader on the event stream tells
 * when the session is deleted.
 */
static void mmio_run(int fd, const uint8_t *early, size_t early_len, void *ud)
{
	struct bridge *b = ud;
	struct ms_stream_reader *r = NULL;
	struct ms_ws_parser p;
	uint8_t buf[4096];
	bool go = true;

	if (fd < 0)
		goto out;
	__atomic_add_fetch(&b->s->watchers, 1, __ATOMIC_SEQ_CST);
	r = ms_stream_reader_open(b->s->events, UINT64_MAX);
	if (r == NULL)
		goto done;
	if (b->from == UINT64_MAX) {
		/* "from=end": start after what the ring holds now. */
		json_t *now = NULL;

		if (ms_session_mmio(b->s, 0, 4096, &now, NULL) == 0) /* the ring holds 4096 */
			b->from = (uint64_t)json_integer_value(json_object_get(now, "next"));
		else
			b->from = 0;
		json_decref(now);
	}
	ms_ws_parser_init(&p, true, WS_MAX_MESSAGE);
	if (early_len > 0)
		go = on_client_bytes(b, fd, &p, early, early_len);
	while (go) {
		struct pollfd pf[2] = {
		    {.fd = fd, .events = POLLIN},
		    {.fd = ms_stream_reader_fd(r), .events = POLLIN},
		};
		int n = poll(pf, 2, MMIO_POLL_MS);
		json_t *batch = NULL;
		struct ms_err e;

		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && (pf[1].revents & POLLIN)) {
			ssize_t k;

			while ((k = ms_stream_read(r, buf, sizeof(buf))) > 0)
				;
			if (k < 0) {
				ms_ws_send_close(fd, 1001, "session closed");
				break;
			}
		}
		if (n > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t k = recv(fd, buf, sizeof(buf), 0);

			if (k <= 0)
				break;
			go = on_client_bytes(b, fd, &p, buf, (size_t)k);
			continue;
		}
		ms_err_clear(&e);
		if (ms_session_mmio(b->s, b->from, MMIO_BATCH, &batch, &e) != 0) {
			ms_ws_send_close(fd, 1011, e.message);
			break;
		}
		if (json_array_size(json_object_get(batch, "entries")) > 0) {
			char *text = json_dumps(batch, JSON_COMPACT);

			b->from = (uint64_t)json_integer_value(json_object_get(batch, "next"));
			go = text != NULL && ms_ws_send(fd, MS_WS_TEXT, text, strlen(text)) == 0;
			free(text);
		}
		json_decref(batch);
	}
	ms_ws_parser_free(&p);
done:
	__atomic_sub_fetch(&b->s->watchers, 1, __ATOMIC_SEQ_CST);
out:
	ms_stream_reader_close(r);
	ms_session_put(b->s);
	free(b);
}

static void stream_route(struct ms_req *req, struct ms_resp *resp, enum bridge_kind kind)
{
	struct ms_session *s = path_session(req, resp);
	const char *from = ms_req_query(req, "from");
	struct bridge *b;

	if (s == NULL)
		return;
	b = calloc(1, sizeof(*b));
	if (b == NULL) {
		ms_session_put(s);
		ms_resp_fail(resp, 503, "host_failure", "out of memory");
		return;
	}
	b->s = s;
	b->kind = kind;
	b->console = kind == BRIDGE_CONSOLE;
	b->from = 0;
	if (from != NULL) {
		char *end;

		b->from = strcmp(from, "end") == 0 ? UINT64_MAX : strtoull(from, &end, 10);
		if (strcmp(from, "end") != 0 && (*from == '\0' || *end != '\0')) {
			ms_session_put(s);
			free(b);
			ms_resp_fail(resp, 400, "bad_query",
			             "from must be a byte offset or \"end\"");
			return;
		}
	}
	if (kind == BRIDGE_MMIO && s->backend->mmio_recent == NULL) {
		ms_resp_fail(resp, 501, "not_supported", "backend %s has no MMIO log",
		             s->backend->name);
		ms_session_put(s);
		free(b);
		return;
	}
	resp->status = 101;
	resp->ws = kind == BRIDGE_MMIO ? mmio_run : bridge_run;
	resp->ws_ud = b;
}

void ms_api_console_stream(struct ms_req *req, struct ms_resp *resp)
{
	stream_route(req, resp, BRIDGE_CONSOLE);
}

void ms_api_events_stream(struct ms_req *req, struct ms_resp *resp)
{
	stream_route(req, resp, BRIDGE_EVENTS);
}

void ms_api_mmio_stream(struct ms_req *req, struct ms_resp *resp)
{
	stream_route(req, resp, BRIDGE_MMIO);
}

void ms_api_events_log(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s = path_session(req, resp);
	const char *lim = ms_req_query(req, "limit");
	long limit = 100;
	char *text = NULL, *line, *save = NULL;
	size_t len = 0;
	json_t *all;

	if (s == NULL)
		return;
	if (lim != NULL) {
		char *end;

		limit = strtol(lim, &end, 10);
		if (*lim == '\0' || *end != '\0' || limit < 1 || limit > 10000) {
			ms_resp_fail(resp, 400, "bad_query", "limit must be 1..10000");
			ms_session_put(s);
			return;
		}
	}
	all = json_array();
	if (ms_stream_snapshot(s->events, 4 * 1024 * 1024, &text, &len) == 0) {
		for (line = strtok_r(text, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			json_t *ev = json_loads(line, 0, NULL);

			if (ev != NULL)
				json_array_append_new(all, ev);
		}
		free(text);
	}
	while (json_array_size(all) > (size_t)limit)
		json_array_remove(all, 0);
	ms_resp_json(resp, 200, all);
	ms_session_put(s);
}
