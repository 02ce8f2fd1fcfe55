/* test_timeutil.c — RFC 3339 formatting and parsing in int64 milliseconds, and the clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "impactd/timeutil.h"

#define T_2026_03_27_08 1774598400000LL     /* 2026-03-27T08:00:00Z */
#define DAY_MS 86400000LL

static void assert_formats(int64_t ms, const char *want)
{
    char out[RFC3339_LEN];
    memset(out, 'x', sizeof out);
    time_format_rfc3339(ms, out);
    assert_string_equal(out, want);
}

static int64_t parse_ok(const char *s)
{
    int64_t ms = -42;
    if (time_parse_rfc3339(s, &ms) != 0)
        fail_msg("\"%s\" was rejected", s);
    return ms;
}

static void assert_rejected(const char *s)
{
    int64_t ms = -42;
    if (time_parse_rfc3339(s, &ms) == 0)
        fail_msg("\"%s\" was accepted as %lld", s, (long long)ms);
    assert_int_equal(ms, -42);
}

static void test_format_epoch(void **state)
{
    (void)state;
    assert_formats(0, "1970-01-01T00:00:00Z");
}

static void test_format_milliseconds(void **state)
{
    (void)state;
    assert_formats(123, "1970-01-01T00:00:00.123Z");
    assert_formats(5, "1970-01-01T00:00:00.005Z");
    assert_formats(T_2026_03_27_08, "2026-03-27T08:00:00Z");
    assert_formats(T_2026_03_27_08 + 1500, "2026-03-27T08:00:01.500Z");
}

static void test_format_before_epoch(void **state)
{
    (void)state;
    assert_formats(-1, "1969-12-31T23:59:59.999Z");
    assert_formats(-1000, "1969-12-31T23:59:59Z");
}

static void test_parse_utc(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("2026-03-27T08:00:00Z"), T_2026_03_27_08);
    assert_int_equal(parse_ok("2026-03-27t08:00:00z"), T_2026_03_27_08);
}

static void test_parse_offsets(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2026-03-27T09:00:00+01:00"), T_2026_03_27_08);
    assert_int_equal(parse_ok("2026-03-27T02:30:00-05:30"), T_2026_03_27_08);
    assert_int_equal(parse_ok("2026-03-27T08:00:00+00:00"), T_2026_03_27_08);
    assert_int_equal(parse_ok("2026-03-27T08:00:00-00:00"), T_2026_03_27_08);
    /* an offset can move the date across midnight */
    assert_int_equal(parse_ok("2026-03-28T01:00:00+17:00"), T_2026_03_27_08);
}

static void test_parse_fractional_seconds(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2026-03-27T08:00:00.5Z"), T_2026_03_27_08 + 500);
    assert_int_equal(parse_ok("2026-03-27T08:00:00.123Z"), T_2026_03_27_08 + 123);
    assert_int_equal(parse_ok("2026-03-27T08:00:00.123456789Z"), T_2026_03_27_08 + 123);
    assert_int_equal(parse_ok("2026-03-27T09:00:00.250+01:00"), T_2026_03_27_08 + 250);
    assert_rejected("2026-03-27T08:00:00.Z");
    assert_rejected("2026-03-27T08:00:00.1234567890Z");
}

static void test_round_trip(void **state)
{
    (void)state;
    static const int64_t MS[] = { 0, 1, 999, 1000, T_2026_03_27_08, T_2026_03_27_08 + 7,
                                  951782400000LL /* 2000-02-29 */, 253402300799999LL };
    for (size_t i = 0; i < sizeof MS / sizeof MS[0]; i++) {
        char out[RFC3339_LEN];
        time_format_rfc3339(MS[i], out);
        int64_t back = -1;
        if (time_parse_rfc3339(out, &back) != 0)
            fail_msg("own output \"%s\" rejected", out);
        assert_int_equal(back, MS[i]);
    }
}

static void test_parse_rejects_impossible_dates(void **state)
{
    (void)state;
    assert_rejected("2026-02-30T00:00:00Z");
    assert_rejected("2026-04-31T00:00:00Z");
    assert_rejected("2026-13-01T00:00:00Z");
    assert_rejected("2026-00-01T00:00:00Z");
    assert_rejected("2026-01-00T00:00:00Z");
    assert_rejected("2026-01-01T24:00:00Z");
    assert_rejected("2026-01-01T00:60:00Z");
    assert_rejected("2026-01-01T00:00:00+24:00");
}

static void test_leap_years(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2024-02-29T00:00:00Z") - parse_ok("2024-02-28T00:00:00Z"), DAY_MS);
    assert_int_equal(parse_ok("2024-03-01T00:00:00Z") - parse_ok("2024-02-29T00:00:00Z"), DAY_MS);
    assert_rejected("2026-02-29T00:00:00Z");
    assert_int_equal(parse_ok("2000-02-29T00:00:00Z"), 951782400000LL);
    assert_rejected("2100-02-29T00:00:00Z");
}

static void test_parse_rejects_missing_offset_and_garbage(void **state)
{
    (void)state;
    assert_rejected("2026-03-27T08:00:00");
    assert_rejected("2026-03-27T08:00:00.123");
    assert_rejected("2026-03-27");
    assert_rejected("");
    assert_rejected("garbage");
    assert_rejected("garbage-that-is-long-enough-to-pass");
    assert_rejected("2026-03-27T08:00:00ZZ");
    assert_rejected("2026-03-27T08:00:00+0100");
    assert_rejected("2026-03-27T08:00:00+01");
    assert_rejected("2026-03-27X08:00:00Z");
    assert_rejected("2026/03/27T08:00:00Z");
    assert_rejected("26-03-27T08:00:00Z");
}

static void test_clocks(void **state)
{
    (void)state;
    assert_true(time_now_ms() > 1704067200000LL);          /* after 2024-01-01 */
    int64_t a = time_mono_us();
    int64_t b = time_mono_us();
    assert_true(a > 0);
    assert_true(b >= a);
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_epoch),
        cmocka_unit_test(test_format_milliseconds),
        cmocka_unit_test(test_format_before_epoch),
        cmocka_unit_test(test_parse_utc),
        cmocka_unit_test(test_parse_offsets),
        cmocka_unit_test(test_parse_fractional_seconds),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parse_rejects_impossible_dates),
        cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_parse_rejects_missing_offset_and_garbage),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
