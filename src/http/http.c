/*
 * http: request and response helpers for route handlers; see http.h.
 *
 * Threads: called on the HTTP worker thread that owns the request.
 */
#include "http/http.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *ms_req_query(struct ms_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *ms_req_header(struct ms_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Compare the media type of a Content-Type value, ignoring parameters and case. */
static bool media_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	if (strncasecmp(ct, type, n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

int ms_req_json(struct ms_req *r, bool allow_empty, json_t **out, struct ms_err *e)
{
	json_error_t je;
	json_t *v;

	*out = NULL;
	if (r->content_type != NULL && !media_is(r->content_type, "application/json") &&
	    !media_is(r->content_type, "application/x-www-form-urlencoded"))
		return ms_fail(e, 415, "unsupported_media_type",
		               "expected application/json, got %.80s", r->content_type);
	if (r->body == NULL || r->body_len == 0) {
		if (!allow_empty)
			return ms_fail(e, 400, "bad_request", "a JSON object body is required");
		*out = json_object();
		return 0;
	}
	/* JSON_REJECT_DUPLICATES: {"a":1,"a":2} is ambiguous, say so. */
	v = json_loadb((const char *)r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
	if (v == NULL)
		return ms_fail(e, 400, "bad_json", "malformed JSON at line %d column %d: %s",
		               je.line, je.column, je.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return ms_fail(e, 400, "bad_json", "the body must be a JSON object");
	}
	*out = v;
	return 0;
}

void ms_resp_json(struct ms_resp *resp, int status, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);

	json_decref(obj);
	free(resp->body);
	resp->status = status;
	resp->content_type = "application/json";
	if (text == NULL) {
		resp->status = 500;
		text = strdup(
		    "{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the reply\"}}");
	}
	resp->body = text;
	resp->body_len = text != NULL ? strlen(text) : 0;
}

void ms_resp_error(struct ms_resp *resp, const struct ms_err *e)
{
	int status = e->status >= 400 && e->status < 600 ? e->status : 500;

	ms_resp_json(resp, status,
	             json_pack("{s:{s:s,s:s}}", "error", "code", e->code[0] ? e->code : "error",
	                       "message", e->message));
}

void ms_resp_fail(struct ms_resp *resp, int status, const char *code, const char *fmt, ...)
{
	struct ms_err e;
	va_list ap;

	e.status = status;
	snprintf(e.code, sizeof(e.code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	ms_resp_error(resp, &e);
}

void ms_resp_bytes(struct ms_resp *resp, int status, const char *content_type, const void *data,
                   size_t len)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = content_type;
	resp->body = malloc(len + 1);
	resp->body_len = 0;
	if (resp->body != NULL) {
		memcpy(resp->body, data, len);
		resp->body[len] = '\0';
		resp->body_len = len;
	}
}

int64_t ms_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ms_time_rfc3339(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}
