/*
 * router: the route table (every route the daemon serves, with a summary
 * that also feeds /api/v1/openapi.json) and path matching.
 *
 * Patterns are literal segments and ":name" segments; a ":name" matches one
 * non-empty segment. Threads: read-only data, any thread.
 */
#ifndef MS_ROUTER_H
#define MS_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "http/http.h"

enum {
	MS_ROUTE_OPEN = 1, /* no authentication even when auth is enabled */
	MS_ROUTE_UPLOAD =
	    2, /* multipart/form-data "file" or application/octet-stream body, spooled */
	MS_ROUTE_WS = 4, /* WebSocket upgrade; a ticket in ?ticket= is accepted as credentials */
	MS_ROUTE_RAW = 8, /* reply is not JSON (text, metrics) */
};

typedef void (*ms_route_fn)(struct ms_req *req, struct ms_resp *resp);

struct ms_route {
	const char *method;
	const char *pattern;
	ms_route_fn fn;
	unsigned flags;
	const char *summary;
	const char *body; /* request body description for OpenAPI, or NULL */
};

extern const struct ms_route ms_routes[];

/*
 * Find the route for method + path and fill req->params (pointing into
 * scratch, which must outlive the request). When the path exists under
 * other methods only, returns NULL and writes them to allow ("GET, POST").
 */
const struct ms_route *ms_route_match(const char *method, const char *path, struct ms_req *req,
                                      char *scratch, size_t scratch_len, char *allow,
                                      size_t allow_len);

/* The OpenAPI 3 document for every route (new reference). */
json_t *ms_openapi(void);

#endif
