/* test_problem.c — RFC 9457 problem documents: their fields, the errors array, the phrases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "impactd/problem.h"

static const char *str_member(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s)
        fail_msg("member \"%s\" is missing or not a string", key);
    return s;
}

static void test_problem_without_slug_is_about_blank_with_phrase(void **state)
{
    (void)state;
    json_t *p = problem_new(404, NULL, NULL, "no participant prt_x", NULL);
    assert_non_null(p);
    assert_string_equal(str_member(p, "type"), "about:blank");
    assert_string_equal(str_member(p, "title"), "Not Found");
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 404);
    assert_true(json_is_integer(json_object_get(p, "status")));
    assert_string_equal(str_member(p, "detail"), "no participant prt_x");
    assert_null(json_object_get(p, "errors"));
    assert_int_equal(json_object_size(p), 4);
    json_decref(p);
}

static void test_problem_with_slug_has_tag_type_and_title(void **state)
{
    (void)state;
    json_t *p = problem_new(409, "version-conflict", "Version conflict", "stale If-Match", NULL);
    assert_non_null(p);
    assert_string_equal(str_member(p, "type"), "tag:impactd,2026:problem:version-conflict");
    assert_string_equal(str_member(p, "title"), "Version conflict");
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 409);
    assert_string_equal(str_member(p, "detail"), "stale If-Match");
    json_decref(p);
}

static void test_problem_null_title_and_detail_use_phrase(void **state)
{
    (void)state;
    json_t *p = problem_new(503, "store-unavailable", NULL, NULL, NULL);
    assert_non_null(p);
    assert_string_equal(str_member(p, "type"), "tag:impactd,2026:problem:store-unavailable");
    assert_string_equal(str_member(p, "title"), "Service Unavailable");
    assert_string_equal(str_member(p, "detail"), "Service Unavailable");
    json_decref(p);
}

static void test_problem_attaches_errors_array(void **state)
{
    (void)state;
    json_t *errors = problem_errors_new();
    assert_non_null(errors);
    assert_true(json_is_array(errors));
    assert_int_equal(problem_errors_add(errors, "name", "is required"), 0);
    assert_int_equal(problem_errors_add(errors, "quantity", "must be between %d and %d", 1, 9),
                     0);
    json_t *p = problem_new(422, "validation", "Invalid request body", NULL, errors);
    assert_non_null(p);
    /* stolen: the document holds the very array */
    assert_ptr_equal(json_object_get(p, "errors"), errors);
    assert_int_equal(json_array_size(errors), 2);
    assert_string_equal(str_member(p, "title"), "Invalid request body");
    assert_int_equal(json_object_size(p), 5);
    json_decref(p);
}

static void test_errors_add_builds_field_and_message(void **state)
{
    (void)state;
    json_t *errors = problem_errors_new();
    assert_int_equal(problem_errors_add(errors, "quantity", "must be between %d and %s", 1,
                                        "9"), 0);
    assert_int_equal(problem_errors_add(errors, "", "the body must be a JSON object"), 0);
    assert_int_equal(json_array_size(errors), 2);
    json_t *e = json_array_get(errors, 0);
    assert_int_equal(json_object_size(e), 2);
    assert_string_equal(str_member(e, "field"), "quantity");
    assert_string_equal(str_member(e, "message"), "must be between 1 and 9");
    e = json_array_get(errors, 1);
    assert_string_equal(str_member(e, "field"), "");
    assert_string_equal(str_member(e, "message"), "the body must be a JSON object");
    json_decref(errors);
}

static void test_status_phrases(void **state)
{
    (void)state;
    static const struct { int status; const char *phrase; } WANT[] = {
        { 400, "Bad Request" },
        { 401, "Unauthorized" },
        { 403, "Forbidden" },
        { 404, "Not Found" },
        { 405, "Method Not Allowed" },
        { 409, "Conflict" },
        { 413, "Content Too Large" },
        { 415, "Unsupported Media Type" },
        { 422, "Unprocessable Content" },
        { 429, "Too Many Requests" },
        { 500, "Internal Server Error" },
        { 503, "Service Unavailable" },
    };
    for (size_t i = 0; i < sizeof WANT / sizeof WANT[0]; i++)
        assert_string_equal(problem_status_phrase(WANT[i].status), WANT[i].phrase);
    const char *other = problem_status_phrase(599);
    assert_non_null(other);
    assert_true(*other != '\0');
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_problem_without_slug_is_about_blank_with_phrase),
        cmocka_unit_test(test_problem_with_slug_has_tag_type_and_title),
        cmocka_unit_test(test_problem_null_title_and_detail_use_phrase),
        cmocka_unit_test(test_problem_attaches_errors_array),
        cmocka_unit_test(test_errors_add_builds_field_and_message),
        cmocka_unit_test(test_status_phrases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
