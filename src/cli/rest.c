/*
 * rest: mctl's REST client on libcurl — one easy handle reused for every
 * request (keeps the connection alive), JSON bodies with jansson, multipart
 * uploads, and the one way errors are reported: the server's
 * {"error":{"code","message"}} printed as "mctl: MESSAGE (HTTP STATUS CODE)".
 *
 * Threads: mctl is single-threaded; a client belongs to its caller.
 */
#include "cli/mctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* Creating a session starts an emulator; uploads can be large: be patient, but not forever. */
#define REQUEST_TIMEOUT_S 300L
#define CONNECT_TIMEOUT_S 10L
/* Replies larger than this are refused rather than buffered. */
#define MAX_REPLY (256L * 1024 * 1024)

struct sink {
	char *data;
	size_t len, cap;
	bool too_big;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;

	if (s->len + n + 1 > (size_t)MAX_REPLY) {
		s->too_big = true;
		return 0;
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *d;

		while (cap < s->len + n + 1)
			cap *= 2;
		d = realloc(s->data, cap);
		if (d == NULL)
			return 0;
		s->data = d;
		s->cap = cap;
	}
	memcpy(s->data + s->len, ptr, n);
	s->len += n;
	s->data[s->len] = '\0';
	return n;
}

int mctl_client_init(struct mctl_client *c, const char *server, const char *api_key,
                     const char *token)
{
	size_t n;

	memset(c, 0, sizeof(*c));
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		return -1;
	c->base = strdup(server);
	if (c->base == NULL)
		return -1;
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if (api_key != NULL || token != NULL) {
		const char *scheme = api_key != NULL ? "ApiKey" : "Bearer";
		const char *cred = api_key != NULL ? api_key : token;

		if (asprintf(&c->auth_header, "Authorization: %s %s", scheme, cred) < 0) {
			c->auth_header = NULL;
			return -1;
		}
	}
	return 0;
}

void mctl_client_free(struct mctl_client *c)
{
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
	free(c->base);
	c->base = NULL;
	free(c->auth_header);
	c->auth_header = NULL;
	curl_global_cleanup();
}

void mctl_reply_free(struct mctl_reply *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

int mctl_request(struct mctl_client *c, const char *method, const char *path, json_t *body,
                 const char *upload_file, struct mctl_reply *r)
{
	CURL *h = c->curl;
	struct curl_slist *hdrs = NULL;
	curl_mime *mime = NULL;
	struct sink sink = {0};
	char errbuf[CURL_ERROR_SIZE] = "";
	char *url = NULL;
	char *json_text = NULL;
	CURLcode cc;
	int rc = MCTL_INFRA;

	memset(r, 0, sizeof(*r));
	if (asprintf(&url, "%s%s", c->base, path) < 0) {
		mctl_err("out of memory");
		return MCTL_INFRA;
	}
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "mctl/" MS_VERSION);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (c->auth_header != NULL)
		hdrs = curl_slist_append(hdrs, c->auth_header);
	if (upload_file != NULL) {
		curl_mimepart *part;

		mime = curl_mime_init(h);
		part = curl_mime_addpart(mime);
		curl_mime_name(part, "file");
		if (curl_mime_filedata(part, upload_file) != CURLE_OK) {
			mctl_err("cannot read %s", upload_file);
			rc = MCTL_USAGE;
			goto out;
		}
		curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
		/* CURLOPT_MIMEPOST sets POST; keep the method asked for. */
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	} else if (body != NULL) {
		json_text = json_dumps(body, JSON_COMPACT);
		if (json_text == NULL) {
			mctl_err("out of memory");
			goto out;
		}
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_text);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(json_text));
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
		/* An empty body, said so, rather than curl waiting for one. */
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		if (sink.too_big)
			mctl_err("%s %s: reply larger than %ld bytes", method, url, MAX_REPLY);
		else
			mctl_err("cannot reach %s: %s", c->base,
			         errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	r->body = sink.data != NULL ? sink.data : strdup("");
	r->len = sink.len;
	sink.data = NULL;
	if (r->len > 0)
		r->json = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
	rc = 0;
out:
	free(sink.data);
	free(json_text);
	free(url);
	curl_slist_free_all(hdrs);
	curl_mime_free(mime);
	return rc;
}

int mctl_call(struct mctl_client *c, const char *method, const char *path, json_t *body,
              const char *upload_file, bool want_json, struct mctl_reply *r)
{
	int rc = mctl_request(c, method, path, body, upload_file, r);

	if (rc != 0)
		return rc;
	if (r->status >= 400) {
		long st = r->status;
		json_t *e = json_object_get(r->json, "error");
		const char *msg = json_string_value(json_object_get(e, "message"));
		const char *code = json_string_value(json_object_get(e, "code"));

		if (msg != NULL)
			mctl_err("%s (HTTP %ld %s)", msg, r->status, code != NULL ? code : "error");
		else
			mctl_err("%s %s: HTTP %ld: %.200s", method, path, r->status,
			         r->len > 0 ? r->body : "(no body)");
		mctl_reply_free(r);
		/* 501 is a refusal like a 4xx; other 5xx mean the server or emulator failed. */
		return st >= 500 && st != 501 ? MCTL_INFRA : MCTL_FAIL;
	}
	if (r->status < 200 || r->status >= 300) {
		mctl_err("%s %s: unexpected HTTP %ld", method, path, r->status);
		mctl_reply_free(r);
		return MCTL_INFRA;
	}
	if (want_json && r->json == NULL) {
		mctl_err("%s %s: the server's reply is not JSON: %.200s", method, path, r->body);
		mctl_reply_free(r);
		return MCTL_INFRA;
	}
	return MCTL_OK;
}

void mctl_print_json(struct mctl_client *c, json_t *v)
{
	char *text = json_dumps(v,
	                        (c->compact ? JSON_COMPACT : JSON_INDENT(2)) | JSON_ENCODE_ANY |
	                            JSON_PRESERVE_ORDER);

	if (text != NULL) {
		fputs(text, stdout);
		fputc('\n', stdout);
		free(text);
	}
}

char *mctl_session_path(const char *id, const char *rest)
{
	char *esc = curl_easy_escape(NULL, id, 0);
	char *p = NULL;

	if (esc == NULL)
		return NULL;
	if (asprintf(&p, "/api/v1/sessions/%s%s%s", esc, rest != NULL ? "/" : "",
	             rest != NULL ? rest : "") < 0)
		p = NULL;
	curl_free(esc);
	return p;
}
