/* test_validate.c — the declarative body validator and the query-string parser.
 *
 * One field table covers every vtype; each test sends a body and checks the exact list of
 * {field, message} faults it gets back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "impactd/validate.h"

static const char *const COLOUR_VALUES[] = { "red", "green", NULL };
static const struct enumtype COLOURS = { "Colour", "COLOUR", COLOUR_VALUES, NULL };

/* ctx points at an int: the value "even" must also stay below it. */
static const char *check_even(const json_t *value, const void *ctx)
{
    json_int_t v = json_integer_value(value);
    if (v % 2 != 0)
        return "must be even";
    if (ctx && v >= *(const int *)ctx)
        return "must be below the limit";
    return NULL;
}

#define IN (F_CREATE | F_OUT)
static const struct field FIELDS[] = {
    { "name", 1, FT_STRING, IN | F_REQUIRED, 1, 5 },
    { "count", 2, FT_INT, IN, 0, 100 },
    { "ratio", 3, FT_NUMBER, IN, 0, 1 },
    { "active", 4, FT_BOOL, IN },
    { "colour", 5, FT_ENUM, IN, .enumtype = &COLOURS },
    { "at", 6, FT_TIME, IN | F_NULLABLE },
    { "tags", 7, FT_STRING_ARRAY, IN, 0, 3 },
    { "even", 8, FT_INT, IN, .check = check_even },
    { "ref", 9, FT_REF, IN, .ref = "prt_" },
    { "shown", 10, FT_INT, F_OUT },             /* not in bodies: unknown to the validator */
    { "later", 11, FT_INT, IN | F_NULL_DEFAULT },
};
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

/* Validates the JSON text body; returns the errors array (caller decrefs) and the count. */
static json_t *run_ctx(const char *body, const void *ctx, int *faults)
{
    json_error_t je;
    json_t *obj = json_loads(body, JSON_DECODE_ANY, &je);
    if (!obj)
        fail_msg("test body does not parse: %s: %s", body, je.text);
    json_t *errors = json_array();
    assert_non_null(errors);
    *faults = validate_object(obj, FIELDS, NFIELDS, F_CREATE, ctx, errors);
    json_decref(obj);
    assert_int_equal(json_array_size(errors), (size_t)*faults);
    return errors;
}

static json_t *run(const char *body, int *faults) { return run_ctx(body, NULL, faults); }

/* Asserts that errors[i] is {field, message} with the message containing `part`. */
static void assert_fault(const json_t *errors, size_t i, const char *field, const char *part)
{
    const json_t *e = json_array_get(errors, i);
    assert_non_null(e);
    assert_int_equal(json_object_size(e), 2);
    const char *f = json_string_value(json_object_get(e, "field"));
    const char *m = json_string_value(json_object_get(e, "message"));
    assert_non_null(f);
    assert_non_null(m);
    assert_string_equal(f, field);
    if (!strstr(m, part))
        fail_msg("errors[%zu].message \"%s\" lacks \"%s\"", i, m, part);
}

/* Asserts that body yields exactly one fault, on field, with a message containing part. */
static void assert_one_fault(const char *body, const char *field, const char *part)
{
    int n;
    json_t *errors = run(body, &n);
    if (n != 1) {
        char *dump = json_dumps(errors, JSON_COMPACT);
        print_error("body %s gave %d faults: %s\n", body, n, dump ? dump : "?");
        free(dump);
    }
    assert_int_equal(n, 1);
    assert_fault(errors, 0, field, part);
    json_decref(errors);
}

static void assert_valid(const char *body)
{
    int n;
    json_t *errors = run(body, &n);
    if (n != 0) {
        char *dump = json_dumps(errors, JSON_COMPACT);
        print_error("body %s gave %d faults: %s\n", body, n, dump ? dump : "?");
        free(dump);
    }
    assert_int_equal(n, 0);
    json_decref(errors);
}

/* ---- validate_object ---- */

static void test_full_valid_body_has_no_faults(void **state)
{
    (void)state;
    assert_valid("{\"name\": \"gel\", \"count\": 100, \"ratio\": 0.5, \"active\": true,"
                 " \"colour\": \"green\", \"at\": \"2026-03-27T08:00:00Z\","
                 " \"tags\": [\"a\", \"b\", \"c\"], \"even\": 4}");
    assert_valid("{\"name\": \"g\"}");
}

static void test_required_field_missing(void **state)
{
    (void)state;
    assert_one_fault("{}", "name", "is required");
    assert_one_fault("{\"count\": 3}", "name", "is required");
}

static void test_null_rejected_when_not_nullable(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": null}", "name", "must not be null");
    assert_one_fault("{\"name\": \"a\", \"count\": null}", "count", "must not be null");
    assert_valid("{\"name\": \"a\", \"at\": null}");
}

static void test_string_for_integer_is_wrong_type(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"count\": \"3\"}", "count", "must be an integer");
}

static void test_real_for_integer_is_wrong_type(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"count\": 1.5}", "count", "must be an integer");
}

static void test_bool_for_number_is_wrong_type(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"ratio\": true}", "ratio", "must be a number");
    assert_valid("{\"name\": \"a\", \"ratio\": 1}");    /* an integer is a number */
}

static void test_wrong_type_mentions_null_when_nullable(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"at\": 5}", "at", "must be a string or null");
    assert_one_fault("{\"name\": 5}", "name", "must be a string");
    assert_one_fault("{\"name\": \"a\", \"active\": \"yes\"}", "active", "must be a boolean");
}

static void test_integer_and_number_bounds(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"count\": 101}", "count", "between 0 and 100");
    assert_one_fault("{\"name\": \"a\", \"count\": -1}", "count", "between 0 and 100");
    assert_valid("{\"name\": \"a\", \"count\": 0}");
    assert_one_fault("{\"name\": \"a\", \"ratio\": 1.5}", "ratio", "between 0 and 1");
}

static void test_string_length_counts_code_points(void **state)
{
    (void)state;
    /* five "é" are ten bytes but five characters: within 1..5 */
    assert_valid("{\"name\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}");
    assert_valid("{\"name\": \"\xc3\xa9\"}");
    assert_one_fault("{\"name\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", "name",
                     "1 to 5 characters");
    assert_one_fault("{\"name\": \"abcdef\"}", "name", "1 to 5 characters");
    assert_one_fault("{\"name\": \"\"}", "name", "1 to 5 characters");
}

static void test_string_with_control_character_rejected(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\\u0001b\"}", "name", "control characters");
}

static void test_enum_unknown_value_lists_allowed(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"colour\": \"blue\"}", "colour",
                     "must be one of: red, green");
    assert_valid("{\"name\": \"a\", \"colour\": \"red\"}");
}

static void test_time_good_and_bad(void **state)
{
    (void)state;
    assert_valid("{\"name\": \"a\", \"at\": \"2026-03-27T09:00:00+01:00\"}");
    assert_one_fault("{\"name\": \"a\", \"at\": \"yesterday\"}", "at", "RFC 3339");
    assert_one_fault("{\"name\": \"a\", \"at\": \"2026-02-30T00:00:00Z\"}", "at", "RFC 3339");
}

static void test_string_array_items_and_count(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"tags\": [\"x\", 1]}", "tags",
                     "must be an array of strings");
    assert_one_fault("{\"name\": \"a\", \"tags\": \"x\"}", "tags", "must be an array of strings");
    assert_one_fault("{\"name\": \"a\", \"tags\": [\"a\", \"b\", \"c\", \"d\"]}", "tags",
                     "0 to 3 items");
    assert_valid("{\"name\": \"a\", \"tags\": []}");
}

static void test_unknown_field_reported_by_name(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"colour_x\": 1}", "colour_x", "is not a known field");
}

static void test_custom_check_message_used(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"even\": 3}", "even", "must be even");
    assert_valid("{\"name\": \"a\", \"even\": 4}");
    /* the check runs only after the type check passed */
    assert_one_fault("{\"name\": \"a\", \"even\": \"x\"}", "even", "must be an integer");
}

static void test_custom_check_receives_ctx(void **state)
{
    (void)state;
    int limit = 4;
    int n;
    json_t *errors = run_ctx("{\"name\": \"a\", \"even\": 6}", &limit, &n);
    assert_int_equal(n, 1);
    assert_fault(errors, 0, "even", "must be below the limit");
    json_decref(errors);
    errors = run_ctx("{\"name\": \"a\", \"even\": 2}", &limit, &n);
    assert_int_equal(n, 0);
    json_decref(errors);
}

static void test_all_faults_collected_at_once(void **state)
{
    (void)state;
    int n;
    json_t *errors = run("{\"bogus\": 1, \"count\": \"x\", \"colour\": \"blue\","
                         " \"tags\": [1]}", &n);
    assert_int_equal(n, 5);
    /* unknown fields first, then the table's order */
    assert_fault(errors, 0, "bogus", "is not a known field");
    assert_fault(errors, 1, "name", "is required");
    assert_fault(errors, 2, "count", "must be an integer");
    assert_fault(errors, 3, "colour", "must be one of");
    assert_fault(errors, 4, "tags", "array of strings");
    json_decref(errors);
    errors = run("{\"bogus\": 1, \"count\": \"x\", \"colour\": \"blue\","
                 " \"tags\": [1], \"even\": 3, \"name\": null}", &n);
    assert_int_equal(n, 6);
    assert_fault(errors, 1, "name", "must not be null");
    assert_fault(errors, 5, "even", "must be even");
    json_decref(errors);
}

static void test_non_object_body_is_one_fault(void **state)
{
    (void)state;
    assert_one_fault("[1, 2]", "", "must be a JSON object");
    assert_one_fault("\"name\"", "", "must be a JSON object");
    json_t *errors = json_array();
    assert_int_equal(validate_object(NULL, FIELDS, NFIELDS, F_CREATE, NULL, errors), 1);
    assert_int_equal(json_array_size(errors), 1);
    json_decref(errors);
}

/* ---- what the descriptor's flags say ---- */

static void test_output_only_field_is_unknown_in_a_body(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"shown\": 1}", "shown", "is not a known field");
}

static void test_null_default_accepted_on_create(void **state)
{
    (void)state;
    int n;
    json_t *errors = run("{\"name\": \"a\", \"later\": null}", &n);
    assert_int_equal(n, 0);
    json_decref(errors);
    assert_one_fault("{\"name\": \"a\", \"later\": \"x\"}", "later", "must be an integer");
}

static void test_ref_needs_its_prefix(void **state)
{
    (void)state;
    assert_one_fault("{\"name\": \"a\", \"ref\": \"tok_abc\"}", "ref", "starts with prt_");
    int n;
    json_t *errors = run("{\"name\": \"a\", \"ref\": \"prt_abc\"}", &n);
    assert_int_equal(n, 0);
    json_decref(errors);
}

/* A PATCH mask: only F_PATCH fields are known, and nothing is required. */
static void test_patch_mask_knows_only_patch_fields(void **state)
{
    (void)state;
    static const struct field PATCHABLE[] = {
        { "name", 1, FT_STRING, F_CREATE | F_REQUIRED, 1, 5 },
        { "count", 2, FT_INT, F_CREATE | F_PATCH | F_NULLABLE, 0, 100 },
    };
    json_t *body = json_loads("{\"count\": null}", 0, NULL);
    json_t *errors = json_array();
    assert_int_equal(validate_object(body, PATCHABLE, 2, F_PATCH, NULL, errors), 0);
    json_decref(body);
    body = json_loads("{\"name\": \"b\"}", 0, NULL);
    assert_int_equal(validate_object(body, PATCHABLE, 2, F_PATCH, NULL, errors), 1);
    assert_fault(errors, 0, "name", "is not a known field");
    json_decref(body);
    json_decref(errors);
}

/* ---- validate_query_int ---- */

static void test_query_int_in_bounds(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_int_equal(validate_query_int("25", 1, 100, 10, &v), 0);
    assert_int_equal(v, 25);
    assert_int_equal(validate_query_int("1", 1, 100, 10, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(validate_query_int("100", 1, 100, 10, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(validate_query_int("007", 0, 100, 10, &v), 0);
    assert_int_equal(v, 7);
}

static void test_query_int_absent_gives_default(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_int_equal(validate_query_int(NULL, 1, 100, 10, &v), 0);
    assert_int_equal(v, 10);
}

static void test_query_int_out_of_bounds(void **state)
{
    (void)state;
    int64_t v = 77;
    assert_int_equal(validate_query_int("0", 1, 100, 10, &v), -1);
    assert_int_equal(validate_query_int("101", 1, 100, 10, &v), -1);
    assert_int_equal(v, 77);
}

static void test_query_int_rejects_non_numbers(void **state)
{
    (void)state;
    static const char *const BAD[] = { "abc", "", "-1", "+5", " 5", "5 ", "5a", "1e3", "0x10" };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        int64_t v = 77;
        if (validate_query_int(BAD[i], 0, 1000, 10, &v) == 0)
            fail_msg("\"%s\" was accepted as %lld", BAD[i], (long long)v);
    }
}

static void test_query_int_rejects_huge_numbers(void **state)
{
    (void)state;
    int64_t v = 77;
    assert_int_equal(validate_query_int("9223372036854775808", 0, INT64_MAX, 10, &v), -1);
    assert_int_equal(validate_query_int("99999999999999999999", 0, INT64_MAX, 10, &v), -1);
    assert_int_equal(validate_query_int("100000000000", 0, 1000, 10, &v), -1);
    assert_int_equal(validate_query_int("9223372036854775807", 0, INT64_MAX, 10, &v), 0);
    assert_true(v == INT64_MAX);
}

/* ---- text ---- */

static void test_text_rejects_control_characters(void **state)
{
    (void)state;
    assert_true(validate_text("plain text"));
    assert_true(validate_text("tab\tnew\nline\rreturn"));
    assert_true(validate_text("\xc3\xa9t\xc3\xa9"));
    assert_true(validate_text(""));
    assert_false(validate_text("bell\a"));
    assert_false(validate_text("\x1b[31m"));
    assert_false(validate_text("del\x7f"));
}

static void test_utf8_length_counts_code_points(void **state)
{
    (void)state;
    assert_int_equal(validate_utf8_length(""), 0);
    assert_int_equal(validate_utf8_length("abc"), 3);
    assert_int_equal(validate_utf8_length("\xc3\xa9"), 1);                       /* é */
    assert_int_equal(validate_utf8_length("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 4); /* aé€😀 */
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_valid_body_has_no_faults),
        cmocka_unit_test(test_required_field_missing),
        cmocka_unit_test(test_null_rejected_when_not_nullable),
        cmocka_unit_test(test_string_for_integer_is_wrong_type),
        cmocka_unit_test(test_real_for_integer_is_wrong_type),
        cmocka_unit_test(test_bool_for_number_is_wrong_type),
        cmocka_unit_test(test_wrong_type_mentions_null_when_nullable),
        cmocka_unit_test(test_integer_and_number_bounds),
        cmocka_unit_test(test_string_length_counts_code_points),
        cmocka_unit_test(test_string_with_control_character_rejected),
        cmocka_unit_test(test_enum_unknown_value_lists_allowed),
        cmocka_unit_test(test_time_good_and_bad),
        cmocka_unit_test(test_string_array_items_and_count),
        cmocka_unit_test(test_unknown_field_reported_by_name),
        cmocka_unit_test(test_custom_check_message_used),
        cmocka_unit_test(test_custom_check_receives_ctx),
        cmocka_unit_test(test_all_faults_collected_at_once),
        cmocka_unit_test(test_non_object_body_is_one_fault),
        cmocka_unit_test(test_output_only_field_is_unknown_in_a_body),
        cmocka_unit_test(test_null_default_accepted_on_create),
        cmocka_unit_test(test_ref_needs_its_prefix),
        cmocka_unit_test(test_patch_mask_knows_only_patch_fields),
        cmocka_unit_test(test_query_int_in_bounds),
        cmocka_unit_test(test_query_int_absent_gives_default),
        cmocka_unit_test(test_query_int_out_of_bounds),
        cmocka_unit_test(test_query_int_rejects_non_numbers),
        cmocka_unit_test(test_query_int_rejects_huge_numbers),
        cmocka_unit_test(test_text_rejects_control_characters),
        cmocka_unit_test(test_utf8_length_counts_code_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
