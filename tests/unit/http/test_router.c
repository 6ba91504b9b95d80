/*
 * Unit tests for http/router.c: parameters, 405 with the allowed methods,
 * trailing slash, hostile paths, and an OpenAPI document that lists every
 * route.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "http/router.h"

static void test_params(void **state)
{
	struct ms_req req = {0};
	char scratch[256], allow[64];
	const struct ms_route *r;

	(void)state;
	r = ms_route_match("DELETE", "/api/v1/sessions/sess_1/snapshots/boot", &req, scratch,
	                   sizeof(scratch), allow, sizeof(allow));
	assert_non_null(r);
	assert_int_equal(req.n_params, 2);
	assert_string_equal(req.params[0], "sess_1");
	assert_string_equal(req.params[1], "boot");
	r = ms_route_match("GET", "/api/v1/sessions/", &req, scratch, sizeof(scratch), allow,
	                   sizeof(allow));
	assert_non_null(r);
	assert_string_equal(r->pattern, "/api/v1/sessions");
}

static void test_method_not_allowed(void **state)
{
	struct ms_req req = {0};
	char scratch[256], allow[64];

	(void)state;
	assert_null(ms_route_match("PUT", "/api/v1/sessions/x", &req, scratch, sizeof(scratch),
	                           allow, sizeof(allow)));
	assert_non_null(strstr(allow, "GET"));
	assert_non_null(strstr(allow, "DELETE"));
	assert_null(ms_route_match("GET", "/api/v1/nothing", &req, scratch, sizeof(scratch), allow,
	                           sizeof(allow)));
	assert_string_equal(allow, "");
}

static void test_hostile_paths(void **state)
{
	struct ms_req req = {0};
	char scratch[16], allow[64];
	char longp[600];

	(void)state;
	/* Empty segment, extra segments, parameter larger than the scratch space. */
	assert_null(ms_route_match("GET", "/api/v1/sessions//devices", &req, scratch,
	                           sizeof(scratch), allow, sizeof(allow)));
	assert_null(ms_route_match("GET", "/api/v1/sessions/a/devices/b", &req, scratch,
	                           sizeof(scratch), allow, sizeof(allow)));
	memset(longp, 'a', sizeof(longp));
	memcpy(longp, "/api/v1/sessions/", 17);
	longp[sizeof(longp) - 1] = '\0';
	assert_null(
	    ms_route_match("GET", longp, &req, scratch, sizeof(scratch), allow, sizeof(allow)));
	assert_null(
	    ms_route_match("GET", "", &req, scratch, sizeof(scratch), allow, sizeof(allow)));
}

static void test_openapi_lists_every_route(void **state)
{
	json_t *doc = ms_openapi();
	json_t *paths = json_object_get(doc, "paths");

	(void)state;
	assert_non_null(paths);
	assert_non_null(
	    json_object_get(json_object_get(paths, "/api/v1/sessions/{id}/poweron"), "post"));
	assert_non_null(json_object_get(
	    json_object_get(paths, "/api/v1/sessions/{id}/snapshots/{snap}"), "delete"));
	for (const struct ms_route *r = ms_routes; r->method != NULL; r++)
		assert_non_null(r->summary);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_params),
	    cmocka_unit_test(test_method_not_allowed),
	    cmocka_unit_test(test_hostile_paths),
	    cmocka_unit_test(test_openapi_lists_every_route),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
