/*
 * Unit tests for http/ws.c: accept key, header encoding, masking, the
 * incremental parser (every split point, fragmentation with interleaved
 * control frames, limits and violations) and sending over a real socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/ws.h"

static const uint8_t mask_a[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Append one frame to buf (client frames masked with mask_a when masked). */
static size_t frame(uint8_t *buf, int opcode, bool fin, const void *payload, size_t len,
                    bool masked)
{
	size_t hl = ms_ws_header(buf, opcode, fin, len, masked ? mask_a : NULL);

	if (len > 0)
		memcpy(buf + hl, payload, len);
	if (masked)
		ms_ws_mask(buf + hl, len, mask_a, 0);
	return hl + len;
}

/* Feed all of data (in one go); return the first nonzero parse result. */
static int feed_all(struct ms_ws_parser *p, const uint8_t *data, size_t len,
                    struct ms_ws_message *m)
{
	size_t used;
	int rc = ms_ws_parse(p, data, len, &used, m);

	assert_true(used <= len);
	return rc;
}

static void test_accept_key(void **state)
{
	char out[29];

	/* RFC 6455 section 1.3 */
	assert_int_equal(ms_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(ms_ws_accept_key(NULL, out), -EINVAL);
	assert_int_equal(ms_ws_accept_key("", out), -EINVAL);
	assert_int_equal(ms_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ", out), -EINVAL);
	assert_int_equal(ms_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==x", out), -EINVAL);
	assert_int_equal(ms_ws_accept_key("dGhlIHNhbXBsZSBub25jZ===", out), -EINVAL);
	assert_int_equal(ms_ws_accept_key("dGhlIHNhbXBsZSBub25j\r\n==", out), -EINVAL);
	assert_int_equal(ms_ws_accept_key("dGhlIHNhbXBsZSBub25*ZQ==", out), -EINVAL);
	assert_string_equal(out, "");
}

static void test_header_lengths(void **state)
{
	uint8_t h[14];
	const uint8_t m[4] = {1, 2, 3, 4};

	assert_int_equal(ms_ws_header(h, MS_WS_TEXT, true, 0, NULL), 2);
	assert_int_equal(h[0], 0x81);
	assert_int_equal(h[1], 0);
	assert_int_equal(ms_ws_header(h, MS_WS_BINARY, false, 125, NULL), 2);
	assert_int_equal(h[0], 0x02);
	assert_int_equal(h[1], 125);
	assert_int_equal(ms_ws_header(h, MS_WS_BINARY, true, 126, NULL), 4);
	assert_int_equal(h[1], 126);
	assert_int_equal(h[2], 0);
	assert_int_equal(h[3], 126);
	assert_int_equal(ms_ws_header(h, MS_WS_BINARY, true, 65535, NULL), 4);
	assert_int_equal(h[2], 0xff);
	assert_int_equal(h[3], 0xff);
	assert_int_equal(ms_ws_header(h, MS_WS_BINARY, true, 65536, NULL), 10);
	assert_int_equal(h[1], 127);
	{
		const uint8_t want[8] = {0, 0, 0, 0, 0, 1, 0, 0};

		assert_memory_equal(h + 2, want, 8);
	}
	assert_int_equal(ms_ws_header(h, MS_WS_CLOSE, true, 0x123456789aULL, m), 14);
	assert_int_equal(h[0], 0x88);
	assert_int_equal(h[1], 0x80 | 127);
	{
		const uint8_t want[12] = {0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a, 1, 2, 3, 4};

		assert_memory_equal(h + 2, want, 12);
	}
	assert_int_equal(ms_ws_header(h, MS_WS_PING, true, 5, m), 6);
	assert_int_equal(h[1], 0x85);
}

static void test_mask_offsets(void **state)
{
	uint8_t whole[37], parts[37], orig[37];

	for (size_t i = 0; i < sizeof(orig); i++)
		orig[i] = (uint8_t)(i * 7 + 3);
	memcpy(whole, orig, sizeof(orig));
	memcpy(parts, orig, sizeof(orig));
	ms_ws_mask(whole, sizeof(whole), mask_a, 0);
	/* masking in odd pieces with offsets equals masking at once */
	ms_ws_mask(parts, 3, mask_a, 0);
	ms_ws_mask(parts + 3, 10, mask_a, 3);
	ms_ws_mask(parts + 13, 24, mask_a, 13);
	assert_memory_equal(whole, parts, sizeof(whole));
	assert_memory_not_equal(whole, orig, sizeof(whole));
	ms_ws_mask(whole, sizeof(whole), mask_a, 0);
	assert_memory_equal(whole, orig, sizeof(whole));
}

/* RFC 6455 section 5.7 examples. */
static void test_rfc_examples(void **state)
{
	const uint8_t masked_hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
	                                0x7f, 0x9f, 0x4d, 0x51, 0x58};
	const uint8_t unmasked_hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	const uint8_t frag[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
	struct ms_ws_parser p;
	struct ms_ws_message m;
	size_t used;

	ms_ws_parser_init(&p, true, 1024);
	assert_int_equal(ms_ws_parse(&p, masked_hello, sizeof(masked_hello), &used, &m), 1);
	assert_int_equal(used, sizeof(masked_hello));
	assert_int_equal(m.opcode, MS_WS_TEXT);
	assert_int_equal(m.len, 5);
	assert_memory_equal(m.data, "Hello", 5);
	ms_ws_parser_free(&p);

	ms_ws_parser_init(&p, false, 1024);
	assert_int_equal(ms_ws_parse(&p, unmasked_hello, sizeof(unmasked_hello), &used, &m), 1);
	assert_memory_equal(m.data, "Hello", 5);
	assert_int_equal(ms_ws_parse(&p, frag, sizeof(frag), &used, &m), 1);
	assert_int_equal(used, sizeof(frag));
	assert_int_equal(m.len, 5);
	assert_memory_equal(m.data, "Hello", 5);
	ms_ws_parser_free(&p);
}

struct expect {
	int opcode;
	size_t len;
	uint8_t fill; /* payload byte i is fill + i */
};

/*
 * A stream exercising every path: a text message in three fragments with a
 * ping and a pong between them, a 300-byte binary (16-bit length), an empty
 * text, a 70000-byte binary (64-bit length) in two fragments, an empty
 * ping and a close with a status and reason.
 */
static size_t build_stream(uint8_t *buf, bool masked, struct expect *ex, size_t *n_ex)
{
	static uint8_t pay[70000];
	size_t o = 0;
	size_t k = 0;

	for (size_t i = 0; i < sizeof(pay); i++)
		pay[i] = (uint8_t)(0x10 + i);
	o += frame(buf + o, MS_WS_TEXT, false, pay, 4, masked);
	o += frame(buf + o, MS_WS_PING, true, "\x20\x21", 2, masked);
	ex[k++] = (struct expect){MS_WS_PING, 2, 0x20};
	o += frame(buf + o, MS_WS_CONT, false, pay + 4, 3, masked);
	o += frame(buf + o, MS_WS_PONG, true, "", 0, masked);
	ex[k++] = (struct expect){MS_WS_PONG, 0, 0};
	o += frame(buf + o, MS_WS_CONT, true, pay + 7, 5, masked);
	ex[k++] = (struct expect){MS_WS_TEXT, 12, 0x10};
	o += frame(buf + o, MS_WS_BINARY, true, pay, 300, masked);
	ex[k++] = (struct expect){MS_WS_BINARY, 300, 0x10};
	o += frame(buf + o, MS_WS_TEXT, true, "", 0, masked);
	ex[k++] = (struct expect){MS_WS_TEXT, 0, 0};
	o += frame(buf + o, MS_WS_BINARY, false, pay, 65600, masked);
	o += frame(buf + o, MS_WS_CONT, true, pay + 65600, 4400, masked);
	ex[k++] = (struct expect){MS_WS_BINARY, 70000, 0x10};
	o += frame(buf + o, MS_WS_PING, true, "", 0, masked);
	ex[k++] = (struct expect){MS_WS_PING, 0, 0};
	o += frame(buf + o, MS_WS_CLOSE, true,
	           "\x03\xe8"
	           "bye",
	           5, masked);
	ex[k++] = (struct expect){MS_WS_CLOSE, 5, 0};
	*n_ex = k;
	return o;
}

static void check_msg(const struct ms_ws_message *m, const struct expect *e)
{
	assert_int_equal(m->opcode, e->opcode);
	assert_int_equal(m->len, e->len);
	if (e->opcode == MS_WS_CLOSE) {
		assert_memory_equal(m->data,
		                    "\x03\xe8"
		                    "bye",
		                    5);
		return;
	}
	for (size_t i = 0; i < m->len; i++) {
		if (m->data[i] != (uint8_t)(e->fill + i))
			fail_msg("byte %zu of a %zu-byte message is %u", i, m->len, m->data[i]);
	}
}

/* Feed pieces of the stream as chosen by cut(); all messages must come out intact. */
static void run_stream(bool server, size_t (*piece)(size_t pos, size_t total, size_t arg),
                       size_t arg)
{
	static uint8_t buf[80000];
	struct expect ex[16];
	size_t n_ex;
	size_t total = build_stream(buf, server, ex, &n_ex);
	struct ms_ws_parser p;
	struct ms_ws_message m;
	size_t pos = 0, got = 0;

	ms_ws_parser_init(&p, server, 100000);
	while (pos < total) {
		size_t n = piece(pos, total, arg);
		size_t off = 0;

		while (off < n) {
			size_t used;
			int rc = ms_ws_parse(&p, buf + pos + off, n - off, &used, &m);

			assert_true(rc >= 0);
			off += used;
			if (rc == 1) {
				assert_true(got < n_ex);
				check_msg(&m, &ex[got]);
				got++;
			} else {
				assert_int_equal(off, n);
			}
		}
		pos += n;
	}
	assert_int_equal(got, n_ex);
	ms_ws_parser_free(&p);
}

static size_t two_pieces(size_t pos, size_t total, size_t cut)
{
	return pos < cut ? cut - pos : total - pos;
}

static size_t one_byte(size_t pos, size_t total, size_t arg)
{
	return 1;
}

static size_t odd_pieces(size_t pos, size_t total, size_t arg)
{
	size_t n = (pos * 31 + arg) % 997 + 1;

	return n < total - pos ? n : total - pos;
}

static void test_split_everywhere(void **state)
{
	static uint8_t buf[80000];
	struct expect ex[16];
	size_t n_ex;
	size_t total = build_stream(buf, true, ex, &n_ex);

	/* Every split point in the part before the large message, and around its header. */
	for (size_t cut = 0; cut <= 400; cut++)
		run_stream(true, two_pieces, cut);
	for (size_t cut = total - 200; cut <= total; cut++)
		run_stream(true, two_pieces, cut);
	run_stream(true, one_byte, 0);
	run_stream(false, one_byte, 0);
	for (size_t seed = 0; seed < 20; seed++)
		run_stream(seed & 1, odd_pieces, seed);
}

/* Every split of a frame containing a masked, 16-bit-length header. */
static void test_split_every_header_byte(void **state)
{
	uint8_t buf[512];
	uint8_t pay[200];
	size_t n;

	for (size_t i = 0; i < sizeof(pay); i++)
		pay[i] = (uint8_t)i;
	n = frame(buf, MS_WS_BINARY, true, pay, sizeof(pay), true);
	for (size_t a = 0; a <= n; a++) {
		for (size_t b = a; b <= n; b += 7) {
			struct ms_ws_parser p;
			struct ms_ws_message m;
			size_t used;
			int rc;

			ms_ws_parser_init(&p, true, 1000);
			assert_int_equal(ms_ws_parse(&p, buf, a, &used, &m), a == n ? 1 : 0);
			assert_int_equal(used, a);
			if (a < n) {
				rc = ms_ws_parse(&p, buf + a, b - a, &used, &m);
				assert_int_equal(rc, b == n ? 1 : 0);
				if (rc == 0) {
					rc = ms_ws_parse(&p, buf + b, n - b, &used, &m);
					assert_int_equal(rc, 1);
				}
			}
			assert_int_equal(m.len, sizeof(pay));
			assert_memory_equal(m.data, pay, sizeof(pay));
			ms_ws_parser_free(&p);
		}
	}
}

static int parse_one(bool server, size_t max, const uint8_t *data, size_t len)
{
	struct ms_ws_parser p;
	struct ms_ws_message m;
	int rc;

	ms_ws_parser_init(&p, server, max);
	rc = feed_all(&p, data, len, &m);
	/* An error is sticky. */
	if (rc < 0) {
		size_t used;

		assert_int_equal(ms_ws_parse(&p, (const uint8_t *)"\x81\x80\0\0\0\0", 6, &used, &m),
		                 rc);
	}
	ms_ws_parser_free(&p);
	return rc;
}

static void test_violations(void **state)
{
	uint8_t b[300];
	uint8_t big[200];
	size_t n;

	memset(big, 'x', sizeof(big));
	/* unmasked frame from a client; masked frame from a server */
	n = frame(b, MS_WS_TEXT, true, "hi", 2, false);
	assert_int_equal(parse_one(true, 100, b, n), -1002);
	n = frame(b, MS_WS_TEXT, true, "hi", 2, true);
	assert_int_equal(parse_one(false, 100, b, n), -1002);
	/* reserved bits, one at a time */
	for (int bit = 4; bit <= 6; bit++) {
		n = frame(b, MS_WS_TEXT, true, "hi", 2, true);
		b[0] |= (uint8_t)(1 << bit);
		assert_int_equal(parse_one(true, 100, b, n), -1002);
	}
	/* every reserved opcode */
	for (int op = 3; op <= 0xf; op++) {
		if (op >= 8 && op <= 0xa)
			continue;
		n = frame(b, op, true, "hi", 2, true);
		assert_int_equal(parse_one(true, 100, b, n), -1002);
	}
	/* the error is found on the first two bytes, before the rest arrives */
	n = frame(b, 0x3, true, "hi", 2, true);
	assert_int_equal(parse_one(true, 100, b, 2), -1002);
	/* fragmented and oversized control frames */
	n = frame(b, MS_WS_PING, false, "hi", 2, true);
	assert_int_equal(parse_one(true, 100, b, n), -1002);
	n = frame(b, MS_WS_PING, true, big, 126, true);
	assert_int_equal(parse_one(true, 1000, b, n), -1002);
	/* continuation with nothing to continue; a new message inside a fragmented one */
	n = frame(b, MS_WS_CONT, true, "hi", 2, true);
	assert_int_equal(parse_one(true, 100, b, n), -1002);
	n = frame(b, MS_WS_TEXT, false, "hi", 2, true);
	n += frame(b + n, MS_WS_BINARY, true, "hi", 2, true);
	assert_int_equal(parse_one(true, 100, b, n), -1002);
	/* lengths not in their shortest form, and a 64-bit length with the top bit set */
	{
		const uint8_t l16[] = {0x82, 0x80 | 126, 0x00, 0x05, 1, 2, 3, 4};
		const uint8_t l64[] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 1, 2, 3, 4};
		const uint8_t top[] = {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0x01, 1, 2, 3, 4};

		assert_int_equal(parse_one(true, 1 << 20, l16, sizeof(l16)), -1002);
		assert_int_equal(parse_one(true, 1 << 20, l64, sizeof(l64)), -1002);
		assert_int_equal(parse_one(true, SIZE_MAX, top, sizeof(top)), -1002);
	}
}

static void test_limits(void **state)
{
	uint8_t b[1024];
	uint8_t big[400];
	size_t n;

	memset(big, 'y', sizeof(big));
	n = frame(b, MS_WS_BINARY, true, big, 100, true);
	assert_int_equal(parse_one(true, 100, b, n), 1);
	n = frame(b, MS_WS_BINARY, true, big, 101, true);
	assert_int_equal(parse_one(true, 100, b, n), -1009);
	/* refused as soon as the header is in: no payload needed */
	assert_int_equal(parse_one(true, 100, b, 8), -1009);
	/* fragments that together pass the limit */
	n = frame(b, MS_WS_TEXT, false, big, 60, true);
	n += frame(b + n, MS_WS_CONT, true, big, 41, true);
	assert_int_equal(parse_one(true, 100, b, n), -1009);
	/* a header claiming 2^62 bytes does not allocate */
	{
		const uint8_t huge[] = {0x82, 0x80 | 127, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};

		assert_int_equal(parse_one(true, 1 << 20, huge, sizeof(huge)), -1009);
	}
	/* control frames are bounded by 125 bytes, not by max_payload */
	n = frame(b, MS_WS_PING, true, big, 125, true);
	assert_int_equal(parse_one(true, 10, b, n), 1);
}

static void test_close_rules(void **state)
{
	uint8_t b[256];
	size_t n;

	n = frame(b, MS_WS_CLOSE, true, "", 0, true);
	assert_int_equal(parse_one(true, 100, b, n), 1);
	n = frame(b, MS_WS_CLOSE, true, "\x03", 1, true);
	assert_int_equal(parse_one(true, 100, b, n), -1002);
	n = frame(b, MS_WS_CLOSE, true, "\x03\xe8", 2, true);
	assert_int_equal(parse_one(true, 100, b, n), 1);
	n = frame(b, MS_WS_CLOSE, true, "\x0f\xa0ok", 4, true); /* 4000: application code */
	assert_int_equal(parse_one(true, 100, b, n), 1);
	n = frame(b, MS_WS_CLOSE, true, "\x03\xe7", 2, true); /* 999 */
	assert_int_equal(parse_one(true, 100, b, n), -1002);
	n = frame(b, MS_WS_CLOSE, true, "\x03\xed", 2, true); /* 1005 must not be sent */
	assert_int_equal(parse_one(true, 100, b, n), -1002);
	n = frame(b, MS_WS_CLOSE, true, "\x03\xee", 2, true); /* 1006 */
	assert_int_equal(parse_one(true, 100, b, n), -1002);
	n = frame(b, MS_WS_CLOSE, true, "\x13\x88", 2, true); /* 5000 */
	assert_int_equal(parse_one(true, 100, b, n), -1002);
	n = frame(b, MS_WS_CLOSE, true, "\x03\xe8\xc3\xa9t\xc3\xa9", 7, true); /* UTF-8 reason */
	assert_int_equal(parse_one(true, 100, b, n), 1);
	n = frame(b, MS_WS_CLOSE, true, "\x03\xe8\xc3", 3, true); /* truncated UTF-8 */
	assert_int_equal(parse_one(true, 100, b, n), -1007);
	n = frame(b, MS_WS_CLOSE, true, "\x03\xe8\xed\xa0\x80", 5, true); /* a surrogate */
	assert_int_equal(parse_one(true, 100, b, n), -1007);
	n = frame(b, MS_WS_CLOSE, true, "\x03\xe8\xc0\xaf", 4, true); /* overlong */
	assert_int_equal(parse_one(true, 100, b, n), -1007);
}

/* ---- sending over a real socket ---- */

struct reader {
	int fd;
	struct ms_ws_parser p;
	int opcode;
	size_t len;
	uint8_t *copy;
};

static void *read_one(void *arg)
{
	struct reader *r = arg;
	uint8_t buf[4096];

	for (;;) {
		ssize_t n = read(r->fd, buf, sizeof(buf));
		size_t off = 0;

		if (n <= 0)
			return NULL;
		while (off < (size_t)n) {
			struct ms_ws_message m;
			size_t used;
			int rc = ms_ws_parse(&r->p, buf + off, (size_t)n - off, &used, &m);

			off += used;
			if (rc < 0)
				return NULL;
			if (rc == 1) {
				r->opcode = m.opcode;
				r->len = m.len;
				r->copy = malloc(m.len + 1);
				memcpy(r->copy, m.data, m.len);
				return NULL;
			}
		}
	}
}

static void send_and_read(int opcode, const uint8_t *data, size_t len, struct reader *r)
{
	int sv[2];
	pthread_t th;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(r, 0, sizeof(*r));
	r->fd = sv[1];
	r->opcode = -1;
	ms_ws_parser_init(&r->p, false, 1 << 22);
	assert_int_equal(pthread_create(&th, NULL, read_one, r), 0);
	assert_int_equal(ms_ws_send(sv[0], opcode, data, len), 0);
	pthread_join(th, NULL);
	ms_ws_parser_free(&r->p);
	close(sv[0]);
	close(sv[1]);
}

static void test_send(void **state)
{
	static uint8_t big[3 << 20];
	struct reader r;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13);
	send_and_read(MS_WS_TEXT, (const uint8_t *)"hello", 5, &r);
	assert_int_equal(r.opcode, MS_WS_TEXT);
	assert_int_equal(r.len, 5);
	assert_memory_equal(r.copy, "hello", 5);
	free(r.copy);
	/* larger than the socket buffer: the send loops over partial writes */
	send_and_read(MS_WS_BINARY, big, sizeof(big), &r);
	assert_int_equal(r.opcode, MS_WS_BINARY);
	assert_int_equal(r.len, sizeof(big));
	assert_memory_equal(r.copy, big, sizeof(big));
	free(r.copy);
	send_and_read(MS_WS_BINARY, NULL, 0, &r);
	assert_int_equal(r.opcode, MS_WS_BINARY);
	assert_int_equal(r.len, 0);
	free(r.copy);
	/* control frames cannot carry more than 125 bytes */
	assert_int_equal(ms_ws_send(1, MS_WS_PING, big, 126), -EINVAL);
}

static void test_send_close(void **state)
{
	int sv[2];
	uint8_t buf[256];
	ssize_t n;
	struct ms_ws_parser p;
	struct ms_ws_message m;
	size_t used;
	/* 200 bytes of two-byte characters: the cut must fall between characters */
	char reason[201];

	for (int i = 0; i < 200; i += 2) {
		reason[i] = (char)0xc3;
		reason[i + 1] = (char)0xa9;
	}
	reason[200] = '\0';
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(ms_ws_send_close(sv[0], 1000, "normal"), 0);
	assert_int_equal(ms_ws_send_close(sv[0], 1001, reason), 0);
	n = read(sv[1], buf, sizeof(buf));
	assert_true(n > 0);
	ms_ws_parser_init(&p, false, 1024);
	assert_int_equal(ms_ws_parse(&p, buf, (size_t)n, &used, &m), 1);
	assert_int_equal(m.opcode, MS_WS_CLOSE);
	assert_int_equal(m.len, 8);
	assert_memory_equal(m.data, "\x03\xe8normal", 8);
	/* the second close passes our own UTF-8 check, so it was not cut mid-character */
	assert_int_equal(ms_ws_parse(&p, buf + used, (size_t)n - used, &used, &m), 1);
	assert_int_equal(m.opcode, MS_WS_CLOSE);
	assert_true(m.len <= 125);
	assert_int_equal(m.len, 2 + 122);
	ms_ws_parser_free(&p);

	/* a peer that has gone: an error, not SIGPIPE */
	close(sv[1]);
	assert_int_equal(ms_ws_send(sv[0], MS_WS_TEXT, "x", 1), -EPIPE);
	close(sv[0]);
	/* not a socket at all */
	{
		int pf[2];

		assert_int_equal(pipe(pf), 0);
		assert_int_equal(ms_ws_send(pf[1], MS_WS_TEXT, "pipe", 4), 0);
		assert_int_equal(read(pf[0], buf, sizeof(buf)), 6);
		assert_memory_equal(buf, "\x81\x04pipe", 6);
		close(pf[0]);
		close(pf[1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accept_key),       cmocka_unit_test(test_header_lengths),
	    cmocka_unit_test(test_mask_offsets),     cmocka_unit_test(test_rfc_examples),
	    cmocka_unit_test(test_split_everywhere), cmocka_unit_test(test_split_every_header_byte),
	    cmocka_unit_test(test_violations),       cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_close_rules),      cmocka_unit_test(test_send),
	    cmocka_unit_test(test_send_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
