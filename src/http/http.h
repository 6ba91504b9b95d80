/*
 * http: what a route handler sees — the request, the response it fills,
 * and helpers for the one error shape.
 *
 * A handler runs on one of libmicrohttpd's worker threads, after the whole
 * body has been received (uploads are spooled to a file first), after
 * authentication, and before the audit record is written. It fills *resp and
 * returns; it must not block for long (emulator operations are bounded by
 * their own timeouts).
 *
 * Ownership: everything in struct ms_req belongs to the server and lives
 * until the handler returns. resp->body is heap memory the server frees.
 */
#ifndef MS_HTTP_H
#define MS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/err.h"

struct MHD_Connection;

#define MS_ROUTE_MAX_PARAMS 4

struct ms_req {
	const char *method;
	const char *path; /* decoded path, no query string */
	const char *route; /* the matched pattern, e.g. "/api/v1/sessions/:id" */
	const char *params[MS_ROUTE_MAX_PARAMS]; /* ":name" segments in order */
	unsigned n_params;
	const char *content_type; /* NULL when absent */
	const uint8_t *body; /* NUL-terminated for convenience; NULL when empty */
	size_t body_len;
	const char *upload_path; /* multipart "file" spooled here, or NULL */
	const char *upload_name; /* its file name as sent (untrusted), or NULL */
	char client[64]; /* peer address */
	char subject[128]; /* "anonymous", "key:<id>", "jwt:<sub>", "ticket:<subject>" */
	struct MHD_Connection *conn;
};

/*
 * Upgrade hook a WebSocket route sets: runs on its own thread with the raw
 * socket (blocking, TCP_NODELAY) and the bytes the client sent after the
 * handshake that the server had already read. The server closes fd after
 * the hook returns; the hook owns ud.
 */
typedef void (*ms_ws_handler)(int fd, const uint8_t *early, size_t early_len, void *ud);

struct ms_resp {
	int status;
	char *body; /* heap, freed by the server */
	size_t body_len;
	const char *content_type; /* static string */
	/* WebSocket routes: set ws to a handler and ws_ud to its argument (owned by the handler). */
	ms_ws_handler ws;
	void *ws_ud;
	char ws_accept[32]; /* Sec-WebSocket-Accept value */
};

/* Value of a query parameter, or NULL. */
const char *ms_req_query(struct ms_req *r, const char *key);
/* Value of a request header, or NULL. */
const char *ms_req_header(struct ms_req *r, const char *name);

/*
 * Parse the body as a JSON object. An empty body gives an empty object when
 * allow_empty. Accepts application/json, no content type, and
 * application/x-www-form-urlencoded (curl -d without -H sends that, and the
 * seed's examples do exactly this); anything else is 415. Malformed JSON is
 * 400 with jansson's line and column. *out is a new reference.
 */
int ms_req_json(struct ms_req *r, bool allow_empty, json_t **out, struct ms_err *e);

/* Fill resp with JSON (obj is stolen). */
void ms_resp_json(struct ms_resp *resp, int status, json_t *obj);
/* Fill resp with the error shape from e. */
void ms_resp_error(struct ms_resp *resp, const struct ms_err *e);
/* Shortcut: build the error and fill resp. */
void ms_resp_fail(struct ms_resp *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Plain bytes (copied). */
void ms_resp_bytes(struct ms_resp *resp, int status, const char *content_type, const void *data,
                   size_t len);

/* RFC 3339 UTC text for a time in ms since the epoch, e.g. "2026-11-22T04:14:22.123Z". */
void ms_time_rfc3339(int64_t ms, char out[32]);
int64_t ms_now_ms(void);

#endif
