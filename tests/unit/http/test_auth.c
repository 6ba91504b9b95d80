/*
 * Unit tests for http/auth.c: API keys, HS256 JWT verification against
 * hostile tokens, and single-use tickets. The .c file is included to reach
 * the clock-taking ticket functions, so expiry is tested without waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/auth.c"

static const uint8_t key[] = "correct horse battery staple";
#define KEY_LEN (sizeof(key) - 1)
#define NOW ((int64_t)1700000000)

/* Build header.payload.signature from raw JSON texts, signed with k (or a given signature). */
static char *make_token(const char *header, const char *payload, const uint8_t *k, size_t klen)
{
	size_t hl = strlen(header), pl = strlen(payload);
	char *t = malloc(4 * (hl + pl) + 128);
	size_t o;
	uint8_t sig[EVP_MAX_MD_SIZE];
	unsigned int sl = 0;

	o = b64url_encode((const uint8_t *)header, hl, t);
	t[o++] = '.';
	o += b64url_encode((const uint8_t *)payload, pl, t + o);
	assert_non_null(HMAC(EVP_sha256(), k, (int)klen, (uint8_t *)t, o, sig, &sl));
	t[o++] = '.';
	b64url_encode(sig, sl, t + o);
	return t;
}

static char *good_payload(void)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "{\"sub\":\"alice\",\"exp\":%lld}", (long long)NOW + 3600);
	return buf;
}

static void expect_reject(const char *token, const char *needle)
{
	struct ms_err e;
	json_t *claims = (json_t *)1;
	int rc;

	ms_err_clear(&e);
	rc = ms_jwt_verify(token, key, KEY_LEN, NOW, &claims, &e);
	assert_int_equal(rc, MS_EAUTH);
	assert_int_equal(e.status, 401);
	assert_string_equal(e.code, "unauthorized");
	assert_null(claims);
	if (strstr(e.message, needle) == NULL)
		fail_msg("message \"%s\" does not mention \"%s\"", e.message, needle);
}

static void test_b64url_strict(void **state)
{
	uint8_t out[16];

	assert_int_equal(b64url_decode("YQ", 2, out), 1);
	assert_int_equal(out[0], 'a');
	assert_int_equal(b64url_decode("YWI", 3, out), 2);
	assert_int_equal(b64url_decode("YWJj", 4, out), 3);
	assert_int_equal(b64url_decode("", 0, out), 0);
	/* padding, standard alphabet, whitespace, impossible length, stray bits */
	assert_int_equal(b64url_decode("YQ==", 4, out), -1);
	assert_int_equal(b64url_decode("a+b/", 4, out), -1);
	assert_int_equal(b64url_decode("YW J", 4, out), -1);
	assert_int_equal(b64url_decode("YWJjZ", 5, out), -1);
	assert_int_equal(b64url_decode("YR", 2, out), -1);
	assert_int_equal(b64url_decode("YWK", 3, out), -1);
}

/* RFC 7515 appendix A.1: a token signed by another implementation. */
static void test_rfc7515_vector(void **state)
{
	const char *tok = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
	                  "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
	                  "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
	                  "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	const char *k64 = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hc"
	                  "gUuTwjAzZr1Z9CAow";
	uint8_t k[80];
	long kl = b64url_decode(k64, strlen(k64), k);
	json_t *claims = NULL;
	struct ms_err e;

	assert_int_equal(kl, 64);
	assert_int_equal(ms_jwt_verify(tok, k, (size_t)kl, 1300819380, &claims, &e), 0);
	assert_string_equal(json_string_value(json_object_get(claims, "iss")), "joe");
	assert_true(json_is_true(json_object_get(claims, "http://example.com/is_root")));
	json_decref(claims);
	/* The same token long after exp (plus leeway) is refused. */
	assert_int_equal(ms_jwt_verify(tok, k, (size_t)kl, 1300819380 + 31, NULL, &e), MS_EAUTH);
	assert_non_null(strstr(e.message, "expired"));
}

static void test_sign_verify_roundtrip(void **state)
{
	json_t *c = json_pack("{s:s, s:I}", "sub", "bob", "exp", (json_int_t)NOW + 60);
	char *t = ms_jwt_sign(c, key, KEY_LEN);
	json_t *claims = NULL;
	struct ms_err e;

	assert_non_null(t);
	assert_null(strchr(t, '='));
	assert_int_equal(ms_jwt_verify(t, key, KEY_LEN, NOW, &claims, &e), 0);
	assert_string_equal(json_string_value(json_object_get(claims, "sub")), "bob");
	json_decref(claims);
	/* Another key does not verify it. */
	assert_int_equal(ms_jwt_verify(t, (const uint8_t *)"other", 5, NOW, NULL, &e), MS_EAUTH);
	assert_non_null(strstr(e.message, "signature does not match"));
	free(t);
	json_decref(c);
	/* Non-objects and missing keys cannot be signed. */
	c = json_array();
	assert_null(ms_jwt_sign(c, key, KEY_LEN));
	json_decref(c);
}

static void test_alg_none_and_others(void **state)
{
	char *t;

	/* alg=none with an empty signature, the classic bypass */
	t = make_token("{\"alg\":\"none\"}", good_payload(), key, KEY_LEN);
	*strrchr(t, '.') = '\0';
	strcat(t, ".");
	expect_reject(t, "algorithm none");
	free(t);
	/* alg=none even with a valid-looking HMAC */
	t = make_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", good_payload(), key, KEY_LEN);
	expect_reject(t, "algorithm none");
	free(t);
	t = make_token("{\"alg\":\"RS256\"}", good_payload(), key, KEY_LEN);
	expect_reject(t, "algorithm RS256");
	free(t);
	t = make_token("{\"alg\":\"HS512\"}", good_payload(), key, KEY_LEN);
	expect_reject(t, "algorithm HS512");
	free(t);
	t = make_token("{\"alg\":\"hs256\"}", good_payload(), key, KEY_LEN);
	expect_reject(t, "algorithm hs256");
	free(t);
	t = make_token("{\"typ\":\"JWT\"}", good_payload(), key, KEY_LEN);
	expect_reject(t, "no alg");
	free(t);
	t = make_token("{\"alg\":256}", good_payload(), key, KEY_LEN);
	expect_reject(t, "alg is not a string");
	free(t);
	t = make_token("{\"alg\":\"HS256\",\"kid\":\"x\"}", good_payload(), key, KEY_LEN);
	expect_reject(t, "unexpected header field kid");
	free(t);
	t = make_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", good_payload(), key, KEY_LEN);
	expect_reject(t, "unexpected header field crit");
	free(t);
	t = make_token("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", good_payload(), key, KEY_LEN);
	expect_reject(t, "typ must be JWT");
	free(t);
	t = make_token("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", good_payload(), key, KEY_LEN);
	expect_reject(t, "header is not valid JSON");
	free(t);
	t = make_token("[\"HS256\"]", good_payload(), key, KEY_LEN);
	expect_reject(t, "header is not a JSON object");
	free(t);
	t = make_token("{alg:HS256}", good_payload(), key, KEY_LEN);
	expect_reject(t, "header is not valid JSON");
	free(t);
	/* typ is optional and its case does not matter */
	t = make_token("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", good_payload(), key, KEY_LEN);
	assert_int_equal(ms_jwt_verify(t, key, KEY_LEN, NOW, NULL, NULL), 0);
	free(t);
	t = make_token("{\"alg\":\"HS256\"}", good_payload(), key, KEY_LEN);
	assert_int_equal(ms_jwt_verify(t, key, KEY_LEN, NOW, NULL, NULL), 0);
	free(t);
}

static void test_structure(void **state)
{
	char *t = make_token("{\"alg\":\"HS256\"}", good_payload(), key, KEY_LEN);
	char buf[1024];

	expect_reject("", "empty token");
	expect_reject("abc", "three");
	expect_reject("abc.def", "three");
	snprintf(buf, sizeof(buf), "%s.extra", t);
	expect_reject(buf, "too many");
	snprintf(buf, sizeof(buf), "%s.", t);
	expect_reject(buf, "too many");
	snprintf(buf, sizeof(buf), ".%s", strchr(t, '.') + 1);
	expect_reject(buf, "empty header");
	memcpy(buf, t, (size_t)(strchr(t, '.') - t));
	snprintf(buf + (strchr(t, '.') - t), sizeof(buf) - 100, "..%s", strrchr(t, '.') + 1);
	expect_reject(buf, "empty payload");
	snprintf(buf, sizeof(buf), "%s", t);
	*(strrchr(buf, '.') + 1) = '\0';
	expect_reject(buf, "empty signature");
	/* a truncated signature */
	snprintf(buf, sizeof(buf), "%s", t);
	buf[strlen(buf) - 4] = '\0';
	expect_reject(buf, "signature");
	/* a signature with padding, as standard base64 would write it */
	snprintf(buf, sizeof(buf), "%s=", t);
	expect_reject(buf, "signature");
	/* a signature twice as long */
	snprintf(buf, sizeof(buf), "%s%s", t, strrchr(t, '.') + 1);
	expect_reject(buf, "signature");
	/* bad characters in each part */
	snprintf(buf, sizeof(buf), "%s", t);
	buf[1] = '+';
	expect_reject(buf, "header is not base64url");
	snprintf(buf, sizeof(buf), "%s", t);
	*(strrchr(buf, '.') + 3) = '/';
	expect_reject(buf, "signature is not base64url");
	snprintf(buf, sizeof(buf), "%s", t);
	*(strrchr(buf, '.') + 3) = '\n';
	expect_reject(buf, "signature is not base64url");
	/* a payload changed after signing */
	snprintf(buf, sizeof(buf), "%s", t);
	buf[strchr(t, '.') - t + 3] ^= 1;
	expect_reject(buf, "signature does not match");
	free(t);
}

static void test_payload(void **state)
{
	char p[256];
	char *t;

	t = make_token("{\"alg\":\"HS256\"}", "[1,2]", key, KEY_LEN);
	expect_reject(t, "payload is not a JSON object");
	free(t);
	t = make_token("{\"alg\":\"HS256\"}", "\"alice\"", key, KEY_LEN);
	expect_reject(t, "payload is not a JSON object");
	free(t);
	t = make_token("{\"alg\":\"HS256\"}", "42", key, KEY_LEN);
	expect_reject(t, "payload is not a JSON object");
	free(t);
	t = make_token("{\"alg\":\"HS256\"}", "{\"sub\":", key, KEY_LEN);
	expect_reject(t, "payload is not valid JSON");
	free(t);
	t = make_token("{\"alg\":\"HS256\"}", "{\"sub\":\"alice\"}", key, KEY_LEN);
	expect_reject(t, "exp claim is missing");
	free(t);
	t = make_token("{\"alg\":\"HS256\"}", "{\"exp\":\"tomorrow\"}", key, KEY_LEN);
	expect_reject(t, "exp claim is not a number");
	free(t);
	snprintf(p, sizeof(p), "{\"exp\":%lld}", (long long)NOW - 31);
	t = make_token("{\"alg\":\"HS256\"}", p, key, KEY_LEN);
	expect_reject(t, "expired");
	free(t);
	/* within the 30 s leeway */
	snprintf(p, sizeof(p), "{\"exp\":%lld}", (long long)NOW - 29);
	t = make_token("{\"alg\":\"HS256\"}", p, key, KEY_LEN);
	assert_int_equal(ms_jwt_verify(t, key, KEY_LEN, NOW, NULL, NULL), 0);
	free(t);
	snprintf(p, sizeof(p), "{\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 600,
	         (long long)NOW + 31);
	t = make_token("{\"alg\":\"HS256\"}", p, key, KEY_LEN);
	expect_reject(t, "nbf is in the future");
	free(t);
	snprintf(p, sizeof(p), "{\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 600,
	         (long long)NOW + 10);
	t = make_token("{\"alg\":\"HS256\"}", p, key, KEY_LEN);
	assert_int_equal(ms_jwt_verify(t, key, KEY_LEN, NOW, NULL, NULL), 0);
	free(t);
	snprintf(p, sizeof(p), "{\"exp\":%lld,\"nbf\":null}", (long long)NOW + 600);
	t = make_token("{\"alg\":\"HS256\"}", p, key, KEY_LEN);
	expect_reject(t, "nbf claim is not a number");
	free(t);
	snprintf(p, sizeof(p), "{\"exp\":%lld,\"exp\":%lld}", (long long)NOW + 600,
	         (long long)NOW + 600);
	t = make_token("{\"alg\":\"HS256\"}", p, key, KEY_LEN);
	expect_reject(t, "payload is not valid JSON");
	free(t);
}

static void test_huge_token(void **state)
{
	size_t n = 9000;
	char *big = malloc(n + 1);
	char *p = malloc(8000);
	char *t;

	memset(big, 'A', n);
	big[n] = '\0';
	expect_reject(big, "longer than 8192 bytes");
	free(big);
	/* a genuinely signed token just over the limit */
	snprintf(p, 8000, "{\"exp\":%lld,\"pad\":\"%06500d\"}", (long long)NOW + 60, 0);
	t = make_token("{\"alg\":\"HS256\"}", p, key, KEY_LEN);
	assert_true(strlen(t) > 8192);
	expect_reject(t, "longer than 8192 bytes");
	free(t);
	free(p);
}

static void test_no_key(void **state)
{
	char *t = make_token("{\"alg\":\"HS256\"}", good_payload(), key, KEY_LEN);
	struct ms_err e;

	assert_int_equal(ms_jwt_verify(t, NULL, 0, NOW, NULL, &e), MS_EAUTH);
	assert_non_null(strstr(e.message, "not configured"));
	/* An empty key must never accept a token signed with an empty key. */
	free(t);
	t = make_token("{\"alg\":\"HS256\"}", good_payload(), (const uint8_t *)"", 0);
	assert_int_equal(ms_jwt_verify(t, (const uint8_t *)"", 0, NOW, NULL, &e), MS_EAUTH);
	free(t);
}

/* ---- ms_auth_check ---- */

static char *cfg_keys[] = {"k3y-one-abcdef", "second key"};

static void init_auth(const char *secret)
{
	struct ms_config c;

	memset(&c, 0, sizeof(c));
	c.auth.enabled = true;
	c.auth.api_keys = cfg_keys;
	c.auth.n_api_keys = 2;
	c.auth.jwt_secret = (char *)secret;
	assert_int_equal(ms_auth_init(&c), 0);
	assert_true(ms_auth_enabled());
}

static void expected_subject(const char *k, char out[32])
{
	uint8_t d[32];

	SHA256((const uint8_t *)k, strlen(k), d);
	snprintf(out, 32, "key:%02x%02x%02x%02x%02x%02x", d[0], d[1], d[2], d[3], d[4], d[5]);
}

static void check_rejected(const char *header, const char *needle)
{
	char sub[128] = "untouched";
	struct ms_err e;

	ms_err_clear(&e);
	assert_int_equal(ms_auth_check(header, sub, sizeof(sub), &e), MS_EAUTH);
	assert_int_equal(e.status, 401);
	assert_string_equal(sub, "");
	if (strstr(e.message, needle) == NULL)
		fail_msg("message \"%s\" does not mention \"%s\"", e.message, needle);
}

static void test_api_keys(void **state)
{
	char sub[128];
	char want[32];
	struct ms_err e;

	init_auth(NULL);
	assert_int_equal(ms_auth_check("ApiKey k3y-one-abcdef", sub, sizeof(sub), &e), 0);
	expected_subject("k3y-one-abcdef", want);
	assert_string_equal(sub, want);
	assert_int_equal(strlen(sub), 4 + 12);
	/* the scheme is case-insensitive; a key may contain spaces */
	assert_int_equal(ms_auth_check("apikey second key", sub, sizeof(sub), &e), 0);
	expected_subject("second key", want);
	assert_string_equal(sub, want);

	check_rejected(NULL, "missing Authorization");
	check_rejected("", "missing Authorization");
	check_rejected("ApiKey k3y-one-abcde", "unknown API key");
	check_rejected("ApiKey k3y-one-abcdefg", "unknown API key");
	check_rejected("ApiKey K3Y-ONE-ABCDEF", "unknown API key");
	check_rejected("ApiKey ", "empty API key");
	check_rejected("ApiKeyk3y-one-abcdef", "unsupported Authorization scheme");
	check_rejected("Basic dXNlcjpwYXNz", "unsupported Authorization scheme");
	check_rejected("k3y-one-abcdef", "unsupported Authorization scheme");
	check_rejected("Bearer abc.def.ghi", "no jwt_secret");
	ms_auth_fini();
	assert_false(ms_auth_enabled());
}

static void test_bearer(void **state)
{
	const char *secret = "s3cret-for-tests";
	json_t *c;
	char *t;
	char hdr[9000];
	char sub[128];
	struct ms_err e;

	init_auth(secret);
	c = json_pack("{s:s, s:I}", "sub", "carol", "exp", (json_int_t)time(NULL) + 300);
	t = ms_jwt_sign(c, (const uint8_t *)secret, strlen(secret));
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	assert_int_equal(ms_auth_check(hdr, sub, sizeof(sub), &e), 0);
	assert_string_equal(sub, "jwt:carol");
	free(t);
	json_decref(c);

	/* signed with another secret */
	c = json_pack("{s:s, s:I}", "sub", "carol", "exp", (json_int_t)time(NULL) + 300);
	t = ms_jwt_sign(c, (const uint8_t *)"other", 5);
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	check_rejected(hdr, "signature does not match");
	free(t);
	json_decref(c);

	/* expired for real */
	c = json_pack("{s:s, s:I}", "sub", "carol", "exp", (json_int_t)time(NULL) - 3600);
	t = ms_jwt_sign(c, (const uint8_t *)secret, strlen(secret));
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	check_rejected(hdr, "expired");
	free(t);
	json_decref(c);

	/* sub missing, not a string, or with a newline that would forge log lines */
	c = json_pack("{s:I}", "exp", (json_int_t)time(NULL) + 300);
	t = ms_jwt_sign(c, (const uint8_t *)secret, strlen(secret));
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	check_rejected(hdr, "sub claim");
	free(t);
	json_decref(c);
	c = json_pack("{s:i, s:I}", "sub", 7, "exp", (json_int_t)time(NULL) + 300);
	t = ms_jwt_sign(c, (const uint8_t *)secret, strlen(secret));
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	check_rejected(hdr, "sub claim");
	free(t);
	json_decref(c);
	c = json_pack("{s:s, s:I}", "sub", "eve\nadmin", "exp", (json_int_t)time(NULL) + 300);
	t = ms_jwt_sign(c, (const uint8_t *)secret, strlen(secret));
	snprintf(hdr, sizeof(hdr), "Bearer %s", t);
	check_rejected(hdr, "sub claim");
	free(t);
	json_decref(c);

	/* an oversized header */
	memcpy(hdr, "Bearer ", 7);
	memset(hdr + 7, 'a', sizeof(hdr) - 8);
	hdr[sizeof(hdr) - 1] = '\0';
	check_rejected(hdr, "too long");
	check_rejected("Bearer ", "empty token");
	ms_auth_fini();
}

/* ---- tickets ---- */

static void test_ticket_once(void **state)
{
	char t1[33], t2[33];
	char sub[128];
	struct ms_err e;

	assert_int_equal(ms_ticket_issue("sess_0123456789abcdef", "key:abcdefabcdef", t1), 0);
	assert_int_equal(strlen(t1), 32);
	assert_true(ticket_well_formed(t1));
	assert_int_equal(ms_ticket_issue("sess_0123456789abcdef", "key:abcdefabcdef", t2), 0);
	assert_string_not_equal(t1, t2);

	assert_int_equal(ms_ticket_redeem(t1, "sess_0123456789abcdef", sub, sizeof(sub), &e), 0);
	assert_string_equal(sub, "key:abcdefabcdef");
	/* the second use fails */
	assert_int_equal(ms_ticket_redeem(t1, "sess_0123456789abcdef", sub, sizeof(sub), &e),
	                 MS_EAUTH);
	assert_int_equal(e.status, 401);
	assert_string_equal(sub, "");
	assert_non_null(strstr(e.message, "unknown, used or expired"));
	/* another session's ticket is refused and consumed */
	assert_int_equal(ms_ticket_redeem(t2, "sess_ffffffffffffffff", sub, sizeof(sub), &e),
	                 MS_EAUTH);
	assert_non_null(strstr(e.message, "another session"));
	assert_int_equal(ms_ticket_redeem(t2, "sess_0123456789abcdef", sub, sizeof(sub), &e),
	                 MS_EAUTH);
}

static void test_ticket_malformed(void **state)
{
	char t[33];
	char bad[64];
	struct ms_err e;

	assert_int_equal(ms_ticket_issue("sess_1", "anonymous", t), 0);
	assert_int_equal(ms_ticket_redeem(NULL, "sess_1", NULL, 0, &e), MS_EAUTH);
	assert_int_equal(ms_ticket_redeem("", "sess_1", NULL, 0, &e), MS_EAUTH);
	memcpy(bad, t, 31);
	bad[31] = '\0';
	assert_int_equal(ms_ticket_redeem(bad, "sess_1", NULL, 0, &e), MS_EAUTH);
	assert_non_null(strstr(e.message, "malformed"));
	snprintf(bad, sizeof(bad), "%s0", t);
	assert_int_equal(ms_ticket_redeem(bad, "sess_1", NULL, 0, &e), MS_EAUTH);
	snprintf(bad, sizeof(bad), "%s", t);
	for (int i = 0; i < 32; i++)
		bad[i] = (char)toupper((unsigned char)bad[i]);
	if (strcmp(bad, t) != 0) {
		assert_int_equal(ms_ticket_redeem(bad, "sess_1", NULL, 0, &e), MS_EAUTH);
		assert_non_null(strstr(e.message, "malformed"));
	}
	assert_int_equal(
	    ms_ticket_redeem("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "sess_1", NULL, 0, &e), MS_EAUTH);
	/* the malformed attempts did not consume the real ticket */
	assert_int_equal(ms_ticket_redeem(t, "sess_1", NULL, 0, &e), 0);
	assert_int_equal(ms_ticket_issue("", "x", t), -EINVAL);
	assert_int_equal(ms_ticket_issue(NULL, "x", t), -EINVAL);
}

static void test_ticket_expiry_and_sweep(void **state)
{
	char t[33], u[33];
	char sub[64];
	struct ms_err e;
	const int64_t base = 1000000;

	assert_int_equal(ticket_issue_at("sess_a", "s", t, base), 0);
	assert_int_equal(ticket_redeem_at(t, "sess_a", sub, sizeof(sub), &e, base + 29999), 0);
	assert_int_equal(ticket_issue_at("sess_a", "s", t, base), 0);
	assert_int_equal(ticket_redeem_at(t, "sess_a", sub, sizeof(sub), &e, base + 30000),
	                 MS_EAUTH);
	assert_non_null(strstr(e.message, "expired"));

	/* fill the table; the next issue is refused until the old ones expire */
	for (int i = 0; i < TICKET_MAX; i++)
		assert_int_equal(ticket_issue_at("sess_b", "s", t, base), 0);
	assert_int_equal(ticket_issue_at("sess_b", "s", u, base + 1), MS_EQUOTA);
	assert_int_equal(ticket_issue_at("sess_b", "s", u, base + 30001), 0);
	pthread_mutex_lock(&ticket_lock);
	assert_int_equal(n_tickets, 1);
	pthread_mutex_unlock(&ticket_lock);
	assert_int_equal(ticket_redeem_at(u, "sess_b", sub, sizeof(sub), &e, base + 30002), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64url_strict),
	    cmocka_unit_test(test_rfc7515_vector),
	    cmocka_unit_test(test_sign_verify_roundtrip),
	    cmocka_unit_test(test_alg_none_and_others),
	    cmocka_unit_test(test_structure),
	    cmocka_unit_test(test_payload),
	    cmocka_unit_test(test_huge_token),
	    cmocka_unit_test(test_no_key),
	    cmocka_unit_test(test_api_keys),
	    cmocka_unit_test(test_bearer),
	    cmocka_unit_test(test_ticket_once),
	    cmocka_unit_test(test_ticket_malformed),
	    cmocka_unit_test(test_ticket_expiry_and_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
