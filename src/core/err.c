/*
 * err: error detail helpers; see err.h for the convention.
 */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ms_fail(struct ms_err *e, int status, const char *code, const char *fmt, ...)
{
	int rc;

	switch (status) {
	case 400:
		rc = MS_EBADINPUT;
		break;
	case 401:
		rc = MS_EAUTH;
		break;
	case 403:
		rc = MS_EFORBIDDEN;
		break;
	case 404:
		rc = MS_ENOTFOUND;
		break;
	case 409:
		rc = MS_ESTATE;
		break;
	case 413:
		rc = MS_ETOOBIG;
		break;
	case 429:
		rc = MS_EQUOTA;
		break;
	case 501:
		rc = MS_EUNSUPPORTED;
		break;
	case 502:
		rc = MS_EEMULATOR;
		break;
	default:
		rc = MS_EINTERNAL;
		break;
	}
	if (e != NULL) {
		va_list ap;

		e->status = status;
		snprintf(e->code, sizeof(e->code), "%s", code);
		va_start(ap, fmt);
		vsnprintf(e->message, sizeof(e->message), fmt, ap);
		va_end(ap);
	}
	return rc;
}

void ms_err_clear(struct ms_err *e)
{
	if (e != NULL) {
		e->status = 0;
		e->code[0] = '\0';
		e->message[0] = '\0';
	}
}

const char *ms_strerror(int code)
{
	switch (code) {
	case MS_EBADINPUT:
		return "bad input";
	case MS_ESTATE:
		return "not allowed in this state";
	case MS_EUNSUPPORTED:
		return "not supported";
	case MS_EEMULATOR:
		return "emulator failure";
	case MS_EQUOTA:
		return "quota reached";
	case MS_ETOOBIG:
		return "too large";
	case MS_EAUTH:
		return "authentication required";
	case MS_EFORBIDDEN:
		return "forbidden";
	case MS_ENOTFOUND:
		return "not found";
	case MS_ECONFLICT:
		return "already exists";
	case MS_EINTERNAL:
		return "internal error";
	default:
		break;
	}
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}
