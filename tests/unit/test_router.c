/* test_router.c — path matching against the real route table, Allow headers, and the
 * access rules the table declares (which routes are public, who may create participants). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "impactd/handlers.h"
#include "impactd/router.h"
#include "impactd/routes.h"

static const struct route *table(size_t *n)
{
    const struct route *r = routes_table(n);
    assert_non_null(r);
    assert_true(*n > 0);
    return r;
}

static struct route_match match(unsigned method, const char *path)
{
    size_t n;
    const struct route *routes = table(&n);
    struct route_match m;
    router_match(routes, n, method, path, &m);
    return m;
}

/* The index of the route (method, pattern), failing the test when absent. */
static size_t route_index(unsigned method, const char *pattern)
{
    size_t n;
    const struct route *routes = table(&n);
    for (size_t i = 0; i < n; i++)
        if (routes[i].method == method && strcmp(routes[i].pattern, pattern) == 0)
            return i;
    fail_msg("no route %s %s", router_method_name(method), pattern);
    return 0;
}

/* ---- the table ---- */

static void test_patterns_start_with_slash(void **state)
{
    (void)state;
    size_t n;
    const struct route *routes = table(&n);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(routes[i].pattern);
        if (routes[i].pattern[0] != '/')
            fail_msg("route %zu pattern \"%s\" does not start with /", i, routes[i].pattern);
        assert_non_null(routes[i].handler);
    }
}

static void test_routes_unique_per_method_and_pattern(void **state)
{
    (void)state;
    size_t n;
    const struct route *routes = table(&n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (routes[i].method == routes[j].method &&
                strcmp(routes[i].pattern, routes[j].pattern) == 0)
                fail_msg("%s %s declared twice", router_method_name(routes[i].method),
                         routes[i].pattern);
}

static void test_each_route_has_exactly_one_method(void **state)
{
    (void)state;
    size_t n;
    const struct route *routes = table(&n);
    for (size_t i = 0; i < n; i++) {
        unsigned m = routes[i].method;
        if (m == 0 || (m & (m - 1)) != 0 || m == M_HEAD || m == M_OPTIONS)
            fail_msg("route %s has method mask %#x", routes[i].pattern, m);
    }
}

static bool is_public_path(const char *pattern)
{
    /* the contract's list: operations, the public keys, the catalogue */
    static const char *const OPS[] = { "/healthz", "/readyz", "/metrics", "/openapi.json",
                                       "/v1/keys" };
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (strcmp(pattern, OPS[i]) == 0)
            return true;
    return strcmp(pattern, "/v1/catalog") == 0 || strncmp(pattern, "/v1/catalog/", 12) == 0;
}

static void test_public_routes_are_exactly_ops_and_catalog(void **state)
{
    (void)state;
    size_t n;
    const struct route *routes = table(&n);
    for (size_t i = 0; i < n; i++) {
        bool pub = routes[i].roles == ROLE_PUBLIC;
        if (pub != is_public_path(routes[i].pattern))
            fail_msg("%s %s: roles %#x", router_method_name(routes[i].method), routes[i].pattern,
                     routes[i].roles);
        assert_int_equal(routes[i].roles & ~(unsigned)ROLE_ANY, 0);
    }
    /* and each of them is there */
    assert_int_equal(routes[route_index(M_GET, "/healthz")].roles, ROLE_PUBLIC);
    assert_int_equal(routes[route_index(M_GET, "/readyz")].roles, ROLE_PUBLIC);
    assert_int_equal(routes[route_index(M_GET, "/metrics")].roles, ROLE_PUBLIC);
    assert_int_equal(routes[route_index(M_GET, "/openapi.json")].roles, ROLE_PUBLIC);
    assert_int_equal(routes[route_index(M_GET, "/v1/keys")].roles, ROLE_PUBLIC);
    assert_int_equal(routes[route_index(M_GET, "/v1/catalog/products")].roles, ROLE_PUBLIC);
    assert_int_equal(routes[route_index(M_GET, "/v1/catalog/regions")].roles, ROLE_PUBLIC);
}

static void test_create_participant_is_admin_only(void **state)
{
    (void)state;
    size_t n;
    const struct route *routes = table(&n);
    const struct route *r = &routes[route_index(M_POST, "/v1/participants")];
    assert_int_equal(r->roles, ROLE_ADMIN);
    assert_ptr_equal(r->handler, participants_create);
    assert_true(r->flags & ROUTE_BODY);
}

/* ---- matching ---- */

static void test_match_participant_get_with_param(void **state)
{
    (void)state;
    size_t n;
    const struct route *routes = table(&n);
    struct route_match m = match(M_GET, "/v1/participants/prt_abc");
    assert_true(m.index >= 0);
    assert_ptr_equal(routes[m.index].handler, participants_get);
    assert_string_equal(routes[m.index].pattern, "/v1/participants/{id}");
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "prt_abc");
}

static void test_match_token_issue_with_param(void **state)
{
    (void)state;
    size_t n;
    const struct route *routes = table(&n);
    struct route_match m = match(M_POST, "/v1/participants/prt_xyz/tokens");
    assert_true(m.index >= 0);
    assert_ptr_equal(routes[m.index].handler, participants_issue_token);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "prt_xyz");
}

static void test_head_matches_get_routes(void **state)
{
    (void)state;
    size_t n;
    const struct route *routes = table(&n);
    struct route_match m = match(M_HEAD, "/v1/participants/prt_abc");
    assert_true(m.index >= 0);
    assert_ptr_equal(routes[m.index].handler, participants_get);
    assert_string_equal(m.params[0], "prt_abc");
    m = match(M_HEAD, "/healthz");
    assert_true(m.index >= 0);
    assert_ptr_equal(routes[m.index].handler, ops_healthz);
}

static void test_unknown_path_is_404(void **state)
{
    (void)state;
    static const char *const PATHS[] = { "/nope", "/", "", "/v1", "/v1/participants/prt_a/x",
                                         "/V1/me", "/healthz/x" };
    for (size_t i = 0; i < sizeof PATHS / sizeof PATHS[0]; i++) {
        struct route_match m = match(M_GET, PATHS[i]);
        if (m.index != -1 || m.allow != 0)
            fail_msg("\"%s\": index %d allow %#x", PATHS[i], m.index, m.allow);
    }
}

static void test_wrong_method_is_405_with_allow(void **state)
{
    (void)state;
    struct route_match m = match(M_PUT, "/v1/participants/prt_abc");
    assert_int_equal(m.index, -1);
    unsigned want = M_GET | M_HEAD | M_PATCH | M_OPTIONS;
    assert_int_equal(m.allow & want, want);
    assert_int_equal(m.allow & M_PUT, 0);
    m = match(M_PUT, "/v1/tokens/tok_abc");
    assert_int_equal(m.index, -1);
    want = M_DELETE | M_OPTIONS;
    assert_int_equal(m.allow & want, want);
    assert_int_equal(m.allow & M_PUT, 0);
    m = match(M_POST, "/healthz");
    assert_int_equal(m.index, -1);
    assert_int_equal(m.allow, M_GET | M_HEAD | M_OPTIONS);
}

static void test_options_is_not_a_route_but_allowed(void **state)
{
    (void)state;
    struct route_match m = match(M_OPTIONS, "/v1/participants");
    assert_int_equal(m.index, -1);
    assert_true(m.allow & M_POST);
    assert_true(m.allow & M_OPTIONS);
}

static void test_trailing_slash_is_404(void **state)
{
    (void)state;
    struct route_match m = match(M_GET, "/v1/me/");
    assert_int_equal(m.index, -1);
    assert_int_equal(m.allow, 0);
    m = match(M_GET, "/v1/participants/prt_abc/");
    assert_int_equal(m.index, -1);
    assert_int_equal(m.allow, 0);
}

static void test_empty_segment_does_not_match(void **state)
{
    (void)state;
    struct route_match m = match(M_POST, "/v1/participants//tokens");
    assert_int_equal(m.index, -1);
    assert_int_equal(m.allow, 0);
    m = match(M_GET, "/v1/participants/");
    assert_int_equal(m.index, -1);
    assert_int_equal(m.allow, 0);
    m = match(M_GET, "//v1/me");
    assert_int_equal(m.index, -1);
    assert_int_equal(m.allow, 0);
}

static void test_overlong_param_does_not_match(void **state)
{
    (void)state;
    char path[64 + ROUTER_PARAM_LEN + 16];
    snprintf(path, sizeof path, "/v1/participants/");
    size_t len = strlen(path);
    memset(path + len, 'a', ROUTER_PARAM_LEN);
    path[len + ROUTER_PARAM_LEN] = '\0';
    struct route_match m = match(M_GET, path);
    assert_int_equal(m.index, -1);
    path[len + ROUTER_PARAM_LEN - 1] = '\0';   /* 127 characters fit */
    m = match(M_GET, path);
    assert_true(m.index >= 0);
    assert_int_equal(strlen(m.params[0]), ROUTER_PARAM_LEN - 1);
}

/* ---- matching rules, on a table of our own ---- */

static void nop_handler(struct req *r) { (void)r; }
static void other_handler(struct req *r) { (void)r; }

static const struct route LOCAL[] = {
    { M_GET, "/a/{x}/b/{y}", ROLE_ANY, 0, nop_handler },
    { M_GET, "/a/{x}", ROLE_ANY, 0, nop_handler },
    { M_GET, "/a/fixed", ROLE_ANY, 0, other_handler },
    { M_DELETE, "/only-delete", ROLE_ANY, 0, nop_handler },
};
#define NLOCAL (sizeof LOCAL / sizeof LOCAL[0])

static void test_two_params_captured_in_order(void **state)
{
    (void)state;
    struct route_match m;
    router_match(LOCAL, NLOCAL, M_GET, "/a/one/b/two", &m);
    assert_int_equal(m.index, 0);
    assert_int_equal(m.nparams, 2);
    assert_string_equal(m.params[0], "one");
    assert_string_equal(m.params[1], "two");
}

static void test_first_matching_route_wins(void **state)
{
    (void)state;
    struct route_match m;
    router_match(LOCAL, NLOCAL, M_GET, "/a/fixed", &m);
    assert_int_equal(m.index, 1);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0], "fixed");
}

static void test_head_without_get_is_405(void **state)
{
    (void)state;
    struct route_match m;
    router_match(LOCAL, NLOCAL, M_HEAD, "/only-delete", &m);
    assert_int_equal(m.index, -1);
    assert_int_equal(m.allow, M_DELETE | M_OPTIONS);
    router_match(LOCAL, NLOCAL, M_HEAD, "/a/x/b/y", &m);
    assert_int_equal(m.index, 0);
    assert_int_equal(m.allow, M_GET | M_HEAD | M_OPTIONS);
}

/* ---- names ---- */

static void test_allow_header_format(void **state)
{
    (void)state;
    char out[64];
    router_allow_header(M_GET | M_HEAD | M_OPTIONS, out, sizeof out);
    assert_string_equal(out, "GET, HEAD, OPTIONS");
    router_allow_header(M_OPTIONS | M_PATCH | M_GET, out, sizeof out);
    assert_string_equal(out, "GET, PATCH, OPTIONS");
    router_allow_header(M_GET | M_HEAD | M_POST | M_PUT | M_PATCH | M_DELETE | M_OPTIONS, out,
                        sizeof out);
    assert_string_equal(out, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    router_allow_header(0, out, sizeof out);
    assert_string_equal(out, "");
}

static void test_method_names_round_trip(void **state)
{
    (void)state;
    static const unsigned ALL[] = { M_GET, M_HEAD, M_POST, M_PUT, M_PATCH, M_DELETE, M_OPTIONS };
    for (size_t i = 0; i < sizeof ALL / sizeof ALL[0]; i++)
        assert_int_equal(router_method_from_name(router_method_name(ALL[i])), ALL[i]);
    assert_string_equal(router_method_name(M_PATCH), "PATCH");
    assert_int_equal(router_method_from_name("TRACE"), 0);
    assert_int_equal(router_method_from_name("get"), 0);
}

static void test_role_names_round_trip(void **state)
{
    (void)state;
    static const unsigned ALL[] = { ROLE_MANUFACTURER, ROLE_HOSPITAL, ROLE_MINISTRY, ROLE_ADMIN };
    static const char *const NAMES[] = { "manufacturer", "hospital", "ministry", "admin" };
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(role_name(ALL[i]), NAMES[i]);
        assert_int_equal(role_parse(NAMES[i]), ALL[i]);
        assert_int_equal(role_parse(role_name(ALL[i])), ALL[i]);
    }
    assert_int_equal(role_parse("root"), 0);
    assert_int_equal(role_parse(""), 0);
    assert_int_equal(role_parse(role_name(0)), 0);
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns_start_with_slash),
        cmocka_unit_test(test_routes_unique_per_method_and_pattern),
        cmocka_unit_test(test_each_route_has_exactly_one_method),
        cmocka_unit_test(test_public_routes_are_exactly_ops_and_catalog),
        cmocka_unit_test(test_create_participant_is_admin_only),
        cmocka_unit_test(test_match_participant_get_with_param),
        cmocka_unit_test(test_match_token_issue_with_param),
        cmocka_unit_test(test_head_matches_get_routes),
        cmocka_unit_test(test_unknown_path_is_404),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_options_is_not_a_route_but_allowed),
        cmocka_unit_test(test_trailing_slash_is_404),
        cmocka_unit_test(test_empty_segment_does_not_match),
        cmocka_unit_test(test_overlong_param_does_not_match),
        cmocka_unit_test(test_two_params_captured_in_order),
        cmocka_unit_test(test_first_matching_route_wins),
        cmocka_unit_test(test_head_without_get_is_405),
        cmocka_unit_test(test_allow_header_format),
        cmocka_unit_test(test_method_names_round_trip),
        cmocka_unit_test(test_role_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
