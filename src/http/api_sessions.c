/*
 * api_sessions: sessions, control, program loading, snapshots, devices.
 *
 * Handlers validate the request shape and hand the work to core/session.c,
 * which owns the state machine. Threads: HTTP worker threads.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/program.h"
#include "core/session.h"
#include "core/text.h"
#include "http/api.h"
#include "http/router.h"

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The session named in the path, or NULL after answering 404. Caller puts it. */
static struct ms_session *path_session(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s = ms_session_find(req->params[0]);

	if (s == NULL)
		ms_resp_fail(resp, 404, "session_not_found", "no session %.64s", req->params[0]);
	return s;
}

/* "0x1000", "4096" or a JSON integer; false when malformed or out of range. */
static bool parse_address(json_t *v, uint64_t *out)
{
	const char *t = json_string_value(v);

	/* No sign or leading blank: strtoull would quietly accept them. */
	if (t != NULL && (t[0] == '+' || t[0] == ' '))
		return false;
	return ms_json_uint(v, UINT64_MAX, out);
}

/* Reply with the session's current view after a successful operation. */
static void reply_session(struct ms_resp *resp, int status, struct ms_session *s)
{
	ms_resp_json(resp, status, ms_session_json(s));
}

/*
 * The JSON body in *body and the session named by the path (a reference
 * the caller puts back), or NULL after answering (bad body, no session);
 * *body is then NULL too.
 */
static struct ms_session *body_session(struct ms_req *req, struct ms_resp *resp, json_t **body)
{
	struct ms_session *s;
	struct ms_err e;

	ms_err_clear(&e);
	if (ms_req_json(req, false, body, &e) != 0) {
		ms_resp_error(resp, &e);
		*body = NULL;
		return NULL;
	}
	s = path_session(req, resp);
	if (s == NULL) {
		json_decref(*body);
		*body = NULL;
	}
	return s;
}

/*
 * The program a body names ("program_id", or "program_path" inside the
 * upload directory) and its load address. Returns 1 when the body names
 * one, 0 when it names none (and none is required), -1 after answering.
 */
static int body_program(json_t *body, bool required, struct ms_program *p, bool *has_addr,
                        uint64_t *addr, struct ms_resp *resp)
{
	json_t *idv = json_object_get(body, "program_id");
	json_t *pathv = json_object_get(body, "program_path");
	json_t *addr_v = json_object_get(body, "load_address");
	const char *id = json_string_value(idv), *path = json_string_value(pathv);
	struct ms_err e;

	ms_err_clear(&e);
	*has_addr = false;
	*addr = 0;
	if (!required && idv == NULL && pathv == NULL && addr_v == NULL)
		return 0;
	if (addr_v != NULL && !json_is_null(addr_v)) {
		if (!parse_address(addr_v, addr)) {
			ms_resp_fail(resp, 400, "bad_address",
			             "\"load_address\" must be a non-negative integer or a "
			             "\"0x...\" string");
			return -1;
		}
		*has_addr = true;
	}
	if ((id == NULL) == (path == NULL) || (idv != NULL && id == NULL) ||
	    (pathv != NULL && path == NULL)) {
		ms_resp_fail(resp, 400, "bad_request",
		             "give exactly one of \"program_id\" and \"program_path\" (strings)");
		return -1;
	}
	if ((id != NULL ? ms_programs_get(id, p, &e) : ms_programs_find_path(path, p, &e)) != 0) {
		ms_resp_error(resp, &e);
		return -1;
	}
	if (p->format == MS_IMAGE_BIN && !*has_addr) {
		ms_resp_fail(resp, 400, "missing_address",
		             "program %s is a raw binary: give \"load_address\"", p->id);
		return -1;
	}
	return 1;
}

/*
 * POST /sessions. Besides backend and board_config the body may name a
 * program (as POST .../program takes it) and ask for "poweron": true, so
 * that one request answers with the session running: a session start costs
 * one round trip instead of three. All or nothing: when the load or the
 * start fails, the session is deleted and the answer is that error, with
 * its reason (a guest that cannot start: 502 guest_crashed).
 */
void ms_api_sessions_create(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_err e;
	json_t *body, *bc, *pw;
	const char *backend;
	struct ms_session *s;
	struct ms_program p;
	bool has_addr = false, poweron = false;
	uint64_t addr = 0;
	int has_prog = 0;
	int64_t t[4]; /* where the time goes, logged at debug level */

	ms_err_clear(&e);
	if (ms_req_json(req, false, &body, &e) != 0) {
		ms_resp_error(resp, &e);
		return;
	}
	backend = json_string_value(json_object_get(body, "backend"));
	bc = json_object_get(body, "board_config");
	pw = json_object_get(body, "poweron");
	if (json_object_get(body, "backend") != NULL && backend == NULL) {
		ms_resp_fail(resp, 400, "bad_request", "\"backend\" must be a string");
		goto out;
	} else if (backend == NULL) {
		ms_resp_fail(resp, 400, "bad_request",
		             "missing \"backend\" (one of the backends in /api/v1/capabilities)");
		goto out;
	} else if (bc != NULL && !json_is_object(bc)) {
		ms_resp_fail(resp, 400, "bad_request", "\"board_config\" must be an object");
		goto out;
	} else if (pw != NULL && !json_is_boolean(pw)) {
		ms_resp_fail(resp, 400, "bad_request", "\"poweron\" must be true or false");
		goto out;
	}
	poweron = json_is_true(pw);
	/* The program is looked up before anything is created: a wrong id costs nothing. */
	has_prog = body_program(body, false, &p, &has_addr, &addr, resp);
	if (has_prog < 0)
		goto out;
	t[0] = mono_us();
	if (ms_sessions_create(backend, bc, &s, &e) != 0) {
		ms_resp_error(resp, &e);
		goto out;
	}
	t[1] = mono_us();
	if (has_prog && ms_session_load(s, &p, has_addr, addr, &e) != 0)
		goto failed;
	t[2] = mono_us();
	if (poweron && ms_session_poweron(s, &e) != 0)
		goto failed;
	t[3] = mono_us();
	reply_session(resp, 201, s);
	ms_debug("session %s start: create %lld us, load %lld us, poweron %lld us, answer %lld us",
	         s->id, (long long)(t[1] - t[0]), (long long)(t[2] - t[1]),
	         (long long)(t[3] - t[2]), (long long)(mono_us() - t[3]));
	ms_session_put(s);
	goto out;
failed:
	ms_resp_error(resp, &e);
	ms_sessions_delete(s->id, NULL);
	ms_session_put(s);
out:
	json_decref(body);
}

void ms_api_sessions_list(struct ms_req *req, struct ms_resp *resp)
{
	(void)req;
	ms_resp_json(resp, 200, ms_sessions_list_json());
}

void ms_api_session_get(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s = path_session(req, resp);

	if (s == NULL)
		return;
	reply_session(resp, 200, s);
	ms_session_put(s);
}

void ms_api_session_delete(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_err e;

	ms_err_clear(&e);
	if (ms_sessions_delete(req->params[0], &e) != 0)
		ms_resp_error(resp, &e);
	else
		ms_resp_json(resp, 200, json_pack("{s:s,s:b}", "id", req->params[0], "deleted", 1));
}

typedef int (*control_fn)(struct ms_session *s, struct ms_err *e);

static void control(struct ms_req *req, struct ms_resp *resp, control_fn fn)
{
	struct ms_session *s = path_session(req, resp);
	struct ms_err e;

	if (s == NULL)
		return;
	ms_err_clear(&e);
	if (fn(s, &e) != 0)
		ms_resp_error(resp, &e);
	else
		reply_session(resp, 200, s);
	ms_session_put(s);
}

void ms_api_session_poweron(struct ms_req *req, struct ms_resp *resp)
{
	control(req, resp, ms_session_poweron);
}

void ms_api_session_poweroff(struct ms_req *req, struct ms_resp *resp)
{
	control(req, resp, ms_session_poweroff);
}

void ms_api_session_pause(struct ms_req *req, struct ms_resp *resp)
{
	control(req, resp, ms_session_pause);
}

void ms_api_session_reset(struct ms_req *req, struct ms_resp *resp)
{
	control(req, resp, ms_session_reset);
}

void ms_api_session_program(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s;
	struct ms_program p;
	struct ms_err e;
	json_t *body;
	uint64_t addr = 0;
	bool has_addr = false;

	if ((s = body_session(req, resp, &body)) == NULL)
		return;
	ms_err_clear(&e);
	if (body_program(body, true, &p, &has_addr, &addr, resp) > 0) {
		if (ms_session_load(s, &p, has_addr, addr, &e) != 0)
			ms_resp_error(resp, &e);
		else
			reply_session(resp, 200, s);
	}
	json_decref(body);
	ms_session_put(s);
}

/* A JSON body's non-negative integer field (a number or a "0x..." string). */
static int body_u64(struct ms_req *req, const char *key, uint64_t *out, json_t **body,
                    struct ms_err *e)
{
	int rc = ms_req_json(req, false, body, e);

	if (rc != 0)
		return rc;
	if (!parse_address(json_object_get(*body, key), out))
		return ms_fail(e, 400, "bad_request", "\"%s\" must be a non-negative integer", key);
	return 0;
}

typedef int (*run_fn)(struct ms_session *s, uint64_t n, struct ms_err *e);

static void run_paused(struct ms_req *req, struct ms_resp *resp, const char *key, run_fn fn)
{
	struct ms_session *s;
	struct ms_err e;
	json_t *body = NULL;
	uint64_t n = 0;

	ms_err_clear(&e);
	if (body_u64(req, key, &n, &body, &e) != 0) {
		ms_resp_error(resp, &e);
		json_decref(body);
		return;
	}
	json_decref(body);
	s = path_session(req, resp);
	if (s == NULL)
		return;
	if (fn(s, n, &e) != 0)
		ms_resp_error(resp, &e);
	else
		reply_session(resp, 200, s);
	ms_session_put(s);
}

void ms_api_session_step(struct ms_req *req, struct ms_resp *resp)
{
	run_paused(req, resp, "instructions", ms_session_step);
}

void ms_api_session_run_for(struct ms_req *req, struct ms_resp *resp)
{
	run_paused(req, resp, "virtual_ns", ms_session_run_for);
}

/* An operation on the whole JSON body; *out may get a result (new reference) or stay NULL. */
typedef int (*body_fn)(struct ms_session *s, json_t *body, json_t **out, struct ms_err *e);

/*
 * Run fn with the body. On success the reply is then(req, resp) when then
 * is given, else the session, with fn's result under key when key is given.
 */
static void with_body(struct ms_req *req, struct ms_resp *resp, body_fn fn, ms_route_fn then,
                      const char *key)
{
	struct ms_session *s;
	struct ms_err e;
	json_t *body, *out = NULL, *reply;

	if ((s = body_session(req, resp, &body)) == NULL)
		return;
	ms_err_clear(&e);
	if (fn(s, body, &out, &e) != 0) {
		ms_resp_error(resp, &e);
	} else if (then != NULL) {
		then(req, resp);
	} else {
		reply = ms_session_json(s);
		if (key != NULL)
			json_object_set(reply, key, out != NULL ? out : json_null());
		ms_resp_json(resp, 200, reply);
	}
	json_decref(out);
	ms_session_put(s);
	json_decref(body);
}

/*
 * 200 with the session, plus "inject": what came of the event (for a GPIO
 * level: {addr, mask, value, irq, raised, reason, flag}), so that a client
 * learns at once that an interrupt was held back (the line masked by the
 * firmware) without reading the event stream.
 */
void ms_api_session_inject(struct ms_req *req, struct ms_resp *resp)
{
	with_body(req, resp, ms_session_inject, NULL, "inject");
}

static int peripheral_patch(struct ms_session *s, json_t *body, json_t **out, struct ms_err *e)
{
	return ms_session_peripheral_patch(s, body, e);
}

typedef int (*view_fn)(struct ms_session *s, json_t **out, struct ms_err *e);

/*
 * A read of something the backend computes: the session from the path, the
 * backend's answer, replied as {"session_id": ..., key: answer}, or as the
 * answer itself when key is NULL.
 */
static void view(struct ms_req *req, struct ms_resp *resp, view_fn fn, const char *key)
{
	struct ms_session *s = path_session(req, resp);
	struct ms_err e;
	json_t *out = NULL;

	if (s == NULL)
		return;
	ms_err_clear(&e);
	if (fn(s, &out, &e) != 0)
		ms_resp_error(resp, &e);
	else if (key == NULL)
		ms_resp_json(resp, 200, out != NULL ? out : json_object());
	else
		ms_resp_json(resp, 200,
		             json_pack("{s:s,s:o}", "session_id", s->id, key,
		                       out != NULL ? out : json_object()));
	ms_session_put(s);
}

void ms_api_session_devices(struct ms_req *req, struct ms_resp *resp)
{
	view(req, resp, ms_session_devices, "devices");
}

void ms_api_coverage_start(struct ms_req *req, struct ms_resp *resp)
{
	control(req, resp, ms_session_coverage_start);
}

void ms_api_coverage_stop(struct ms_req *req, struct ms_resp *resp)
{
	view(req, resp, ms_session_coverage_stop, "coverage");
}

void ms_api_peripherals(struct ms_req *req, struct ms_resp *resp)
{
	view(req, resp, ms_session_peripherals, "peripherals");
}

void ms_api_peripheral_patch(struct ms_req *req, struct ms_resp *resp)
{
	with_body(req, resp, peripheral_patch, ms_api_peripherals, NULL);
}

void ms_api_mmio(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s;
	struct ms_err e;
	json_t *out = NULL;
	const char *from = ms_req_query(req, "from"), *limit = ms_req_query(req, "limit");
	unsigned long long f = 0, l = 256;
	char *end;

	if (from != NULL &&
	    (f = strtoull(from, &end, 10), *from == '\0' || *end != '\0' || *from == '-')) {
		ms_resp_fail(resp, 400, "bad_query", "from must be a sequence number");
		return;
	}
	if (limit != NULL &&
	    (l = strtoull(limit, &end, 10), *limit == '\0' || *end != '\0' || l < 1 || l > 4096)) {
		ms_resp_fail(resp, 400, "bad_query", "limit must be 1..4096");
		return;
	}
	s = path_session(req, resp);
	if (s == NULL)
		return;
	ms_err_clear(&e);
	if (ms_session_mmio(s, f, (size_t)l, &out, &e) != 0)
		ms_resp_error(resp, &e);
	else
		ms_resp_json(resp, 200, out);
	ms_session_put(s);
}

void ms_api_device_map(struct ms_req *req, struct ms_resp *resp)
{
	view(req, resp, ms_session_models_export, NULL);
}

void ms_api_snapshots_create(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s;
	struct ms_err e;
	json_t *body, *snap = NULL;
	const char *name;

	if ((s = body_session(req, resp, &body)) == NULL)
		return;
	ms_err_clear(&e);
	name = json_string_value(json_object_get(body, "name"));
	if (name == NULL)
		ms_resp_fail(resp, 400, "bad_request", "missing \"name\" (string)");
	else if (ms_session_snapshot_save(s, name, &snap, &e) != 0)
		ms_resp_error(resp, &e);
	else
		ms_resp_json(resp, 201, snap);
	ms_session_put(s);
	json_decref(body);
}

void ms_api_snapshots_list(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s = path_session(req, resp);

	if (s == NULL)
		return;
	ms_resp_json(resp, 200, ms_session_snapshots_json(s));
	ms_session_put(s);
}

void ms_api_snapshot_restore(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s;
	struct ms_err e;
	json_t *body;
	const char *which;

	if ((s = body_session(req, resp, &body)) == NULL)
		return;
	ms_err_clear(&e);
	which = json_string_value(json_object_get(body, "snapshot_id"));
	if (which == NULL)
		which = json_string_value(json_object_get(body, "name"));
	if (which == NULL)
		ms_resp_fail(resp, 400, "bad_request",
		             "missing \"snapshot_id\" (a snapshot name or id)");
	else if (ms_session_snapshot_restore(s, which, &e) != 0)
		ms_resp_error(resp, &e);
	else
		reply_session(resp, 200, s);
	ms_session_put(s);
	json_decref(body);
}

void ms_api_snapshot_delete(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_session *s = path_session(req, resp);
	struct ms_err e;

	if (s == NULL)
		return;
	ms_err_clear(&e);
	if (ms_session_snapshot_delete(s, req->params[1], &e) != 0)
		ms_resp_error(resp, &e);
	else
		ms_resp_json(resp, 200,
		             json_pack("{s:s,s:b}", "snapshot", req->params[1], "deleted", 1));
	ms_session_put(s);
}
