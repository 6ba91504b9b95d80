/*
 * api: the route handlers, one file per resource (api_sessions.c,
 * api_programs.c, api_console.c, api_system.c). Each is a ms_route_fn; see
 * http.h for what a handler may do.
 */
#ifndef MS_API_H
#define MS_API_H

#include "core/config.h"
#include "http/http.h"

/* Handlers read the configuration through this (set once by the server). */
extern const struct ms_config *ms_api_config;

void ms_api_health(struct ms_req *req, struct ms_resp *resp);
void ms_api_metrics(struct ms_req *req, struct ms_resp *resp);
void ms_api_capabilities(struct ms_req *req, struct ms_resp *resp);
void ms_api_openapi(struct ms_req *req, struct ms_resp *resp);
void ms_api_audit(struct ms_req *req, struct ms_resp *resp);

void ms_api_sessions_create(struct ms_req *req, struct ms_resp *resp);
void ms_api_sessions_list(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_get(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_delete(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_poweron(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_poweroff(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_pause(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_reset(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_program(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_step(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_run_for(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_inject(struct ms_req *req, struct ms_resp *resp);
void ms_api_session_devices(struct ms_req *req, struct ms_resp *resp);
void ms_api_coverage_start(struct ms_req *req, struct ms_resp *resp);
void ms_api_coverage_stop(struct ms_req *req, struct ms_resp *resp);
void ms_api_peripherals(struct ms_req *req, struct ms_resp *resp);
void ms_api_peripheral_patch(struct ms_req *req, struct ms_resp *resp);
void ms_api_mmio(struct ms_req *req, struct ms_resp *resp);
void ms_api_device_map(struct ms_req *req, struct ms_resp *resp);
void ms_api_snapshots_create(struct ms_req *req, struct ms_resp *resp);
void ms_api_snapshots_list(struct ms_req *req, struct ms_resp *resp);
void ms_api_snapshot_restore(struct ms_req *req, struct ms_resp *resp);
void ms_api_snapshot_delete(struct ms_req *req, struct ms_resp *resp);

void ms_api_programs_upload(struct ms_req *req, struct ms_resp *resp);
void ms_api_programs_list(struct ms_req *req, struct ms_resp *resp);
void ms_api_program_get(struct ms_req *req, struct ms_resp *resp);
void ms_api_program_delete(struct ms_req *req, struct ms_resp *resp);

void ms_api_console_log(struct ms_req *req, struct ms_resp *resp);
void ms_api_console_ticket(struct ms_req *req, struct ms_resp *resp);
void ms_api_console_stream(struct ms_req *req, struct ms_resp *resp);
void ms_api_events_stream(struct ms_req *req, struct ms_resp *resp);
void ms_api_mmio_stream(struct ms_req *req, struct ms_resp *resp);
void ms_api_events_log(struct ms_req *req, struct ms_resp *resp);

#endif
