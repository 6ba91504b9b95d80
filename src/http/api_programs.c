/*
 * api_programs: firmware uploads and the program store.
 *
 * Threads: HTTP worker threads. The upload arrives already spooled to a
 * file by the server (size-capped); core/program.c validates and stores it.
 */
#include "core/program.h"
#include "core/session.h"
#include "http/api.h"

void ms_api_programs_upload(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_program p;
	struct ms_err e;

	ms_err_clear(&e);
	if (ms_programs_add_file(req->upload_path, req->upload_name, &p, &e) != 0)
		ms_resp_error(resp, &e);
	else
		ms_resp_json(resp, 201, ms_program_json(&p));
}

void ms_api_programs_list(struct ms_req *req, struct ms_resp *resp)
{
	(void)req;
	ms_resp_json(resp, 200, ms_programs_list_json());
}

void ms_api_program_get(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_program p;
	struct ms_err e;

	ms_err_clear(&e);
	if (ms_programs_get(req->params[0], &p, &e) != 0)
		ms_resp_error(resp, &e);
	else
		ms_resp_json(resp, 200, ms_program_json(&p));
}

void ms_api_program_delete(struct ms_req *req, struct ms_resp *resp)
{
	struct ms_err e;

	char user[40];

	ms_err_clear(&e);
	/*
	 * A session reloads its program file on every poweron; deleting it
	 * would break that session later, so refuse while one refers to it.
	 */
	if (ms_sessions_program_in_use(req->params[0], user, sizeof(user))) {
		ms_resp_fail(resp, 409, "program_in_use",
		             "program %.64s is loaded in session %s: delete the session first",
		             req->params[0], user);
		return;
	}
	if (ms_programs_delete(req->params[0], &e) != 0)
		ms_resp_error(resp, &e);
	else
		ms_resp_json(resp, 200, json_pack("{s:s,s:b}", "id", req->params[0], "deleted", 1));
}
