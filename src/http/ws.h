/*
 * ws: RFC 6455 WebSocket framing, our own (libmicrohttpd gives the upgraded
 * socket, not the framing).
 *
 * The parser is incremental and bounded: it refuses unmasked client frames
 * (server side), reserved bits, unknown opcodes, fragmented or oversized
 * control frames, and payloads above max_payload; the caller then closes
 * with the status it returns (1002 protocol error, 1009 too big).
 * Sending writes header and payload in one write (TCP_NODELAY is set by the
 * server) so small frames are not delayed.
 *
 * Threads: a parser belongs to one thread; ms_ws_send may be called by
 * several threads on one fd only if they serialise themselves.
 */
#ifndef MS_WS_H
#define MS_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	MS_WS_CONT = 0x0,
	MS_WS_TEXT = 0x1,
	MS_WS_BINARY = 0x2,
	MS_WS_CLOSE = 0x8,
	MS_WS_PING = 0x9,
	MS_WS_PONG = 0xA,
};

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key. 0 or -EINVAL. */
int ms_ws_accept_key(const char *client_key, char out[29]);

/*
 * Encode a frame header into hdr (at most 14 bytes). mask is NULL for a
 * server frame; a client passes 4 mask bytes and must mask the payload
 * with ms_ws_mask. Returns the header length.
 */
size_t ms_ws_header(uint8_t hdr[14], int opcode, bool fin, uint64_t len, const uint8_t *mask);

/* XOR data with the mask, starting at payload offset off. */
void ms_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t off);

struct ms_ws_message {
	int opcode; /* TEXT, BINARY, CLOSE, PING or PONG (continuations are joined) */
	uint8_t *data; /* owned by the parser; valid until the next ms_ws_parse */
	size_t len;
};

struct ms_ws_parser {
	bool server; /* true: expect masked frames from a client */
	size_t max_payload; /* largest message accepted */
	/* private */
	uint8_t hdr[14];
	size_t hdr_have;
	uint64_t need;
	uint8_t mask[4];
	bool masked;
	int opcode;
	bool fin;
	uint64_t got;
	int msg_opcode;
	uint8_t *msg;
	size_t msg_len, msg_cap;
	uint8_t ctl[125];
	int state;
};

void ms_ws_parser_init(struct ms_ws_parser *p, bool server, size_t max_payload);
void ms_ws_parser_free(struct ms_ws_parser *p);

/*
 * Feed bytes. Returns 1 when a whole message is in *msg (with *used bytes
 * consumed; call again with the rest), 0 when all input was consumed and
 * more is needed, or a negative close code (-1002, -1009) on a protocol
 * violation.
 */
int ms_ws_parse(struct ms_ws_parser *p, const uint8_t *data, size_t len, size_t *used,
                struct ms_ws_message *msg);

/* Send one unmasked (server) frame with a single write. 0 or -errno. */
int ms_ws_send(int fd, int opcode, const void *data, size_t len);

/* Send a close frame with a status code and reason. */
int ms_ws_send_close(int fd, uint16_t code, const char *reason);

#endif
