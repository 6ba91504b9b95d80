/*
 * Unit tests for LLM mode against a local stand-in server written here: a
 * thread that speaks just enough HTTP/1.1 and the OpenAI chat-completions
 * shape to answer our client. It is a stand-in for a real endpoint, named
 * as such; it can answer well, lie, send malformed or oversized replies,
 * fail with HTTP 500, or be slow. A refused connection uses a closed port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "infer/llm.h"
#include "shell.h"

enum mode { GOOD, LIE, MALFORMED, BADCONTENT, SLOW, E500, HUGE };

struct standin {
	int fd;
	int port;
	enum mode mode;
	int requests;
	char last_body[8192];
	pthread_t th;
	volatile int stop;
	char answer[256]; /* content for GOOD / LIE */
};

static void reply(int c, int status, const char *body, size_t len)
{
	char h[256];
	int n =
	    snprintf(h, sizeof(h),
	             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	             "Connection: close\r\n\r\n",
	             status, len);
	if (write(c, h, (size_t)n) < 0)
		return;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(c, body + off, len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

static void *serve(void *arg)
{
	struct standin *s = arg;
	while (!s->stop) {
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		if (s->stop) {
			close(c);
			break;
		}
		char buf[16384];
		size_t n = 0;
		size_t need = 0;
		char *body = NULL;
		for (;;) {
			ssize_t r = read(c, buf + n, sizeof(buf) - 1 - n);
			if (r <= 0)
				break;
			n += (size_t)r;
			buf[n] = 0;
			char *e = strstr(buf, "\r\n\r\n");
			if (e && !body) {
				body = e + 4;
				char *cl = strcasestr(buf, "Content-Length:");
				need = cl ? (size_t)atoi(cl + 15) : 0;
			}
			if (body && (size_t)(buf + n - body) >= need)
				break;
			if (n + 1 >= sizeof(buf))
				break;
		}
		s->requests++;
		if (body)
			snprintf(s->last_body, sizeof(s->last_body), "%s", body);
		char out[1024];
		json_t *content, *resp;
		char *text;
		switch (s->mode) {
		case GOOD:
		case LIE:
			content = json_string(s->answer);
			resp = json_pack("{s:[{s:{s:s,s:o}}]}", "choices", "message", "role",
			                 "assistant", "content", content);
			text = json_dumps(resp, JSON_COMPACT);
			reply(c, 200, text, strlen(text));
			free(text);
			json_decref(resp);
			break;
		case MALFORMED:
			snprintf(out, sizeof(out), "{\"choices\": [ {\"message\": ");
			reply(c, 200, out, strlen(out));
			break;
		case BADCONTENT:
			resp = json_pack("{s:[{s:{s:s}}]}", "choices", "message", "content",
			                 "{\"category\":\"weird\",\"model\":\"status\"}");
			text = json_dumps(resp, JSON_COMPACT);
			reply(c, 200, text, strlen(text));
			free(text);
			json_decref(resp);
			break;
		case SLOW:
			usleep(1500 * 1000);
			snprintf(out, sizeof(out), "{}");
			reply(c, 200, out, strlen(out));
			break;
		case E500:
			snprintf(out, sizeof(out), "{\"error\":\"boom\"}");
			reply(c, 500, out, strlen(out));
			break;
		case HUGE: {
			size_t big = 3u << 20;
			char *b = malloc(big);
			memset(b, ' ', big);
			reply(c, 200, b, big);
			free(b);
			break;
		}
		}
		close(c);
	}
	return NULL;
}

static void standin_start(struct standin *s, enum mode m)
{
	memset(s, 0, sizeof(*s));
	s->mode = m;
	snprintf(s->answer, sizeof(s->answer),
	         "{\"category\":\"status\",\"model\":\"status\",\"value\":\"0x12345678\","
	         "\"mask\":\"0xffffffff\",\"confidence\":70,\"reason\":\"compares with the word in "
	         "RAM\"}");
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	getsockname(s->fd, (struct sockaddr *)&a, &l);
	s->port = ntohs(a.sin_port);
	listen(s->fd, 8);
	pthread_create(&s->th, NULL, serve, s);
}

static void standin_stop(struct standin *s)
{
	s->stop = 1;
	/* Wake accept() with one last connection. */
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)s->port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	connect(c, (struct sockaddr *)&a, sizeof(a));
	close(c);
	pthread_join(s->th, NULL);
	close(s->fd);
}

static char cache_dir[64];

static int setup(void **state)
{
	signal(SIGPIPE, SIG_IGN); /* the client hangs up on oversized replies */
	snprintf(cache_dir, sizeof(cache_dir), "/tmp/ms-llm-cache-XXXXXX");
	return mkdtemp(cache_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cache_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct ms__llm *client(int port, int budget, int timeout_ms, const char *cache)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", port);
	struct ms__llm_cfg c = {.base_url = url,
	                        .model = "stand-in",
	                        .key = "k",
	                        .cache_dir = cache,
	                        .firmware_hash = "fw1",
	                        .timeout_ms = timeout_ms,
	                        .budget = budget};
	char err[256];
	struct ms__llm *l = ms__llm_new(&c, err, sizeof(err));
	assert_non_null(l);
	return l;
}

static void test_validate(void **state)
{
	char err[128];
	json_t *ok = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "category", "status", "model", "status",
	                       "value", "0x1", "mask", "0x1", "confidence", 50, "reason", "r");
	assert_int_equal(ms__llm_validate(ok, err, sizeof(err)), 0);
	json_object_set_new(ok, "mask", json_string("0x0"));
	assert_int_equal(ms__llm_validate(ok, err, sizeof(err)), -EPROTO);
	json_object_set_new(ok, "mask", json_string("0x1"));
	json_object_set_new(ok, "confidence", json_integer(101));
	assert_int_equal(ms__llm_validate(ok, err, sizeof(err)), -EPROTO);
	json_object_set_new(ok, "confidence", json_integer(5));
	json_object_set_new(ok, "value", json_string("0x1ffffffff"));
	assert_int_equal(ms__llm_validate(ok, err, sizeof(err)), -EPROTO);
	json_object_set_new(ok, "value", json_integer(1));
	json_object_set_new(ok, "model", json_string("magic"));
	assert_int_equal(ms__llm_validate(ok, err, sizeof(err)), -EPROTO);
	json_decref(ok);
	json_t *arr = json_array();
	assert_int_equal(ms__llm_validate(arr, err, sizeof(err)), -EPROTO);
	json_decref(arr);
	/* Configuration errors. */
	struct ms__llm_cfg c = {.base_url = "ftp://x", .model = "m"};
	assert_null(ms__llm_new(&c, err, sizeof(err)));
	c.base_url = "http://x";
	c.model = NULL;
	assert_null(ms__llm_new(&c, err, sizeof(err)));
}

static void test_ask_cache_budget(void **state)
{
	struct standin s;
	standin_start(&s, GOOD);
	struct ms__llm *l = client(s.port, 2, 5000, cache_dir);
	json_t *ctx = json_pack("{s:s}", "address", "0x40000000");
	json_t *ans = NULL;
	int cached = -1;
	char err[256];
	assert_int_equal(ms__llm_ask(l, ctx, &ans, &cached, err, sizeof(err)), 0);
	assert_int_equal(cached, 0);
	assert_string_equal(json_string_value(json_object_get(ans, "value")), "0x12345678");
	assert_int_equal(s.requests, 1);
	/* The request is a chat completion asking for a JSON object. */
	json_error_t je;
	json_t *req = json_loads(s.last_body, 0, &je);
	assert_non_null(req);
	assert_string_equal(json_string_value(json_object_get(req, "model")), "stand-in");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(req, "response_format"), "type")),
	    "json_object");
	json_decref(req);
	json_decref(ans);
	/* Same context again: answered from the disk cache, no request. */
	assert_int_equal(ms__llm_ask(l, ctx, &ans, &cached, err, sizeof(err)), 0);
	assert_int_equal(cached, 1);
	assert_int_equal(s.requests, 1);
	json_decref(ans);
	/* Budget 2: one more call, then refused. */
	json_t *ctx2 = json_pack("{s:s}", "address", "0x40000004");
	json_t *ctx3 = json_pack("{s:s}", "address", "0x40000008");
	assert_int_equal(ms__llm_ask(l, ctx2, &ans, &cached, err, sizeof(err)), 0);
	json_decref(ans);
	assert_int_equal(ms__llm_ask(l, ctx3, &ans, &cached, err, sizeof(err)), -EDQUOT);
	assert_int_equal(s.requests, 2);
	ms__llm_free(l);
	standin_stop(&s);
	/* A new session with the server gone: the cache keeps it offline. */
	l = client(s.port, 2, 2000, cache_dir);
	assert_int_equal(ms__llm_ask(l, ctx, &ans, &cached, err, sizeof(err)), 0);
	assert_int_equal(cached, 1);
	json_decref(ans);
	ms__llm_free(l);
	json_decref(ctx);
	json_decref(ctx2);
	json_decref(ctx3);
}

static void test_bad_replies(void **state)
{
	static const struct {
		enum mode m;
		int rc;
	} cases[] = {
	    {MALFORMED, -EPROTO}, {BADCONTENT, -EPROTO}, {SLOW, -ETIMEDOUT},
	    {E500, -EIO},         {HUGE, -EMSGSIZE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct standin s;
		standin_start(&s, cases[i].m);
		struct ms__llm *l = client(s.port, 4, 400, NULL);
		json_t *ctx = json_pack("{s:i}", "case", (int)i);
		json_t *ans = (json_t *)1;
		int cached;
		char err[256] = "";
		int rc = ms__llm_ask(l, ctx, &ans, &cached, err, sizeof(err));
		if (rc != cases[i].rc)
			fprintf(stderr, "case %zu: rc %d (%s)\n", i, rc, err);
		assert_int_equal(rc, cases[i].rc);
		assert_null(ans);
		assert_true(err[0] != 0);
		json_decref(ctx);
		ms__llm_free(l);
		standin_stop(&s);
	}
	/* Refused: nothing listens on the port any more. */
	struct standin s;
	standin_start(&s, GOOD);
	int port = s.port;
	standin_stop(&s);
	struct ms__llm *l = client(port, 4, 1000, NULL);
	json_t *ctx = json_pack("{}");
	json_t *ans;
	int cached;
	char err[256];
	assert_int_equal(ms__llm_ask(l, ctx, &ans, &cached, err, sizeof(err)), -ECONNREFUSED);
	json_decref(ctx);
	ms__llm_free(l);
}

/*
 * In the engine: a loop that compares the register with a word in RAM.
 * No single-register rule leaves it; the stand-in proposes the value, the
 * replay checks it, and only a value that leaves the loop is used.
 */
static const char *STUCK = "ldr r1, =0x40030000\n"
                           "ldr r5, =0x20000100\n"
                           "ldr r3, =0x12345678\n"
                           "str r3, [r5]\n"
                           "1: ldr r2, [r1, #0x40]\n"
                           "ldr r3, [r5]\n"
                           "cmp r2, r3\n"
                           "bne 1b\n"
                           "movs r0, #9\n"
                           "bkpt\n";

static uc_err run_llm(struct shell *sh, int port, const char *cache)
{
	size_t len = 0;
	uint8_t *bin = sh_asm(STUCK, "cortex-m3", &len);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", port);
	struct ms_infer_opts o = {.mode = MS_INFER_LLM,
	                          .llm_base_url = url,
	                          .llm_model = "stand-in",
	                          .llm_cache_dir = cache,
	                          .llm_timeout_ms = 3000,
	                          .firmware_hash = "stuck"};
	struct ms_err e;
	assert_int_equal(sh_init(sh, UC_CPU_ARM_CORTEX_M3, bin, len, 0, &o, &e), 0);
	free(bin);
	return sh_run(sh, 0, 0x20008000, 100000);
}

static void test_engine_llm(void **state)
{
	struct standin s;
	standin_start(&s, GOOD);
	struct shell sh;
	uc_err er = run_llm(&sh, s.port, NULL);
	assert_int_equal(er, UC_ERR_EXCEPTION);
	uint32_t r0;
	uc_reg_read(sh.uc, UC_ARM_REG_R0, &r0);
	assert_int_equal(r0, 9);
	assert_int_equal(s.requests, 1);
	json_t *ev = sh_find(&sh, "infer.llm", NULL);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "reason")),
	                    "accepted: replay leaves the loop");
	sh_free(&sh);
	/* A lying endpoint: its value stays in the loop, so it is not used. */
	s.mode = LIE;
	snprintf(s.answer, sizeof(s.answer),
	         "{\"category\":\"status\",\"model\":\"status\",\"value\":\"0x1\",\"mask\":\"0x1\","
	         "\"confidence\":99,\"reason\":\"trust me\"}");
	er = run_llm(&sh, s.port, NULL);
	assert_int_equal(er, UC_ERR_OK); /* still looping at the instruction limit */
	ev = sh_find(&sh, "infer.llm", NULL);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "reason")),
	                    "rejected: replay stays in the loop");
	json_t *st = ms_infer_stats(sh.inf);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(st, "decisions"), "llm_rejected")),
	    1);
	json_decref(st);
	sh_free(&sh);
	standin_stop(&s);
}

/* An endpoint that is down does not stop the firmware from running on rules. */
static void test_engine_llm_down(void **state)
{
	struct standin s;
	standin_start(&s, GOOD);
	int port = s.port;
	standin_stop(&s);
	struct shell sh;
	uc_err er = run_llm(&sh, port, NULL);
	assert_int_equal(er, UC_ERR_OK);
	json_t *ev = sh_find(&sh, "infer.llm", NULL);
	assert_non_null(ev);
	assert_non_null(json_object_get(ev, "error"));
	sh_free(&sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_validate),        cmocka_unit_test(test_ask_cache_budget),
	    cmocka_unit_test(test_bad_replies),     cmocka_unit_test(test_engine_llm),
	    cmocka_unit_test(test_engine_llm_down),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
