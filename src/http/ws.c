/*
 * ws: RFC 6455 WebSocket framing (see ws.h).
 *
 * The parser is a small state machine fed arbitrary slices of the byte
 * stream: a frame may arrive one byte at a time, and control frames may sit
 * between the fragments of a data message (RFC 6455 section 5.4). Data
 * fragments are joined in p->msg, control payloads go to p->ctl, so a ping
 * inside a fragmented message does not disturb the message being joined.
 * Every violation ends the parser in an error state that keeps returning the
 * same close code.
 *
 * Threads: a parser belongs to the one thread that feeds it; the send
 * functions keep no state and may run on any thread (writers to one fd
 * serialise themselves, as ws.h says).
 */
#include "http/ws.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

enum {
	ST_HEADER, /* collecting the frame header in p->hdr */
	ST_PAYLOAD, /* copying p->need payload bytes */
	ST_DELIVERED, /* a whole data message was handed out; forget it on the next call */
	ST_ERROR, /* a violation; p->need holds the close code */
};

/* How long a send waits for a full socket buffer to drain before giving up. */
#define SEND_WAIT_MS 10000

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ms_ws_accept_key(const char *client_key, char out[29])
{
	uint8_t raw[18];
	uint8_t digest[SHA_DIGEST_LENGTH];
	char buf[64];
	size_t n;
	EVP_ENCODE_CTX *ctx;
	int dl;

	out[0] = '\0';
	if (client_key == NULL)
		return -EINVAL;
	n = strlen(client_key);
	/* The key is the base64 of 16 random bytes: exactly 24 characters ending "==". */
	if (n != 24 || client_key[22] != '=' || client_key[23] != '=')
		return -EINVAL;
	for (size_t i = 0; i < 22; i++) {
		char c = client_key[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return -EINVAL;
	}
	ctx = EVP_ENCODE_CTX_new();
	if (ctx == NULL)
		return -ENOMEM;
	EVP_DecodeInit(ctx);
	dl = 0;
	if (EVP_DecodeUpdate(ctx, raw, &dl, (const unsigned char *)client_key, (int)n) < 0) {
		EVP_ENCODE_CTX_free(ctx);
		return -EINVAL;
	}
	{
		int fl = 0;

		if (EVP_DecodeFinal(ctx, raw + dl, &fl) < 0) {
			EVP_ENCODE_CTX_free(ctx);
			return -EINVAL;
		}
		dl += fl;
	}
	EVP_ENCODE_CTX_free(ctx);
	if (dl != 16)
		return -EINVAL;

	memcpy(buf, client_key, 24);
	memcpy(buf + 24, ws_guid, sizeof(ws_guid) - 1);
	SHA1((const unsigned char *)buf, 24 + sizeof(ws_guid) - 1, digest);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
	return 0;
}

size_t ms_ws_header(uint8_t hdr[14], int opcode, bool fin, uint64_t len, const uint8_t *mask)
{
	size_t n = 2;

	hdr[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		hdr[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		n = 4;
	} else {
		hdr[1] = 127;
		for (int i = 0; i < 8; i++)
			hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask != NULL) {
		hdr[1] |= 0x80;
		memcpy(hdr + n, mask, 4);
		n += 4;
	}
	return n;
}

void ms_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		data[i] ^= mask[(off + i) & 3];
}

void ms_ws_parser_init(struct ms_ws_parser *p, bool server, size_t max_payload)
{
	memset(p, 0, sizeof(*p));
	p->server = server;
	p->max_payload = max_payload;
	p->state = ST_HEADER;
}

void ms_ws_parser_free(struct ms_ws_parser *p)
{
	free(p->msg);
	p->msg = NULL;
	p->msg_len = 0;
	p->msg_cap = 0;
}

static int fail(struct ms_ws_parser *p, int code)
{
	p->state = ST_ERROR;
	p->need = (uint64_t)code;
	return -code;
}

static bool is_control(int opcode)
{
	return (opcode & 0x8) != 0;
}

/* Full header length once the first two bytes are known. */
static size_t header_len(const uint8_t *hdr)
{
	size_t n = 2;
	uint8_t l7 = hdr[1] & 0x7f;

	if (l7 == 126)
		n += 2;
	else if (l7 == 127)
		n += 8;
	if (hdr[1] & 0x80)
		n += 4;
	return n;
}

/* Checks possible on the first two bytes. Returns 0 or a close code. */
static int check_first_bytes(struct ms_ws_parser *p)
{
	uint8_t b0 = p->hdr[0];
	uint8_t b1 = p->hdr[1];
	int opcode = b0 & 0x0f;
	bool fin = (b0 & 0x80) != 0;
	bool masked = (b1 & 0x80) != 0;

	/* No extension is negotiated, so reserved bits must be clear. */
	if (b0 & 0x70)
		return 1002;
	switch (opcode) {
	case MS_WS_CONT:
		if (p->msg_opcode == 0)
			return 1002; /* continuation with nothing to continue */
		break;
	case MS_WS_TEXT:
	case MS_WS_BINARY:
		if (p->msg_opcode != 0)
			return 1002; /* new message before the last one ended */
		break;
	case MS_WS_CLOSE:
	case MS_WS_PING:
	case MS_WS_PONG:
		if (!fin || (b1 & 0x7f) > 125)
			return 1002;
		break;
	default:
		return 1002;
	}
	/* Clients must mask, servers must not (section 5.1). */
	if (p->server != masked)
		return 1002;
	return 0;
}

/* Checks on the whole header; sets need, opcode, fin, mask. Returns 0 or a close code. */
static int decode_header(struct ms_ws_parser *p)
{
	uint8_t l7 = p->hdr[1] & 0x7f;
	uint64_t len = l7;
	size_t off = 2;

	if (l7 == 126) {
		len = (uint64_t)p->hdr[2] << 8 | p->hdr[3];
		off = 4;
		if (len < 126)
			return 1002; /* the length must use the shortest form */
	} else if (l7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p->hdr[2 + i];
		off = 10;
		if (len >> 63)
			return 1002;
		if (len <= 0xffff)
			return 1002;
	}
	p->opcode = p->hdr[0] & 0x0f;
	p->fin = (p->hdr[0] & 0x80) != 0;
	p->masked = (p->hdr[1] & 0x80) != 0;
	if (p->masked)
		memcpy(p->mask, p->hdr + off, 4);
	p->need = len;
	p->got = 0;
	if (!is_control(p->opcode)) {
		if (len > p->max_payload || p->msg_len > p->max_payload - len)
			return 1009;
		if (p->opcode != MS_WS_CONT)
			p->msg_opcode = p->opcode;
	}
	return 0;
}

static bool grow_msg(struct ms_ws_parser *p, size_t want)
{
	size_t cap;
	uint8_t *m;

	if (want <= p->msg_cap)
		return true;
	cap = p->msg_cap ? p->msg_cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if (cap > p->max_payload)
		cap = p->max_payload;
	if (cap < want)
		cap = want;
	m = realloc(p->msg, cap);
	if (m == NULL)
		return false;
	p->msg = m;
	p->msg_cap = cap;
	return true;
}

static bool valid_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t extra;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			extra = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			extra = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			extra = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= extra)
			return false;
		for (size_t k = 1; k <= extra; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += extra + 1;
	}
	return true;
}

/* Close payload: empty, or a status code a peer may send plus a UTF-8 reason. */
static int check_close_payload(const uint8_t *d, size_t n)
{
	unsigned code;

	if (n == 0)
		return 0;
	if (n == 1)
		return 1002;
	code = (unsigned)d[0] << 8 | d[1];
	if (code < 1000 || code >= 5000)
		return 1002;
	if (code < 3000 && !(code <= 1003 || (code >= 1007 && code <= 1011)))
		return 1002; /* 1004-1006, 1012+ below 3000 are reserved or never sent */
	if (!valid_utf8(d + 2, n - 2))
		return 1007;
	return 0;
}

int ms_ws_parse(struct ms_ws_parser *p, const uint8_t *data, size_t len, size_t *used,
                struct ms_ws_message *msg)
{
	size_t pos = 0;
	int rc;

	*used = 0;
	if (p->state == ST_ERROR)
		return -(int)p->need;
	if (p->state == ST_DELIVERED) {
		p->msg_len = 0;
		p->msg_opcode = 0;
		p->state = ST_HEADER;
	}
	for (;;) {
		if (p->state == ST_HEADER) {
			size_t want = p->hdr_have < 2 ? 2 : header_len(p->hdr);

			while (p->hdr_have < want && pos < len) {
				p->hdr[p->hdr_have++] = data[pos++];
				if (p->hdr_have == 2) {
					rc = check_first_bytes(p);
					if (rc != 0) {
						*used = pos;
						return fail(p, rc);
					}
					want = header_len(p->hdr);
				}
			}
			if (p->hdr_have < want) {
				*used = pos;
				return 0;
			}
			rc = decode_header(p);
			if (rc != 0) {
				*used = pos;
				return fail(p, rc);
			}
			if (!is_control(p->opcode) && !grow_msg(p, p->msg_len + (size_t)p->need)) {
				*used = pos;
				return fail(p, 1011);
			}
			p->hdr_have = 0;
			p->state = ST_PAYLOAD;
		}

		/* ST_PAYLOAD */
		{
			size_t take = len - pos;
			uint8_t *dst;

			if ((uint64_t)take > p->need - p->got)
				take = (size_t)(p->need - p->got);
			if (take > 0) {
				if (is_control(p->opcode))
					dst = p->ctl + p->got;
				else
					dst = p->msg + p->msg_len + p->got;
				memcpy(dst, data + pos, take);
				if (p->masked)
					ms_ws_mask(dst, take, p->mask, p->got);
				pos += take;
				p->got += take;
			}
		}
		if (p->got < p->need) {
			*used = pos;
			return 0;
		}

		/* A whole frame is in. */
		p->state = ST_HEADER;
		if (is_control(p->opcode)) {
			if (p->opcode == MS_WS_CLOSE) {
				rc = check_close_payload(p->ctl, (size_t)p->need);
				if (rc != 0) {
					*used = pos;
					return fail(p, rc);
				}
			}
			msg->opcode = p->opcode;
			msg->data = p->ctl;
			msg->len = (size_t)p->need;
			*used = pos;
			return 1;
		}
		p->msg_len += (size_t)p->need;
		if (p->fin) {
			msg->opcode = p->msg_opcode;
			msg->data = p->msg != NULL ? p->msg : p->ctl;
			msg->len = p->msg_len;
			p->state = ST_DELIVERED;
			*used = pos;
			return 1;
		}
		if (pos == len) {
			*used = pos;
			return 0;
		}
	}
}

/*
 * Write all iovecs: one sendmsg in the common case. MSG_NOSIGNAL keeps a
 * closed peer from killing the daemon with SIGPIPE; fds that are not sockets
 * (pipes in tests) fall back to writev.
 */
static int write_all(int fd, struct iovec *iov, int cnt)
{
	bool is_socket = true;

	while (cnt > 0) {
		ssize_t w;

		if (is_socket) {
			struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};

			w = sendmsg(fd, &mh, MSG_NOSIGNAL);
			if (w < 0 && errno == ENOTSOCK) {
				is_socket = false;
				continue;
			}
		} else {
			w = writev(fd, iov, cnt);
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd pfd = {.fd = fd, .events = POLLOUT};
				int pr = poll(&pfd, 1, SEND_WAIT_MS);

				if (pr == 0)
					return -ETIMEDOUT;
				if (pr < 0 && errno != EINTR)
					return -errno;
				continue;
			}
			return -errno;
		}
		while (cnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int ms_ws_send(int fd, int opcode, const void *data, size_t len)
{
	uint8_t hdr[14];
	struct iovec iov[2];
	size_t hl;

	if (is_control(opcode) && len > 125)
		return -EINVAL;
	if (len > 0 && data == NULL)
		return -EINVAL;
	hl = ms_ws_header(hdr, opcode, true, len, NULL);
	iov[0].iov_base = hdr;
	iov[0].iov_len = hl;
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	return write_all(fd, iov, len > 0 ? 2 : 1);
}

int ms_ws_send_close(int fd, uint16_t code, const char *reason)
{
	uint8_t payload[125];
	size_t rl = reason != NULL ? strlen(reason) : 0;

	if (rl > sizeof(payload) - 2) {
		rl = sizeof(payload) - 2;
		/* Do not cut a UTF-8 sequence in half. */
		while (rl > 0 && ((uint8_t)reason[rl] & 0xc0) == 0x80)
			rl--;
	}
	payload[0] = (uint8_t)(code >> 8);
	payload[1] = (uint8_t)code;
	if (rl > 0)
		memcpy(payload + 2, reason, rl);
	return ms_ws_send(fd, MS_WS_CLOSE, payload, rl + 2);
}
