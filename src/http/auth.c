/*
 * auth: API keys, HS256 JWTs and single-use console tickets (see auth.h).
 *
 * API keys are compared through their SHA-256 digests with CRYPTO_memcmp, so
 * the time taken depends neither on where a guess first differs nor on its
 * length, and every configured key is compared on each check.
 *
 * JWTs are verified here on OpenSSL's HMAC rather than with a library: the
 * header must be exactly {"alg":"HS256"} (plus an optional "typ":"JWT"),
 * base64url must be canonical (no padding, no stray bits), and the signature
 * is checked before the payload is parsed, so an attacker's payload never
 * reaches the JSON parser unless it carries our signature.
 *
 * Threads: any thread. The key list and the secret are written only by
 * ms_auth_init / ms_auth_fini (called before the server starts and after it
 * stops) and read without locking otherwise. ticket_lock guards the ticket
 * table (tickets, n_tickets, cap_tickets).
 */
#include "http/auth.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/* Tokens larger than this are refused before any decoding. */
#define JWT_MAX_LEN 8192
/* Leeway for exp and nbf, for clocks that disagree a little. */
#define JWT_LEEWAY_S 30
#define TICKET_TTL_MS 30000
/* Bound on live tickets so a client cannot grow the table without limit. */
#define TICKET_MAX 4096

struct ticket {
	char value[33];
	char session_id[64];
	char subject[128];
	int64_t expires_ms;
};

static bool auth_enabled;
static char **api_keys;
static uint8_t (*api_key_digests)[SHA256_DIGEST_LENGTH];
static size_t n_api_keys;
static uint8_t *jwt_secret;
static size_t jwt_secret_len;

static pthread_mutex_t ticket_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ticket *tickets;
static size_t n_tickets;
static size_t cap_tickets;

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void ms_auth_fini(void)
{
	for (size_t i = 0; i < n_api_keys; i++) {
		OPENSSL_cleanse(api_keys[i], strlen(api_keys[i]));
		free(api_keys[i]);
	}
	free(api_keys);
	free(api_key_digests);
	api_keys = NULL;
	api_key_digests = NULL;
	n_api_keys = 0;
	if (jwt_secret != NULL) {
		OPENSSL_cleanse(jwt_secret, jwt_secret_len);
		free(jwt_secret);
	}
	jwt_secret = NULL;
	jwt_secret_len = 0;
	auth_enabled = false;

	pthread_mutex_lock(&ticket_lock);
	free(tickets);
	tickets = NULL;
	n_tickets = 0;
	cap_tickets = 0;
	pthread_mutex_unlock(&ticket_lock);
}

int ms_auth_init(const struct ms_config *cfg)
{
	ms_auth_fini();
	auth_enabled = cfg->auth.enabled;
	if (cfg->auth.n_api_keys > 0) {
		api_keys = calloc(cfg->auth.n_api_keys, sizeof(*api_keys));
		api_key_digests = calloc(cfg->auth.n_api_keys, sizeof(*api_key_digests));
		if (api_keys == NULL || api_key_digests == NULL)
			goto nomem;
		for (size_t i = 0; i < cfg->auth.n_api_keys; i++) {
			const char *k = cfg->auth.api_keys[i];

			api_keys[i] = strdup(k);
			if (api_keys[i] == NULL)
				goto nomem;
			n_api_keys = i + 1;
			SHA256((const unsigned char *)k, strlen(k), api_key_digests[i]);
		}
	}
	if (cfg->auth.jwt_secret != NULL && cfg->auth.jwt_secret[0] != '\0') {
		jwt_secret_len = strlen(cfg->auth.jwt_secret);
		jwt_secret = malloc(jwt_secret_len);
		if (jwt_secret == NULL)
			goto nomem;
		memcpy(jwt_secret, cfg->auth.jwt_secret, jwt_secret_len);
	}
	return 0;
nomem:
	ms_auth_fini();
	return -ENOMEM;
}

int ms_auth_enabled(void)
{
	return auth_enabled;
}

/* ---- base64url ---- */

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict base64url decoding (RFC 7515 section 2): no padding, no whitespace,
 * and the unused low bits of the last character must be zero, so that every
 * byte string has exactly one accepted encoding. out needs (n * 3) / 4 + 1
 * bytes. Returns the decoded length or -1.
 */
static long b64url_decode(const char *in, size_t n, uint8_t *out)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (long)o;
}

/* out needs 4 * ceil(n / 3) + 1 bytes. Returns the length written. */
static size_t b64url_encode(const uint8_t *in, size_t n, char *out)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	size_t i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	return o;
}

/* ---- JWT ---- */

static int jwt_fail(struct ms_err *e, const char *what)
{
	return ms_fail(e, 401, "unauthorized", "invalid token: %s", what);
}

/* The header must be an object holding alg "HS256" and at most typ "JWT". */
static int jwt_check_header(const uint8_t *data, size_t len, struct ms_err *e)
{
	json_error_t jerr;
	json_t *h =
	    json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	const char *key;
	json_t *val;
	bool have_alg = false;
	int rc = 0;

	if (h == NULL)
		return jwt_fail(e, "header is not valid JSON");
	if (!json_is_object(h)) {
		rc = jwt_fail(e, "header is not a JSON object");
		goto out;
	}
	json_object_foreach(h, key, val)
	{
		if (strcmp(key, "alg") == 0) {
			if (!json_is_string(val)) {
				rc = jwt_fail(e, "header alg is not a string");
				goto out;
			}
			if (strcmp(json_string_value(val), "HS256") != 0) {
				rc = ms_fail(
				    e, 401, "unauthorized",
				    "invalid token: algorithm %.32s is not accepted, only HS256",
				    json_string_value(val));
				goto out;
			}
			have_alg = true;
		} else if (strcmp(key, "typ") == 0) {
			if (!json_is_string(val) ||
			    strcasecmp(json_string_value(val), "JWT") != 0) {
				rc = jwt_fail(e, "header typ must be JWT");
				goto out;
			}
		} else {
			rc = ms_fail(e, 401, "unauthorized",
			             "invalid token: unexpected header field %.32s", key);
			goto out;
		}
	}
	if (!have_alg)
		rc = jwt_fail(e, "header has no alg");
out:
	json_decref(h);
	return rc;
}

/* A NumericDate: an integer or a real number of seconds. */
static bool claim_time(json_t *claims, const char *name, double *out)
{
	json_t *v = json_object_get(claims, name);

	if (v == NULL || !json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

int ms_jwt_verify(const char *token, const uint8_t *key, size_t key_len, int64_t now,
                  json_t **claims, struct ms_err *e)
{
	const char *dot1;
	const char *dot2;
	size_t len;
	size_t hlen, plen, slen;
	uint8_t *buf = NULL;
	uint8_t sig[EVP_MAX_MD_SIZE];
	unsigned int sig_len = 0;
	uint8_t given[64];
	long n;
	json_t *payload = NULL;
	json_error_t jerr;
	double t;
	int rc;

	if (claims != NULL)
		*claims = NULL;
	if (token == NULL || token[0] == '\0')
		return jwt_fail(e, "empty token");
	len = strnlen(token, JWT_MAX_LEN + 1);
	if (len > JWT_MAX_LEN)
		return ms_fail(e, 401, "unauthorized", "invalid token: longer than %d bytes",
		               JWT_MAX_LEN);
	if (key == NULL || key_len == 0)
		return ms_fail(e, 401, "unauthorized", "token authentication is not configured");

	dot1 = memchr(token, '.', len);
	dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot1 == NULL || dot2 == NULL)
		return jwt_fail(e, "expected three dot-separated parts");
	if (memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		return jwt_fail(e, "too many dot-separated parts");
	hlen = (size_t)(dot1 - token);
	plen = (size_t)(dot2 - dot1 - 1);
	slen = len - (size_t)(dot2 + 1 - token);
	if (hlen == 0)
		return jwt_fail(e, "empty header");
	if (plen == 0)
		return jwt_fail(e, "empty payload");

	/* One buffer large enough for the largest decoded part. */
	buf = malloc(len);
	if (buf == NULL)
		return ms_fail(e, 500, "internal", "out of memory");

	n = b64url_decode(token, hlen, buf);
	if (n < 0) {
		rc = jwt_fail(e, "header is not base64url");
		goto out;
	}
	rc = jwt_check_header(buf, (size_t)n, e);
	if (rc < 0)
		goto out;
	/* Checked after the header so that alg=none tokens are named as such. */
	if (slen == 0) {
		rc = jwt_fail(e, "empty signature");
		goto out;
	}

	if (slen > (sizeof(given) * 4 + 2) / 3) {
		rc = jwt_fail(e, "signature has the wrong length for HS256");
		goto out;
	}
	n = b64url_decode(dot2 + 1, slen, given);
	if (n < 0) {
		rc = jwt_fail(e, "signature is not base64url");
		goto out;
	}
	if (n != SHA256_DIGEST_LENGTH) {
		rc = jwt_fail(e, "signature has the wrong length for HS256");
		goto out;
	}
	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)token,
	         (size_t)(dot2 - token), sig, &sig_len) == NULL ||
	    sig_len != SHA256_DIGEST_LENGTH) {
		rc = ms_fail(e, 500, "internal", "cannot compute HMAC");
		goto out;
	}
	if (CRYPTO_memcmp(sig, given, SHA256_DIGEST_LENGTH) != 0) {
		rc = jwt_fail(e, "signature does not match");
		goto out;
	}

	n = b64url_decode(dot1 + 1, plen, buf);
	if (n < 0) {
		rc = jwt_fail(e, "payload is not base64url");
		goto out;
	}
	payload = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	                     &jerr);
	if (payload == NULL) {
		rc = jwt_fail(e, "payload is not valid JSON");
		goto out;
	}
	if (!json_is_object(payload)) {
		rc = jwt_fail(e, "payload is not a JSON object");
		goto out;
	}
	if (json_object_get(payload, "exp") == NULL) {
		rc = jwt_fail(e, "exp claim is missing");
		goto out;
	}
	if (!claim_time(payload, "exp", &t)) {
		rc = jwt_fail(e, "exp claim is not a number");
		goto out;
	}
	if ((double)now > t + JWT_LEEWAY_S) {
		rc = jwt_fail(e, "expired");
		goto out;
	}
	if (json_object_get(payload, "nbf") != NULL) {
		if (!claim_time(payload, "nbf", &t)) {
			rc = jwt_fail(e, "nbf claim is not a number");
			goto out;
		}
		if ((double)now + JWT_LEEWAY_S < t) {
			rc = jwt_fail(e, "not valid yet (nbf is in the future)");
			goto out;
		}
	}
	if (claims != NULL) {
		*claims = payload;
		payload = NULL;
	}
	rc = 0;
out:
	json_decref(payload);
	free(buf);
	return rc;
}

char *ms_jwt_sign(json_t *claims, const uint8_t *key, size_t key_len)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char *payload;
	size_t plen;
	size_t cap;
	char *out;
	size_t o;
	uint8_t sig[EVP_MAX_MD_SIZE];
	unsigned int sig_len = 0;

	if (claims == NULL || !json_is_object(claims) || key == NULL || key_len == 0)
		return NULL;
	payload = json_dumps(claims, JSON_COMPACT);
	if (payload == NULL)
		return NULL;
	plen = strlen(payload);
	cap = 4 * ((sizeof(header) + 2) / 3) + 1 + 4 * ((plen + 2) / 3) + 1 + 44 + 1;
	out = malloc(cap);
	if (out == NULL) {
		free(payload);
		return NULL;
	}
	o = b64url_encode((const uint8_t *)header, sizeof(header) - 1, out);
	out[o++] = '.';
	o += b64url_encode((const uint8_t *)payload, plen, out + o);
	free(payload);
	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)out, o, sig, &sig_len) ==
	    NULL) {
		free(out);
		return NULL;
	}
	out[o++] = '.';
	b64url_encode(sig, sig_len, out + o);
	return out;
}

/* ---- Authorization header ---- */

/* Case-insensitive scheme match (RFC 9110 says schemes are case-insensitive). */
static const char *after_scheme(const char *value, const char *scheme)
{
	size_t n = strlen(scheme);

	if (strncasecmp(value, scheme, n) != 0 || value[n] != ' ')
		return NULL;
	value += n;
	while (*value == ' ')
		value++;
	return value;
}

static int check_api_key(const char *key, char *subject, size_t cap, struct ms_err *e)
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	int match = 0;

	if (key[0] == '\0')
		return ms_fail(e, 401, "unauthorized", "empty API key");
	SHA256((const unsigned char *)key, strlen(key), d);
	/* Compare with every key, without stopping at the first match. */
	for (size_t i = 0; i < n_api_keys; i++)
		match |= CRYPTO_memcmp(d, api_key_digests[i], sizeof(d)) == 0;
	if (!match)
		return ms_fail(e, 401, "unauthorized", "unknown API key");
	hex_encode(d, sizeof(d), hex);
	snprintf(subject, cap, "key:%.12s", hex);
	return 0;
}

/* "sub" becomes part of audit records and log lines: keep it printable. */
static bool printable_subject(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 100)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static int check_bearer(const char *token, char *subject, size_t cap, struct ms_err *e)
{
	json_t *claims = NULL;
	json_t *sub;
	int rc;

	if (jwt_secret == NULL)
		return ms_fail(e, 401, "unauthorized",
		               "bearer tokens are not accepted: no jwt_secret is configured");
	rc = ms_jwt_verify(token, jwt_secret, jwt_secret_len, (int64_t)time(NULL), &claims, e);
	if (rc < 0)
		return rc;
	sub = json_object_get(claims, "sub");
	if (!json_is_string(sub) || !printable_subject(json_string_value(sub))) {
		json_decref(claims);
		return jwt_fail(e, "sub claim must be a printable string of 1 to 100 bytes");
	}
	snprintf(subject, cap, "jwt:%s", json_string_value(sub));
	json_decref(claims);
	return 0;
}

int ms_auth_check(const char *authorization, char *subject, size_t cap, struct ms_err *e)
{
	const char *rest;

	if (subject != NULL && cap > 0)
		subject[0] = '\0';
	if (authorization == NULL || authorization[0] == '\0')
		return ms_fail(e, 401, "unauthorized",
		               "missing Authorization header (use \"ApiKey <key>\" or "
		               "\"Bearer <jwt>\")");
	if (strnlen(authorization, JWT_MAX_LEN + 16) > JWT_MAX_LEN + 8)
		return ms_fail(e, 401, "unauthorized", "Authorization header is too long");
	rest = after_scheme(authorization, "ApiKey");
	if (rest != NULL)
		return check_api_key(rest, subject, cap, e);
	rest = after_scheme(authorization, "Bearer");
	if (rest != NULL)
		return check_bearer(rest, subject, cap, e);
	return ms_fail(
	    e, 401, "unauthorized",
	    "unsupported Authorization scheme (use \"ApiKey <key>\" or \"Bearer <jwt>\")");
}

/* ---- tickets ---- */

/* Drop expired tickets; ticket_lock held. */
static void ticket_sweep(int64_t now)
{
	size_t j = 0;

	for (size_t i = 0; i < n_tickets; i++) {
		if (tickets[i].expires_ms > now)
			tickets[j++] = tickets[i];
		else
			OPENSSL_cleanse(&tickets[i], sizeof(tickets[i]));
	}
	n_tickets = j;
}

static int ticket_issue_at(const char *session_id, const char *subject, char out[33], int64_t now)
{
	uint8_t raw[16];
	struct ticket *t;

	out[0] = '\0';
	if (session_id == NULL || session_id[0] == '\0' ||
	    strlen(session_id) >= sizeof(t->session_id))
		return -EINVAL;
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return MS_EINTERNAL;

	pthread_mutex_lock(&ticket_lock);
	ticket_sweep(now);
	if (n_tickets == TICKET_MAX) {
		pthread_mutex_unlock(&ticket_lock);
		return MS_EQUOTA;
	}
	if (n_tickets == cap_tickets) {
		size_t ncap = cap_tickets ? cap_tickets * 2 : 16;
		struct ticket *nt = realloc(tickets, ncap * sizeof(*nt));

		if (nt == NULL) {
			pthread_mutex_unlock(&ticket_lock);
			return -ENOMEM;
		}
		tickets = nt;
		cap_tickets = ncap;
	}
	t = &tickets[n_tickets++];
	hex_encode(raw, sizeof(raw), t->value);
	snprintf(t->session_id, sizeof(t->session_id), "%s", session_id);
	snprintf(t->subject, sizeof(t->subject), "%s", subject != NULL ? subject : "anonymous");
	t->expires_ms = now + TICKET_TTL_MS;
	memcpy(out, t->value, 33);
	pthread_mutex_unlock(&ticket_lock);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int ms_ticket_issue(const char *session_id, const char *subject, char out[33])
{
	return ticket_issue_at(session_id, subject, out, monotonic_ms());
}

static bool ticket_well_formed(const char *s)
{
	for (int i = 0; i < 32; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[32] == '\0';
}

static int ticket_redeem_at(const char *ticket, const char *session_id, char *subject, size_t cap,
                            struct ms_err *e, int64_t now)
{
	size_t found = SIZE_MAX;
	bool same_session;

	if (subject != NULL && cap > 0)
		subject[0] = '\0';
	if (ticket == NULL || ticket[0] == '\0')
		return ms_fail(e, 401, "unauthorized", "missing ticket");
	if (!ticket_well_formed(ticket))
		return ms_fail(e, 401, "unauthorized", "malformed ticket: expected 32 hex digits");

	pthread_mutex_lock(&ticket_lock);
	ticket_sweep(now);
	for (size_t i = 0; i < n_tickets; i++) {
		if (CRYPTO_memcmp(tickets[i].value, ticket, 32) == 0)
			found = i;
	}
	if (found == SIZE_MAX) {
		pthread_mutex_unlock(&ticket_lock);
		return ms_fail(e, 401, "unauthorized", "unknown, used or expired ticket");
	}
	/*
	 * A ticket is consumed by any attempt to use it, even for the wrong
	 * session, so a leaked ticket cannot be tried twice.
	 */
	same_session = session_id != NULL && strcmp(tickets[found].session_id, session_id) == 0;
	if (same_session && subject != NULL && cap > 0)
		snprintf(subject, cap, "%s", tickets[found].subject);
	OPENSSL_cleanse(&tickets[found], sizeof(tickets[found]));
	tickets[found] = tickets[--n_tickets];
	pthread_mutex_unlock(&ticket_lock);
	if (!same_session)
		return ms_fail(e, 401, "unauthorized", "ticket was issued for another session");
	return 0;
}

int ms_ticket_redeem(const char *ticket, const char *session_id, char *subject, size_t cap,
                     struct ms_err *e)
{
	return ticket_redeem_at(ticket, session_id, subject, cap, e, monotonic_ms());
}
