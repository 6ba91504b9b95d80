/*
 * api_system: /health, /metrics, capabilities, OpenAPI and the audit log.
 *
 * Threads: HTTP worker threads; everything here is read-only or goes
 * through thread-safe modules.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/session.h"
#include "core/store.h"
#include "http/api.h"
#include "http/metrics.h"
#include "http/router.h"

static int64_t started_ms;

void ms_api_health(struct ms_req *req, struct ms_resp *resp)
{
	json_t *backends = json_array();

	(void)req;
	if (started_ms == 0)
		started_ms = ms_now_ms();
	for (size_t i = 0; ms_backends[i] != NULL; i++) {
		if (ms_backend_find(ms_backends[i]->name) != NULL)
			json_array_append_new(backends, json_string(ms_backends[i]->name));
	}
	ms_resp_json(resp, 200,
	             json_pack("{s:s,s:s,s:o,s:I}", "status", "ok", "version", MS_VERSION,
	                       "backends", backends, "sessions", (json_int_t)ms_sessions_total()));
}

void ms_api_metrics(struct ms_req *req, struct ms_resp *resp)
{
	size_t len = 0;
	char *text;

	(void)req;
	if (!ms_api_config->monitoring.enabled) {
		ms_resp_fail(resp, 404, "metrics_disabled", "monitoring.enabled is false");
		return;
	}
	text = ms_metrics_render(&len);
	if (text == NULL) {
		ms_resp_fail(resp, 503, "metrics_unavailable", "cannot render metrics");
		return;
	}
	free(resp->body);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	resp->body = text;
	resp->body_len = len;
}

void ms_api_capabilities(struct ms_req *req, struct ms_resp *resp)
{
	(void)req;
	ms_resp_json(resp, 200, ms_backends_capabilities());
}

void ms_api_openapi(struct ms_req *req, struct ms_resp *resp)
{
	(void)req;
	ms_resp_json(resp, 200, ms_openapi());
}

/* Parse a decimal query value in [lo, hi]; false when malformed. */
static bool query_int(struct ms_req *req, const char *key, long long lo, long long hi,
                      long long *out)
{
	const char *v = ms_req_query(req, key);
	char *end;
	long long n;

	if (v == NULL)
		return true;
	n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < lo || n > hi)
		return false;
	*out = n;
	return true;
}

void ms_api_audit(struct ms_req *req, struct ms_resp *resp)
{
	long long limit = 100, before = 0;
	json_t *page = NULL;

	if (!query_int(req, "limit", 1, 1000, &limit) ||
	    !query_int(req, "before", 1, (long long)1 << 62, &before)) {
		ms_resp_fail(resp, 400, "bad_query",
		             "limit must be 1..1000 and before a positive id");
		return;
	}
	if (ms_store_audit_list(before, (int)limit, &page) != 0) {
		ms_resp_fail(resp, 503, "store_unavailable", "cannot read the audit log");
		return;
	}
	ms_resp_json(resp, 200, page);
}
