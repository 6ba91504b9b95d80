/*
 * router: the route table and the matcher; see router.h.
 *
 * The table is the single list of what the daemon serves: the server
 * dispatches from it and /api/v1/openapi.json is generated from it, so the
 * description cannot drift from the code.
 */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

#include "http/api.h"

#define SESS "/api/v1/sessions/:id"

const struct ms_route ms_routes[] = {
    {"GET", "/health", ms_api_health, MS_ROUTE_OPEN, "liveness and backend summary", NULL},
    {"GET", "/metrics", ms_api_metrics, MS_ROUTE_OPEN | MS_ROUTE_RAW,
     "Prometheus metrics (text format 0.0.4)", NULL},
    {"GET", "/api/v1/capabilities", ms_api_capabilities, 0,
     "what each enabled backend can run: boards, processors, peripherals, bus types, operations",
     NULL},
    {"GET", "/api/v1/openapi.json", ms_api_openapi, 0, "this document", NULL},
    {"GET", "/api/v1/audit", ms_api_audit, 0,
     "audit log of mutating requests, newest first (?limit=1..1000&before=ID)", NULL},

    {"POST", "/api/v1/sessions", ms_api_sessions_create, 0, "create a session",
     "{\"backend\":\"qemu\",\"board_config\":{\"board\":\"virt\",\"cpu\":\"cortex-a57\",\"memory\":"
     "\"256M\"}}"},
    {"GET", "/api/v1/sessions", ms_api_sessions_list, 0, "list sessions", NULL},
    {"GET", SESS, ms_api_session_get, 0, "one session", NULL},
    {"DELETE", SESS, ms_api_session_delete, 0, "destroy a session and its emulator", NULL},
    {"POST", SESS "/poweron", ms_api_session_poweron, 0, "start or resume (idempotent)", NULL},
    {"POST", SESS "/poweroff", ms_api_session_poweroff, 0,
     "stop the emulator (idempotent); poweron starts it again", NULL},
    {"POST", SESS "/pause", ms_api_session_pause, 0, "pause a running session (idempotent)", NULL},
    {"POST", SESS "/reset", ms_api_session_reset, 0, "reset the target", NULL},
    {"POST", SESS "/program", ms_api_session_program, 0,
     "load an uploaded program (survives reset)",
     "{\"program_id\":\"prog_...\",\"load_address\":\"0x0\"} or {\"program_path\":\"<upload "
     "dir>/...\"}"},
    {"POST", SESS "/step", ms_api_session_step, 0,
     "execute N instructions of a paused session (backends that list \"step\")",
     "{\"instructions\":1000}"},
    {"POST", SESS "/run_for", ms_api_session_run_for, 0,
     "advance a paused session by a virtual time (backends that list \"run_for\")",
     "{\"virtual_ns\":1000000}"},
    {"POST", SESS "/inject", ms_api_session_inject, 0,
     "an external event: a GPIO level change, optionally with its interrupt; answers the "
     "session plus \"inject\": {raised, reason, flag, ...}",
     "{\"kind\":\"gpio\",\"addr\":\"0x40010808\",\"mask\":\"0x1\",\"value\":\"0x1\",\"irq\":6}"},
    {"GET", SESS "/devices", ms_api_session_devices, 0,
     "memory-mapped regions and devices read from the running emulator", NULL},
    {"GET", SESS "/peripherals", ms_api_peripherals, 0,
     "inferred and declared peripherals: base, size, source, registers with category, model, "
     "value, confidence, access counts",
     NULL},
    {"PATCH", SESS "/peripherals", ms_api_peripheral_patch, 0, "correct one register model by hand",
     "{\"addr\":\"0x40002000\",\"model\":\"status\",\"ready_mask\":\"0x80\",\"ready_value\":"
     "\"0x80\"}"},
    {"GET", SESS "/mmio", ms_api_mmio, 0,
     "recent accesses to inferred devices, oldest first (?from=SEQ&limit=1..4096)", NULL},
    {"GET", SESS "/device_map", ms_api_device_map, 0,
     "the whole device map (device_map.json): give it back as board_config.models or to "
     "machineserver run --models",
     NULL},
    {"POST", SESS "/coverage/start", ms_api_coverage_start, 0,
     "start collecting basic-block coverage (backends that list \"coverage\" in their operations)",
     NULL},
    {"POST", SESS "/coverage/stop", ms_api_coverage_stop, 0,
     "stop collecting and return the report (blocks executed, their addresses)", NULL},
    {"POST", SESS "/snapshots", ms_api_snapshots_create, 0, "take a snapshot",
     "{\"name\":\"boot_complete\"}"},
    {"GET", SESS "/snapshots", ms_api_snapshots_list, 0, "list snapshots", NULL},
    {"POST", SESS "/restore", ms_api_snapshot_restore, 0, "restore a snapshot by name or id",
     "{\"snapshot_id\":\"boot_complete\"}"},
    {"DELETE", SESS "/snapshots/:snap", ms_api_snapshot_delete, 0, "delete a snapshot", NULL},
    {"GET", SESS "/console", ms_api_console_log, MS_ROUTE_RAW,
     "the console log as text (?tail=BYTES)", NULL},
    {"POST", SESS "/console-ticket", ms_api_console_ticket, 0,
     "a short-lived single-use URL for the console WebSocket (browsers cannot set headers)", NULL},
    {"GET", SESS "/stream/console", ms_api_console_stream, MS_ROUTE_WS,
     "WebSocket: console backlog then live UART output; frames sent go to the UART", NULL},
    {"GET", SESS "/stream/events", ms_api_events_stream, MS_ROUTE_WS,
     "WebSocket: session events (state changes, snapshots, loads) as JSON text frames", NULL},
    {"GET", SESS "/stream/mmio", ms_api_mmio_stream, MS_ROUTE_WS,
     "WebSocket: accesses to inferred devices as they happen, batches {next, entries} as JSON text "
     "frames (?from=SEQ)",
     NULL},
    {"GET", SESS "/events", ms_api_events_log, 0, "recent session events (?limit=N)", NULL},

    {"POST", "/api/v1/programs", ms_api_programs_upload, MS_ROUTE_UPLOAD,
     "upload firmware (multipart field \"file\", or an application/octet-stream body): ELF, Intel "
     "HEX or raw binary",
     NULL},
    {"GET", "/api/v1/programs", ms_api_programs_list, 0, "list programs", NULL},
    {"GET", "/api/v1/programs/:id", ms_api_program_get, 0, "one program", NULL},
    {"DELETE", "/api/v1/programs/:id", ms_api_program_delete, 0, "delete a program", NULL},
    {NULL, NULL, NULL, 0, NULL, NULL},
};

/* Match one pattern; params point into scratch. */
static bool match(const char *pattern, const char *path, struct ms_req *req, char *scratch,
                  size_t scratch_len)
{
	const char *p = pattern, *u = path;
	size_t used = 0;
	unsigned n = 0;

	while (*p != '\0' && *u != '\0') {
		if (*p == ':') {
			const char *end = strchr(u, '/');
			size_t len = end != NULL ? (size_t)(end - u) : strlen(u);

			if (len == 0 || n >= MS_ROUTE_MAX_PARAMS || used + len + 1 > scratch_len)
				return false;
			memcpy(scratch + used, u, len);
			scratch[used + len] = '\0';
			req->params[n++] = scratch + used;
			used += len + 1;
			u += len;
			while (*p != '\0' && *p != '/')
				p++;
			continue;
		}
		if (*p != *u)
			return false;
		p++;
		u++;
	}
	/* A single trailing slash on the request is tolerated. */
	if (*p == '\0' && u[0] == '/' && u[1] == '\0')
		u++;
	if (*p != '\0' || *u != '\0')
		return false;
	req->n_params = n;
	return true;
}

const struct ms_route *ms_route_match(const char *method, const char *path, struct ms_req *req,
                                      char *scratch, size_t scratch_len, char *allow,
                                      size_t allow_len)
{
	const struct ms_route *hit = NULL;
	size_t alen = 0;

	if (allow_len > 0)
		allow[0] = '\0';
	for (const struct ms_route *r = ms_routes; r->method != NULL; r++) {
		struct ms_req probe = {0};

		if (!match(r->pattern, path, &probe, scratch, scratch_len))
			continue;
		if (strcmp(r->method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
			hit = r;
			memcpy(req->params, probe.params, sizeof(req->params));
			req->n_params = probe.n_params;
			req->route = r->pattern;
			return hit;
		}
		if (alen + strlen(r->method) + 3 < allow_len) {
			alen += (size_t)snprintf(allow + alen, allow_len - alen, "%s%s",
			                         alen ? ", " : "", r->method);
		}
	}
	return NULL;
}

json_t *ms_openapi(void)
{
	json_t *doc, *paths;

	doc = json_pack(
	    "{s:s,s:{s:s,s:s,s:s},s:{s:{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s}}}}", "openapi", "3.0.3",
	    "info", "title", "MachineServer", "version", MS_VERSION, "description",
	    "REST and WebSocket API over firmware emulators. Errors are "
	    "{\"error\":{\"code\":...,\"message\":...}}.",
	    "components", "securitySchemes", "ApiKey", "type", "apiKey", "in", "header", "name",
	    "Authorization", "Bearer", "type", "http", "scheme", "bearer", "bearerFormat", "JWT");
	paths = json_object();
	for (const struct ms_route *r = ms_routes; r->method != NULL; r++) {
		char oapath[256];
		size_t o = 0;
		json_t *item, *op, *params = json_array();
		char lower[8];

		/* ":id" -> "{id}" */
		for (const char *p = r->pattern; *p != '\0' && o + 2 < sizeof(oapath);) {
			if (*p == ':') {
				const char *end = p + 1;

				while (*end != '\0' && *end != '/')
					end++;
				o += (size_t)snprintf(oapath + o, sizeof(oapath) - o, "{%.*s}",
				                      (int)(end - p - 1), p + 1);
				json_array_append_new(params,
				                      json_pack("{s:s%,s:s,s:b,s:{s:s}}", "name",
				                                p + 1, (size_t)(end - p - 1), "in",
				                                "path", "required", 1, "schema",
				                                "type", "string"));
				p = end;
			} else {
				oapath[o++] = *p++;
			}
		}
		oapath[o] = '\0';
		item = json_object_get(paths, oapath);
		if (item == NULL) {
			item = json_object();
			json_object_set_new(paths, oapath, item);
		}
		for (size_t i = 0; i < sizeof(lower) - 1 && r->method[i] != '\0'; i++) {
			lower[i] = (char)(r->method[i] | 0x20);
			lower[i + 1] = '\0';
		}
		op = json_pack("{s:s,s:o,s:{s:{s:s}}}", "summary", r->summary, "parameters", params,
		               "responses", "default", "description",
		               "success, or the error shape with the matching status");
		if (r->body != NULL)
			json_object_set_new(op, "requestBody",
			                    json_pack("{s:{s:{s:{s:s},s:s}}}", "content",
			                              "application/json", "schema", "type",
			                              "object", "example", r->body));
		if (r->flags & MS_ROUTE_UPLOAD)
			json_object_set_new(op, "requestBody",
			                    json_pack("{s:{s:{s:{s:s,s:{s:{s:s,s:s}}}}}}",
			                              "content", "multipart/form-data", "schema",
			                              "type", "object", "properties", "file",
			                              "type", "string", "format", "binary"));
		if (r->flags & MS_ROUTE_WS)
			json_object_set_new(op, "x-websocket", json_true());
		if (!(r->flags & MS_ROUTE_OPEN))
			json_object_set_new(op, "security",
			                    json_pack("[{s:[]},{s:[]}]", "ApiKey", "Bearer"));
		json_object_set_new(item, lower, op);
	}
	json_object_set_new(doc, "paths", paths);
	return doc;
}
