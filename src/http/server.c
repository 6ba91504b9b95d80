/*
 * server: libmicrohttpd glue; see server.h.
 *
 * Threads: MHD's pool threads run on_request/on_completed; each connection's
 * struct conn belongs to the thread serving it. WebSocket connections get a
 * detached thread of their own after the upgrade (ws_thread). MHD frees an
 * upgraded connection (its socket and the handle MHD_upgrade_action takes)
 * in MHD_stop_daemon, so every WebSocket thread must have handed its
 * connection back before that call: ms_http_stop shuts their sockets down,
 * which ends them, and waits for the last one. ws_mu guards ws_list (the
 * sockets still open), ws_live (threads that have not yet handed their
 * connection back) and ws_stopping (no new WebSocket thread may start).
 *
 * Request life: first call → match the route, check auth and declared size
 * (errors for requests with a body are answered at once, so we never read a
 * huge unauthenticated upload); following calls → accumulate the body (JSON,
 * capped) or spool the upload to a file; last call → run the handler, queue
 * the response, count it, audit it. Bodiless requests are answered on the
 * second call: answering on the first makes MHD close keep-alive
 * connections.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/store.h"
#include "core/text.h"
#include "http/api.h"
#include "http/auth.h"
#include "http/http.h"
#include "http/metrics.h"
#include "http/router.h"
#include "http/ws.h"

#define MAX_JSON_BODY (1024 * 1024)

const struct ms_config *ms_api_config;

static struct MHD_Daemon *daemon_h;
static char spool_dir[600];

static pthread_mutex_t ws_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ws_cv = PTHREAD_COND_INITIALIZER;
static struct ws_start *ws_list;
static unsigned ws_live;
static bool ws_stopping;

struct conn {
	struct timespec start;
	const struct ms_route *route;
	struct ms_req req;
	struct ms_resp resp;
	struct ms_err early; /* an error found before the body was read */
	bool has_early;
	bool answered;
	bool too_big;
	char scratch[512]; /* route parameters */
	char path[1024];
	uint8_t *body;
	size_t body_len, body_cap;
	struct MHD_PostProcessor *pp;
	int spool_fd;
	char spool_path[700];
	char upload_name[256];
	bool got_file;
	uint64_t limit;
};

struct ws_start {
	ms_ws_handler fn;
	void *ud;
	int fd;
	struct MHD_UpgradeResponseHandle *urh;
	uint8_t *early;
	size_t early_len;
	struct ws_start *prev, *next; /* in ws_list while fd is open; under ws_mu */
};

static double elapsed(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static bool is_mutating(const char *method)
{
	return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

/* ---- WebSocket upgrade -------------------------------------------------- */

/* Called with ws_mu held. */
static void ws_unlist(struct ws_start *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		ws_list = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

/* Hand the connection back to MHD (which closes the socket) and free w. */
static void ws_finish(struct ws_start *w)
{
	pthread_mutex_lock(&ws_mu);
	/* Off the list before the socket closes: ms_http_stop must not shut down a reused fd. */
	ws_unlist(w);
	pthread_mutex_unlock(&ws_mu);
	MHD_upgrade_action(w->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(w->early);
	free(w);
	pthread_mutex_lock(&ws_mu);
	ws_live--;
	pthread_cond_broadcast(&ws_cv);
	pthread_mutex_unlock(&ws_mu);
}

static void *ws_thread(void *arg)
{
	struct ws_start *w = arg;

	w->fn(w->fd, w->early, w->early_len, w->ud);
	ws_finish(w);
	return NULL;
}

/* Runs on an MHD pool thread, so MHD_stop_daemon cannot free the connection meanwhile. */
static void on_upgrade(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct ws_start *w = cls;
	pthread_attr_t attr;
	pthread_t t;
	int one = 1;
	int flags = fcntl(sock, F_GETFL);
	int rc;

	(void)c;
	(void)con_cls;
	w->fd = sock;
	w->urh = urh;
	pthread_mutex_lock(&ws_mu);
	if (ws_stopping) {
		pthread_mutex_unlock(&ws_mu);
		/* The server is stopping: close at once; the handler owns ud and cleans up. */
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		w->fn(-1, NULL, 0, w->ud);
		free(w);
		return;
	}
	w->next = ws_list;
	if (ws_list != NULL)
		ws_list->prev = w;
	ws_list = w;
	ws_live++;
	pthread_mutex_unlock(&ws_mu);

	/* The WebSocket thread does blocking writes and polls for reads. */
	if (flags >= 0)
		fcntl(sock, F_SETFL, flags & ~O_NONBLOCK);
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (extra_in_size > 0) {
		w->early = malloc(extra_in_size);
		if (w->early != NULL) {
			memcpy(w->early, extra_in, extra_in_size);
			w->early_len = extra_in_size;
		}
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	rc = pthread_create(&t, &attr, ws_thread, w);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		ms_warn("cannot start a WebSocket thread: %s", strerror(rc));
		/* The handler owns ud: run it with a closed socket so it cleans up. */
		w->fn(-1, NULL, 0, w->ud);
		ws_finish(w);
	}
}

/* Check the handshake headers; fill resp->ws_accept or an error. */
static bool ws_handshake_ok(struct conn *cn, struct ms_err *e)
{
	const char *upgrade = ms_req_header(&cn->req, "Upgrade");
	const char *version = ms_req_header(&cn->req, "Sec-WebSocket-Version");
	const char *key = ms_req_header(&cn->req, "Sec-WebSocket-Key");

	if (upgrade == NULL || strcasecmp(upgrade, "websocket") != 0) {
		ms_fail(e, 400, "websocket_required",
		        "this route is a WebSocket: send Upgrade: websocket");
		return false;
	}
	if (version == NULL || strcmp(version, "13") != 0) {
		ms_fail(e, 400, "websocket_version", "Sec-WebSocket-Version must be 13");
		return false;
	}
	if (key == NULL || ms_ws_accept_key(key, cn->resp.ws_accept) != 0) {
		ms_fail(e, 400, "websocket_key", "missing or malformed Sec-WebSocket-Key");
		return false;
	}
	return true;
}

/* ---- responses ------------------------------------------------------------ */

static enum MHD_Result queue(struct MHD_Connection *c, struct conn *cn)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	int status = cn->resp.status ? cn->resp.status : 500;

	cn->answered = true;
	if (cn->resp.ws != NULL && status == 101) {
		struct ws_start *w = calloc(1, sizeof(*w));

		if (w == NULL)
			return MHD_NO;
		w->fn = cn->resp.ws;
		w->ud = cn->resp.ws_ud;
		cn->resp.ws = NULL;
		r = MHD_create_response_for_upgrade(on_upgrade, w);
		MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
		MHD_add_response_header(r, "Sec-WebSocket-Accept", cn->resp.ws_accept);
	} else {
		r = MHD_create_response_from_buffer(cn->resp.body_len, cn->resp.body,
		                                    MHD_RESPMEM_MUST_FREE);
		cn->resp.body = NULL; /* MHD owns it now */
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        cn->resp.content_type ? cn->resp.content_type
		                                              : "application/json");
		if (status == 405 && cn->scratch[0] != '\0')
			MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, cn->scratch);
		if (status == 401)
			MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			                        "ApiKey, Bearer");
	}
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);

	ms_metrics_request(cn->req.method, cn->route ? cn->route->pattern : "unmatched", status,
	                   elapsed(&cn->start));
	if (is_mutating(cn->req.method)) {
		struct ms_audit_entry a = {
		    .time_ms = ms_now_ms(),
		    .subject = cn->req.subject[0] ? cn->req.subject : "anonymous",
		    .client = cn->req.client,
		    .method = cn->req.method,
		    .path = cn->req.path,
		    .status = status,
		};

		if (ms_store_audit_add(&a) != 0)
			ms_warn("cannot write the audit record for %s %s", a.method, a.path);
	}
	return ret;
}

static enum MHD_Result answer_error(struct MHD_Connection *c, struct conn *cn,
                                    const struct ms_err *e)
{
	ms_resp_error(&cn->resp, e);
	return queue(c, cn);
}

/* ---- uploads ---------------------------------------------------------------- */

static int spool_open(struct conn *cn)
{
	snprintf(cn->spool_path, sizeof(cn->spool_path), "%s/upload-XXXXXX", spool_dir);
	cn->spool_fd = mkostemp(cn->spool_path, O_CLOEXEC);
	return cn->spool_fd >= 0 ? 0 : -errno;
}

static int spool_write(struct conn *cn, const char *data, size_t size)
{
	if (cn->body_len + size > cn->limit) {
		cn->too_big = true;
		return -EFBIG;
	}
	while (size > 0) {
		ssize_t n = write(cn->spool_fd, data, size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		data += n;
		size -= (size_t)n;
		cn->body_len += (size_t)n;
	}
	return 0;
}

static enum MHD_Result on_post_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data, uint64_t off,
                                     size_t size)
{
	struct conn *cn = cls;

	(void)kind;
	(void)content_type;
	(void)transfer_encoding;
	if (key == NULL || strcmp(key, "file") != 0)
		return MHD_YES; /* other fields are ignored */
	if (off == 0 && !cn->got_file) {
		if (spool_open(cn) != 0)
			return MHD_NO;
		cn->got_file = true;
		snprintf(cn->upload_name, sizeof(cn->upload_name), "%s", filename ? filename : "");
	}
	if (cn->too_big || size == 0)
		return MHD_YES;
	return spool_write(cn, data, size) == 0 || cn->too_big ? MHD_YES : MHD_NO;
}

static void append_body(struct conn *cn, const char *data, size_t size)
{
	if (cn->too_big)
		return;
	if (cn->body_len + size > cn->limit) {
		cn->too_big = true;
		return;
	}
	if (cn->body_len + size + 1 > cn->body_cap) {
		size_t cap = cn->body_cap ? cn->body_cap : 1024;
		uint8_t *b;

		while (cap < cn->body_len + size + 1)
			cap *= 2;
		b = realloc(cn->body, cap);
		if (b == NULL) {
			cn->too_big = true;
			return;
		}
		cn->body = b;
		cn->body_cap = cap;
	}
	memcpy(cn->body + cn->body_len, data, size);
	cn->body_len += size;
	cn->body[cn->body_len] = '\0';
}

/* ---- the request callback ------------------------------------------------------ */

static bool media_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	return ct != NULL && strncasecmp(ct, type, n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void client_address(struct MHD_Connection *c, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	snprintf(out, cap, "unknown");
	if (ci == NULL || ci->client_addr == NULL)
		return;
	if (ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ci->client_addr;

		inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)cap);
	} else if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ci->client_addr;

		inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t)cap);
	}
}

/* Authentication for the matched route; 0 or an error in e. */
static int authenticate(struct conn *cn, struct ms_err *e)
{
	const char *ticket;

	snprintf(cn->req.subject, sizeof(cn->req.subject), "anonymous");
	if (!ms_auth_enabled() || (cn->route->flags & MS_ROUTE_OPEN))
		return 0;
	ticket = (cn->route->flags & MS_ROUTE_WS) ? ms_req_query(&cn->req, "ticket") : NULL;
	if (ticket != NULL) {
		char who[100];
		int rc = ms_ticket_redeem(ticket, cn->req.params[0], who, sizeof(who), e);

		if (rc == 0)
			snprintf(cn->req.subject, sizeof(cn->req.subject), "ticket:%s", who);
		return rc;
	}
	return ms_auth_check(ms_req_header(&cn->req, MHD_HTTP_HEADER_AUTHORIZATION),
	                     cn->req.subject, sizeof(cn->req.subject), e);
}

static enum MHD_Result first_call(struct MHD_Connection *c, const char *url, const char *method,
                                  void **con_cls)
{
	struct conn *cn = calloc(1, sizeof(*cn));
	const char *cl;
	bool has_body;
	char allow[64];

	if (cn == NULL)
		return MHD_NO;
	*con_cls = cn;
	clock_gettime(CLOCK_MONOTONIC, &cn->start);
	cn->spool_fd = -1;
	cn->req.conn = c;
	cn->req.method = method;
	snprintf(cn->path, sizeof(cn->path), "%s", url);
	cn->req.path = cn->path;
	cn->req.content_type = ms_req_header(&cn->req, MHD_HTTP_HEADER_CONTENT_TYPE);
	client_address(c, cn->req.client, sizeof(cn->req.client));
	snprintf(cn->req.subject, sizeof(cn->req.subject), "anonymous");

	cl = ms_req_header(&cn->req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	has_body = (cl != NULL && strcmp(cl, "0") != 0) ||
	    ms_req_header(&cn->req, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;

	cn->route = ms_route_match(method, cn->path, &cn->req, cn->scratch, sizeof(cn->scratch),
	                           allow, sizeof(allow));
	if (cn->route == NULL) {
		if (allow[0] != '\0') {
			ms_fail(&cn->early, 405, "method_not_allowed",
			        "%s is not allowed on %s (allowed: %s)", method, cn->path, allow);
			snprintf(cn->scratch, sizeof(cn->scratch), "%s", allow);
		} else {
			ms_fail(&cn->early, 404, "not_found", "no route %s %s", method, cn->path);
			cn->scratch[0] = '\0';
		}
		cn->has_early = true;
	} else if (authenticate(cn, &cn->early) != 0) {
		cn->has_early = true;
	} else {
		cn->limit = (cn->route->flags & MS_ROUTE_UPLOAD)
		    ? ms_api_config->resources.max_upload_bytes
		    : MAX_JSON_BODY;
		if (cl != NULL && strtoull(cl, NULL, 10) > cn->limit + 64 * 1024) {
			/* Multipart framing adds a little; anything well past the limit is refused unread. */
			ms_fail(&cn->early, 413, "too_large",
			        "request body is larger than %llu bytes",
			        (unsigned long long)cn->limit);
			cn->has_early = true;
		} else if (cn->route->flags & MS_ROUTE_UPLOAD) {
			if (media_is(cn->req.content_type, "multipart/form-data")) {
				cn->pp = MHD_create_post_processor(c, 64 * 1024, on_post_field, cn);
				if (cn->pp == NULL) {
					ms_fail(&cn->early, 400, "bad_multipart",
					        "malformed multipart/form-data header");
					cn->has_early = true;
				}
			} else if (media_is(cn->req.content_type, "application/octet-stream")) {
				if (spool_open(cn) != 0) {
					ms_fail(&cn->early, 503, "host_failure",
					        "cannot spool the upload");
					cn->has_early = true;
				}
				cn->got_file = true;
			} else {
				ms_fail(&cn->early, 415, "unsupported_media_type",
				        "upload with multipart/form-data (field \"file\") or "
				        "application/octet-stream");
				cn->has_early = true;
			}
		}
	}
	if (cn->has_early && has_body)
		return answer_error(c, cn, &cn->early);
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct conn *cn = *con_cls;

	(void)cls;
	(void)version;
	if (cn == NULL)
		return first_call(c, url, method, con_cls);
	if (cn->answered) {
		*upload_data_size = 0; /* discard the rest of a refused body */
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (cn->has_early) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (cn->pp != NULL) {
			if (MHD_post_process(cn->pp, upload_data, *upload_data_size) != MHD_YES &&
			    !cn->too_big) {
				ms_fail(&cn->early, 400, "bad_multipart",
				        "malformed multipart/form-data body");
				cn->has_early = true;
			}
		} else if (cn->spool_fd >= 0) {
			if (!cn->too_big && spool_write(cn, upload_data, *upload_data_size) != 0 &&
			    !cn->too_big) {
				ms_fail(&cn->early, 503, "host_failure", "cannot spool the upload");
				cn->has_early = true;
			}
		} else {
			append_body(cn, upload_data, *upload_data_size);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	/* The whole request is here. */
	if (cn->has_early)
		return answer_error(c, cn, &cn->early);
	if (cn->too_big) {
		ms_fail(&cn->early, 413, "too_large", "request body is larger than %llu bytes",
		        (unsigned long long)cn->limit);
		return answer_error(c, cn, &cn->early);
	}
	if (cn->route->flags & MS_ROUTE_UPLOAD) {
		if (!cn->got_file) {
			ms_fail(&cn->early, 400, "missing_file",
			        "the upload has no \"file\" field");
			return answer_error(c, cn, &cn->early);
		}
		cn->req.upload_path = cn->spool_path;
		cn->req.upload_name = cn->upload_name[0] ? cn->upload_name : NULL;
	}
	if (cn->route->flags & MS_ROUTE_WS) {
		struct ms_err e;

		if (!ws_handshake_ok(cn, &e))
			return answer_error(c, cn, &e);
	}
	cn->req.body = cn->body;
	cn->req.body_len = cn->body_len;
	cn->route->fn(&cn->req, &cn->resp);
	return queue(c, cn);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (cn == NULL)
		return;
	if (cn->pp != NULL)
		MHD_destroy_post_processor(cn->pp);
	if (cn->spool_fd >= 0) {
		close(cn->spool_fd);
		unlink(cn->spool_path);
	}
	if (cn->resp.ws != NULL)
		cn->resp.ws(-1, NULL, 0, cn->resp.ws_ud); /* never upgraded: let it clean up */
	free(cn->resp.body);
	free(cn->body);
	free(cn);
	*con_cls = NULL;
}

/*
 * Percent-decoding for paths and query values, in place. Paths are used as
 * C strings from here on, so a decoded NUL would silently cut them short
 * ("DELETE /sessions/<id>%00junk" would delete <id>). "%00" is therefore
 * left as it is: it then matches no route and no identifier.
 */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;

	(void)cls;
	(void)c;
	for (const char *r = s; *r != '\0';) {
		int hi, lo;

		if (r[0] == '%' && (hi = ms_hexval(r[1])) >= 0 && (lo = ms_hexval(r[2])) >= 0 &&
		    (hi | lo) != 0) {
			*w++ = (char)(hi * 16 + lo);
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	ms_debug("http: %s", line);
}

int ms_http_start(const struct ms_config *cfg, struct ms_err *e)
{
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;
	struct sockaddr *sa;
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
	const char *bind = cfg->server.bind;
	unsigned threads = cfg->server.threads > 0 ? cfg->server.threads : 4;

	ms_api_config = cfg;
	snprintf(spool_dir, sizeof(spool_dir), "%s/tmp", cfg->server.data_dir);
	if (mkdir(spool_dir, 0700) != 0 && errno != EEXIST)
		return ms_fail(e, 500, "host_failure", "cannot create %s: %s", spool_dir,
		               strerror(errno));

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (strcmp(bind, "localhost") == 0)
		bind = "127.0.0.1";
	if (inet_pton(AF_INET, bind, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((uint16_t)cfg->server.port);
		sa = (struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, bind, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((uint16_t)cfg->server.port);
		sa = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		return ms_fail(e, 400, "bad_config", "server.bind: not an IP address: %s", bind);
	}
	daemon_h = MHD_start_daemon(
	    flags, (uint16_t)cfg->server.port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
	    sa, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
	    NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)4096, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
	    MHD_OPTION_END);
	if (daemon_h == NULL)
		return ms_fail(e, 500, "listen_failed", "cannot listen on %s:%d: %s",
		               cfg->server.bind, cfg->server.port,
		               strerror(errno ? errno : EADDRINUSE));
	return 0;
}

void ms_http_stop(void)
{
	unsigned waited = 0;

	if (daemon_h == NULL)
		return;
	/*
	 * End the WebSocket threads first (see the top of the file): a shut
	 * down socket wakes a bridge from poll or from a blocked send, and it
	 * returns. New upgrades are closed at once from here on.
	 */
	pthread_mutex_lock(&ws_mu);
	ws_stopping = true;
	for (struct ws_start *w = ws_list; w != NULL; w = w->next)
		shutdown(w->fd, SHUT_RDWR);
	while (ws_live > 0) {
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 5;
		if (pthread_cond_timedwait(&ws_cv, &ws_mu, &dl) == ETIMEDOUT)
			ms_warn("stopping: still waiting for %u WebSocket thread(s) (%u s)",
			        ws_live, waited += 5);
	}
	pthread_mutex_unlock(&ws_mu);
	MHD_stop_daemon(daemon_h);
	daemon_h = NULL;
}
