/*
 * mctl: the command-line client of machineserver. Declarations shared by
 * the files of src/cli/ (util.c, rest.c, wsclient.c, console.c, mctl.c).
 *
 * The program is single-threaded. Names are prefixed mctl_ (this program's
 * own namespace; nothing here is part of libms).
 */
#ifndef MS_MCTL_H
#define MS_MCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "http/ws.h"

/* Exit codes, as --help lists them. */
enum {
	MCTL_OK = 0,
	MCTL_FAIL = 1, /* the server refused (error reply); run: failure text or machine stopped */
	MCTL_USAGE = 2, /* bad command line or unreadable local file */
	MCTL_TIMEOUT = 3, /* run: no expected text before --timeout */
	MCTL_INFRA = 4, /* server unreachable, bad reply, emulator failure */
	MCTL_INTERRUPTED = 130,
};

/* ---- util.c: pure helpers (unit tested) ---- */

/* Command-line options: a table per command. */
struct mctl_optdef {
	const char *name; /* long name without "--" */
	char short_name; /* 0 when none */
	bool value; /* takes a value */
	int id; /* index into mctl_args.val / set */
};

#define MCTL_MAX_OPTS 32
#define MCTL_MAX_POS 8

struct mctl_args {
	const char *val[MCTL_MAX_OPTS];
	bool set[MCTL_MAX_OPTS];
	const char *pos[MCTL_MAX_POS];
	int npos;
};

/*
 * Parse argv[0..argc) against defs (terminated by a zero entry): options
 * may come anywhere, as "--name value", "--name=value", "-x value" or
 * "-xvalue"; "--" ends options. Returns 0, or -1 with err filled (unknown
 * option, missing value, value given to a flag, too many arguments, an
 * option given twice).
 */
int mctl_parse_args(int argc, char **argv, const struct mctl_optdef *defs, struct mctl_args *a,
                    char *err, size_t cap);

/* Parse seconds ("10", "2.5") into milliseconds; -1 when not a positive number. */
long long mctl_parse_seconds(const char *s);

/* Parse an unsigned integer in C notation (decimal, 0x hex); false when malformed. */
bool mctl_parse_u64(const char *s, uint64_t *out);

/* Identifiers the client puts into URL paths: [A-Za-z0-9_.-]{1,128}. */
bool mctl_valid_id(const char *s);

/* An http:// URL split into what a plain TCP client needs. */
struct mctl_url {
	char host[256]; /* without brackets for IPv6 literals */
	char port[8];
	char prefix[512]; /* path before /api, without a trailing slash; "" for none */
};

/* Returns 0, or -1 with err filled (https, other schemes, bad port, user info). */
int mctl_parse_url(const char *url, struct mctl_url *u, char *err, size_t cap);

/*
 * Incremental search for the first of two byte strings in a stream that
 * arrives in chunks: a match split across chunks is found.
 */
struct mctl_matcher {
	const uint8_t *pat[2];
	size_t len[2]; /* 0: not searched for */
	uint8_t *tail; /* the last (longest pattern - 1) bytes seen */
	size_t tail_len, tail_cap;
};

int mctl_matcher_init(struct mctl_matcher *m, const uint8_t *a, size_t alen, const uint8_t *b,
                      size_t blen);
/* Feed a chunk: returns 0 or 1 for the pattern found first (earliest end), -1 for none. */
int mctl_matcher_feed(struct mctl_matcher *m, const uint8_t *data, size_t len);
void mctl_matcher_free(struct mctl_matcher *m);

/* ---- rest.c: the REST client on libcurl ---- */

struct mctl_client {
	char *base; /* server URL without a trailing slash */
	char *auth_header; /* "Authorization: ..." or NULL */
	bool compact; /* print JSON on one line */
	void *curl;
};

struct mctl_reply {
	long status;
	char *body; /* NUL-terminated */
	size_t len;
	json_t *json; /* the body parsed, or NULL when it is not JSON */
};

int mctl_client_init(struct mctl_client *c, const char *server, const char *api_key,
                     const char *token);
void mctl_client_free(struct mctl_client *c);
void mctl_reply_free(struct mctl_reply *r);

/*
 * Send a request to base + path. body (may be NULL) is sent as JSON;
 * upload_file (may be NULL) as the multipart field "file". Returns 0 when
 * the server answered (any status), or MCTL_INFRA after printing why the
 * server could not be reached.
 */
int mctl_request(struct mctl_client *c, const char *method, const char *path, json_t *body,
                 const char *upload_file, struct mctl_reply *r);

/*
 * mctl_request plus the usual checks: an error status prints the server's
 * message and gives MCTL_FAIL; a 2xx reply that is not JSON (when want_json)
 * gives MCTL_INFRA. Returns MCTL_OK with *r filled otherwise.
 */
int mctl_call(struct mctl_client *c, const char *method, const char *path, json_t *body,
              const char *upload_file, bool want_json, struct mctl_reply *r);

/* Print a JSON value on stdout, pretty unless c->compact. */
void mctl_print_json(struct mctl_client *c, json_t *v);

/* "/api/v1/sessions/<id>/<rest>" with id URL-escaped; heap string. */
char *mctl_session_path(const char *id, const char *rest);

/* ---- wsclient.c: WebSocket client over a plain TCP socket ---- */

struct mctl_ws {
	int fd;
	struct ms_ws_parser parser;
	uint8_t *buf; /* bytes read but not yet parsed */
	size_t buf_len, buf_off, buf_cap;
	bool closed; /* a close frame was received or sent */
};

/*
 * Connect to server (http:// URL) and upgrade path to a WebSocket with the
 * given Authorization header line (may be NULL). Returns 0, or MCTL_INFRA
 * (network, bad handshake) / MCTL_FAIL (the server refused with an error
 * status) after printing why.
 */
int mctl_ws_connect(struct mctl_ws *ws, const char *server, const char *path,
                    const char *auth_header, int timeout_ms);

/* Send one masked frame. 0 or -errno. */
int mctl_ws_send(struct mctl_ws *ws, int opcode, const void *data, size_t len);

/*
 * Read what the socket has (call when poll says readable). Returns 0, or
 * -1 when the connection ended.
 */
int mctl_ws_read(struct mctl_ws *ws);

/*
 * Next complete data message from what was read: 1 with *m filled (valid
 * until the next call), 0 when more bytes are needed, -1 when the peer
 * closed or broke the protocol. Pings are answered here.
 */
int mctl_ws_next(struct mctl_ws *ws, struct ms_ws_message *m);

void mctl_ws_close(struct mctl_ws *ws);

/* ---- mctl.c: options every command takes ---- */

/* Option ids 0..3 are the global options; commands number theirs from MCTL_OPT_FIRST. */
enum { MCTL_OPT_SERVER, MCTL_OPT_API_KEY, MCTL_OPT_TOKEN, MCTL_OPT_COMPACT, MCTL_OPT_FIRST };

#define MCTL_GLOBAL_OPTS                                                                           \
	{"server", 's', true, MCTL_OPT_SERVER}, {"api-key", 'k', true, MCTL_OPT_API_KEY},          \
	    {"token", 't', true, MCTL_OPT_TOKEN},                                                  \
	{                                                                                          \
		"compact", 0, false, MCTL_OPT_COMPACT                                              \
	}

/* Global options given before the command word. */
extern struct mctl_args mctl_globals;

/*
 * Set up the client from the options (after the command word, then before
 * it, then the environment). Returns 0 or MCTL_USAGE / MCTL_INFRA after
 * printing why.
 */
int mctl_connect(const struct mctl_args *a, struct mctl_client *c);

/* Print "mctl: " and the message on stderr. */
void mctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- console.c ---- */

int mctl_cmd_console(int argc, char **argv);
int mctl_cmd_run(int argc, char **argv);

#endif
