/*
 * llm: an OpenAI-compatible chat-completions client for low-confidence
 * registers (see llm.h). libcurl does the HTTP; replies are bounded
 * (1 MiB), parsed with jansson and validated before use; answers are cached
 * on disk by SHA-256 of (firmware hash, context).
 *
 * Threads: one ms__llm per ms_infer, on the engine's owner thread;
 * curl_global_init runs once through pthread_once.
 */
#include "core/text.h"
#include "infer/llm.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#define MAX_REPLY (1u << 20)

struct ms__llm {
	char *url;
	char *model;
	char *key;
	char *cache_dir;
	char *fw;
	int timeout_ms;
	int budget;
	int calls, hits, failures;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct ms__llm *ms__llm_new(const struct ms__llm_cfg *cfg, char *err, size_t cap)
{
	if (!cfg || !cfg->base_url || !cfg->base_url[0]) {
		snprintf(err, cap, "llm mode needs a base url (llm_base_url)");
		return NULL;
	}
	if (strncmp(cfg->base_url, "http://", 7) && strncmp(cfg->base_url, "https://", 8)) {
		snprintf(err, cap, "llm base url must start with http:// or https://");
		return NULL;
	}
	if (!cfg->model || !cfg->model[0]) {
		snprintf(err, cap, "llm mode needs a model name (llm_model)");
		return NULL;
	}
	pthread_once(&once, init_curl);
	struct ms__llm *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, cap, "out of memory");
		return NULL;
	}
	size_t n = strlen(cfg->base_url);
	l->url = malloc(n + 32);
	if (l->url) {
		snprintf(l->url, n + 32, "%s/chat/completions", cfg->base_url);
		/* Tolerate a trailing slash in the base URL. */
		if (n && cfg->base_url[n - 1] == '/')
			snprintf(l->url, n + 32, "%.*s/chat/completions", (int)(n - 1),
			         cfg->base_url);
	}
	l->model = strdup(cfg->model);
	const char *key = cfg->key;
	if (!key)
		key = getenv("MS_LLM_API_KEY");
	if (!key)
		key = getenv("OPENAI_API_KEY");
	l->key = dup_or_null(key);
	l->cache_dir = dup_or_null(cfg->cache_dir);
	l->fw = strdup(cfg->firmware_hash ? cfg->firmware_hash : "unknown-firmware");
	l->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 20000;
	l->budget = cfg->budget > 0 ? cfg->budget : 32;
	if (!l->url || !l->model || !l->fw) {
		ms__llm_free(l);
		snprintf(err, cap, "out of memory");
		return NULL;
	}
	return l;
}

void ms__llm_free(struct ms__llm *l)
{
	if (!l)
		return;
	free(l->url);
	free(l->model);
	free(l->key);
	free(l->cache_dir);
	free(l->fw);
	free(l);
}

/* Accept 123, "123" or "0x7b" (at most 32 bits). */
static bool u32_field(json_t *j, uint32_t *out)
{
	uint64_t v;

	if (!ms_json_uint(j, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

int ms__llm_validate(json_t *reply, char *err, size_t cap)
{
	static const char *const cats[] = {"control", "status", "data", "control+status"};
	static const char *const models[] = {"memory", "status",  "rx",   "tx",
	                                     "w1c",    "counter", "const"};
	if (!json_is_object(reply)) {
		snprintf(err, cap, "reply is not a json object");
		return -EPROTO;
	}
	const char *cat = json_string_value(json_object_get(reply, "category"));
	const char *model = json_string_value(json_object_get(reply, "model"));
	bool ok = false;
	for (size_t i = 0; cat && i < sizeof(cats) / sizeof(cats[0]); i++)
		ok |= strcmp(cat, cats[i]) == 0;
	if (!ok) {
		snprintf(err, cap, "reply: category missing or not one of control/status/data");
		return -EPROTO;
	}
	ok = false;
	for (size_t i = 0; model && i < sizeof(models) / sizeof(models[0]); i++)
		ok |= strcmp(model, models[i]) == 0;
	if (!ok) {
		snprintf(err, cap, "reply: model missing or unknown");
		return -EPROTO;
	}
	uint32_t v;
	if (!u32_field(json_object_get(reply, "value"), &v) ||
	    !u32_field(json_object_get(reply, "mask"), &v) || v == 0) {
		snprintf(err, cap, "reply: value/mask missing, not 32-bit numbers, or empty mask");
		return -EPROTO;
	}
	json_t *c = json_object_get(reply, "confidence");
	if (!json_is_number(c) || json_number_value(c) < 0 || json_number_value(c) > 100) {
		snprintf(err, cap, "reply: confidence missing or outside 0..100");
		return -EPROTO;
	}
	json_t *r = json_object_get(reply, "reason");
	if (!json_is_string(r) || strlen(json_string_value(r)) > 500) {
		snprintf(err, cap, "reply: reason missing or longer than 500 bytes");
		return -EPROTO;
	}
	return 0;
}

struct buf {
	char *p;
	size_t n;
	bool over;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;
	if (b->n + n > MAX_REPLY) {
		b->over = true;
		return 0;
	}
	char *q = realloc(b->p, b->n + n + 1);
	if (!q)
		return 0;
	memcpy(q + b->n, ptr, n);
	b->p = q;
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

static void cache_path(struct ms__llm *l, json_t *context, char *out, size_t cap)
{
	char *ctx = json_dumps(context, JSON_SORT_KEYS | JSON_COMPACT);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	if (mc && EVP_DigestInit_ex(mc, EVP_sha256(), NULL)) {
		EVP_DigestUpdate(mc, l->fw, strlen(l->fw));
		EVP_DigestUpdate(mc, "\n", 1);
		EVP_DigestUpdate(mc, l->model, strlen(l->model));
		EVP_DigestUpdate(mc, "\n", 1);
		if (ctx)
			EVP_DigestUpdate(mc, ctx, strlen(ctx));
		EVP_DigestFinal_ex(mc, md, &mdlen);
	}
	EVP_MD_CTX_free(mc);
	free(ctx);
	char hexs[2 * EVP_MAX_MD_SIZE + 1] = "";
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hexs + 2 * i, 3, "%02x", md[i]);
	snprintf(out, cap, "%s/%s.json", l->cache_dir, hexs);
}

static const char *SYSTEM_PROMPT =
    "You infer the behaviour of memory-mapped peripheral registers of a Cortex-M "
    "microcontroller from the firmware code that accesses them. Answer with one JSON "
    "object only, with exactly these keys: \"category\" (one of \"control\", \"status\", "
    "\"data\", \"control+status\"), \"model\" (one of \"memory\", \"status\", \"rx\", "
    "\"tx\", \"w1c\", \"counter\", \"const\"), \"value\" (the 32-bit value the register "
    "should read at this access, as a \"0x\" hex string), \"mask\" (the bits of value that "
    "matter, as a \"0x\" hex string, not zero), \"confidence\" (0 to 100), \"reason\" "
    "(one sentence).";

int ms__llm_ask(struct ms__llm *l, json_t *context, json_t **answer, int *from_cache, char *err,
                size_t cap)
{
	char path[1024];
	*answer = NULL;
	*from_cache = 0;
	if (l->cache_dir) {
		cache_path(l, context, path, sizeof(path));
		json_error_t je;
		json_t *c = json_load_file(path, 0, &je);
		if (c && ms__llm_validate(c, err, cap) == 0) {
			l->hits++;
			*from_cache = 1;
			*answer = c;
			return 0;
		}
		json_decref(c);
	}
	if (l->calls >= l->budget) {
		snprintf(err, cap, "llm budget of %d calls spent", l->budget);
		return -EDQUOT;
	}
	l->calls++;
	char *ctx = json_dumps(context, JSON_SORT_KEYS | JSON_INDENT(1));
	json_t *req = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s+}],s:i,s:{s:s}}", "model", l->model,
	                        "messages", "role", "system", "content", SYSTEM_PROMPT, "role",
	                        "user", "content", "The access:\n", ctx ? ctx : "{}", "temperature",
	                        0, "response_format", "type", "json_object");
	free(ctx);
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body) {
		l->failures++;
		snprintf(err, cap, "cannot build the request");
		return -ENOMEM;
	}
	CURL *h = curl_easy_init();
	if (!h) {
		free(body);
		l->failures++;
		snprintf(err, cap, "cannot start libcurl");
		return -EIO;
	}
	struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
	/* No "Expect: 100-continue" round trip: send the body at once. */
	hd = curl_slist_append(hd, "Expect:");
	char auth[1100];
	if (l->key) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", l->key);
		hd = curl_slist_append(hd, auth);
	}
	struct buf b = {0};
	curl_easy_setopt(h, CURLOPT_URL, l->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)l->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)l->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	free(body);
	int rc = 0;
	if (cc != CURLE_OK) {
		if (cc == CURLE_OPERATION_TIMEDOUT)
			rc = -ETIMEDOUT;
		else if (cc == CURLE_COULDNT_CONNECT)
			rc = -ECONNREFUSED;
		else if (b.over || cc == CURLE_WRITE_ERROR)
			rc = -EMSGSIZE;
		else
			rc = -EIO;
		snprintf(err, cap, "llm request failed: %s",
		         b.over ? "reply larger than 1 MiB" : curl_easy_strerror(cc));
	} else if (status != 200) {
		rc = -EIO;
		snprintf(err, cap, "llm endpoint answered http %ld", status);
	}
	json_t *msg = NULL;
	if (rc == 0) {
		json_error_t je;
		json_t *resp = json_loadb(b.p ? b.p : "", b.n, 0, &je);
		json_t *content = json_object_get(
		    json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message"),
		    "content");
		if (!json_is_string(content)) {
			rc = -EPROTO;
			snprintf(
			    err, cap,
			    "llm reply is not a chat completion (no choices[0].message.content)");
		} else {
			msg = json_loads(json_string_value(content), 0, &je);
			if (!msg) {
				rc = -EPROTO;
				snprintf(err, cap, "llm content is not json: %s", je.text);
			} else {
				rc = ms__llm_validate(msg, err, cap);
			}
		}
		json_decref(resp);
	}
	free(b.p);
	if (rc < 0) {
		json_decref(msg);
		l->failures++;
		return rc;
	}
	if (l->cache_dir) {
		mkdir(l->cache_dir, 0700);
		char tmp[1100];
		snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
		if (json_dump_file(msg, tmp, JSON_SORT_KEYS | JSON_INDENT(1)) == 0)
			rename(tmp, path);
		else
			unlink(tmp);
	}
	*answer = msg;
	return 0;
}

json_t *ms__llm_stats(struct ms__llm *l)
{
	return json_pack("{s:i,s:i,s:i,s:i}", "calls", l->calls, "cache_hits", l->hits, "failures",
	                 l->failures, "budget", l->budget);
}
