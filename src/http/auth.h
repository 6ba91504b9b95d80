/*
 * auth: API keys, HS256 JWTs and single-use console tickets.
 *
 * Authorization: ApiKey <key>    compared in constant time against
 *                                auth.api_keys; subject "key:<id>" where id
 *                                is the first 12 hex digits of SHA-256(key),
 *                                so logs never hold the key itself.
 * Authorization: Bearer <jwt>    HS256 only, with auth.jwt_secret; the
 *                                header must say {"alg":"HS256"} (alg=none,
 *                                RS256 and others are refused), the
 *                                signature must match, "exp" is required and
 *                                checked, "nbf" checked when present (30 s
 *                                leeway for both); subject "jwt:<sub>".
 *
 * Tickets let a browser open a WebSocket (it cannot set headers): an
 * authenticated POST issues a random 128-bit ticket bound to one session
 * that lives 30 s and works once.
 *
 * Threads: any thread; a mutex guards the ticket table. Keys and secret are
 * read-only after ms_auth_init.
 */
#ifndef MS_AUTH_H
#define MS_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/config.h"
#include "core/err.h"

int ms_auth_init(const struct ms_config *cfg);
void ms_auth_fini(void);

/* True when auth.enabled. */
int ms_auth_enabled(void);

/*
 * Check an Authorization header value (may be NULL). On success fill
 * subject. 401 "unauthorized" with a message saying what is wrong otherwise.
 */
int ms_auth_check(const char *authorization, char *subject, size_t cap, struct ms_err *e);

/*
 * Verify an HS256 token against key at time now (seconds). *claims (may be
 * NULL) receives the payload object (new reference).
 */
int ms_jwt_verify(const char *token, const uint8_t *key, size_t key_len, int64_t now,
                  json_t **claims, struct ms_err *e);

/* Sign claims with HS256. Returns a heap string the caller frees, or NULL. */
char *ms_jwt_sign(json_t *claims, const uint8_t *key, size_t key_len);

/* Issue a ticket for session_id on behalf of subject; out gets 32 hex digits + NUL. */
int ms_ticket_issue(const char *session_id, const char *subject, char out[33]);

/* Redeem once: 0 and the subject when valid for this session, 401 otherwise. */
int ms_ticket_redeem(const char *ticket, const char *session_id, char *subject, size_t cap,
                     struct ms_err *e);

#endif
