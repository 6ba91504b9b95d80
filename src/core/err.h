/*
 * err: the project's error convention.
 *
 * Functions return int: 0 on success, a negative code on failure. Codes are
 * negative errno values (-ENOENT, -EINVAL ...) or project codes below -1000.
 * Where a failure must reach an HTTP client, the function also fills a
 * struct ms_err with the HTTP status, a stable machine-readable code and a
 * human message (lower case, no full stop, what failed first), which the
 * API layer turns into {"error":{"code":...,"message":...}}.
 *
 * Thread safety: pure functions, callable from any thread.
 */
#ifndef MS_ERR_H
#define MS_ERR_H

#include <stddef.h>

/* Project error codes (below -1000). */
enum {
	MS_EBADINPUT = -1001, /* client sent something malformed */
	MS_ESTATE = -1002, /* operation not allowed in this state */
	MS_EUNSUPPORTED = -1003, /* backend or board cannot do this */
	MS_EEMULATOR = -1004, /* the emulator failed; reason in ms_err */
	MS_EQUOTA = -1005, /* a configured limit was reached */
	MS_ETOOBIG = -1006, /* input larger than allowed */
	MS_EAUTH = -1007, /* missing or bad credentials */
	MS_EFORBIDDEN = -1008, /* authenticated but not allowed */
	MS_ENOTFOUND = -1009, /* named object does not exist */
	MS_ECONFLICT = -1010, /* already exists */
	MS_EINTERNAL = -1011, /* our own bug or host failure */
};

/*
 * Error detail for the API layer. status is an HTTP status (400..599);
 * code is a short snake_case identifier (e.g. "session_not_found").
 */
struct ms_err {
	int status;
	char code[48];
	char message[512];
};

/*
 * Fill *e (which may be NULL) and return the project code matching status:
 * 400 -> MS_EBADINPUT, 401 -> MS_EAUTH, 403 -> MS_EFORBIDDEN,
 * 404 -> MS_ENOTFOUND, 409 -> MS_ESTATE, 413 -> MS_ETOOBIG, 429 -> MS_EQUOTA,
 * 501 -> MS_EUNSUPPORTED, 502 -> MS_EEMULATOR, anything else MS_EINTERNAL.
 * The message is printf-formatted and truncated to fit.
 */
int ms_fail(struct ms_err *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clear *e to "no error" (status 0). */
void ms_err_clear(struct ms_err *e);

/* Text for a negative code (errno or project code). Never NULL. */
const char *ms_strerror(int code);

#endif
