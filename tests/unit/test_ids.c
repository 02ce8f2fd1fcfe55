/* test_ids.c — time-ordered ids: shape, encoding of the time, ordering, uniqueness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "impactd/ids.h"

#define T_2026 1774598400000LL      /* 2026-03-27T08:00:00Z in ms */
#define CROCKFORD "0123456789abcdefghjkmnpqrstvwxyz"

static int group_setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void test_id_has_prefix_and_26_base32_chars(void **state)
{
    (void)state;
    char id[ID_MAX_LEN];
    id_new("prt_", T_2026, id);
    assert_int_equal(strlen(id), 4 + 26);
    assert_memory_equal(id, "prt_", 4);
    for (const char *p = id + 4; *p; p++)
        if (!strchr(CROCKFORD, *p))
            fail_msg("id %s has '%c', not lower-case Crockford base32", id, *p);
    id_new("allocation_", T_2026, id);
    assert_int_equal(strlen(id), 11 + 26);
    assert_memory_equal(id, "allocation_", 11);
}

static void test_id_first_ten_chars_encode_the_time(void **state)
{
    (void)state;
    /* id_base: the same encoding, without id_new's monotonic clamp */
    char id[ID_MAX_LEN];
    id_base(0, id, 26);
    assert_memory_equal(id, "0000000000", 10);
    id_base(1, id, 26);
    assert_memory_equal(id, "0000000001", 10);
    id_base(32, id, 26);
    assert_memory_equal(id, "0000000010", 10);
    id_base(31, id, 26);
    assert_memory_equal(id, "000000000z", 10);
    id_base((1LL << 48) - 1, id, 26);
    assert_memory_equal(id, "7zzzzzzzzz", 10);
}

static void test_ids_stay_ordered_when_the_clock_steps_back(void **state)
{
    (void)state;
    char a[ID_MAX_LEN], b[ID_MAX_LEN], c[ID_MAX_LEN];
    id_new("x_", 5000000000000LL, a);
    id_new("x_", 5000000000000LL, b);       /* same millisecond */
    id_new("x_", 4000000000000LL, c);       /* the clock went back */
    assert_true(strcmp(a, b) < 0);
    assert_true(strcmp(b, c) < 0);
    assert_memory_equal(a + 2, c + 2, 10);  /* c keeps the last time */
}

static void test_ids_sort_by_creation_time(void **state)
{
    (void)state;
    static const int64_t T[] = { 0, 1, 2, 31, 32, 999, 1000, 1023, 1024, T_2026 - 1, T_2026,
                                 T_2026 + 1, T_2026 + 1000, T_2026 + 86400000LL,
                                 (1LL << 48) - 1 };
    char prev[ID_MAX_LEN], cur[ID_MAX_LEN];
    id_new("prt_", T[0], prev);
    for (size_t i = 1; i < sizeof T / sizeof T[0]; i++) {
        id_new("prt_", T[i], cur);
        if (strcmp(prev, cur) >= 0)
            fail_msg("id at %lld (%s) does not sort after the previous one (%s)",
                     (long long)T[i], cur, prev);
        memcpy(prev, cur, sizeof prev);
    }
}

static void test_ids_at_same_ms_differ(void **state)
{
    (void)state;
    char a[ID_MAX_LEN], b[ID_MAX_LEN];
    for (int i = 0; i < 100; i++) {
        id_new("prt_", T_2026, a);
        id_new("prt_", T_2026, b);
        assert_string_not_equal(a, b);
        assert_memory_equal(a, b, 4 + 10);  /* same prefix and time part */
    }
}

static void test_id_valid(void **state)
{
    (void)state;
    char id[ID_MAX_LEN];
    id_new("prt_", T_2026, id);
    assert_true(id_valid(id, "prt_"));
    assert_false(id_valid(id, "tok_"));
    assert_true(id_valid("prt_abc", "prt_"));
    assert_true(id_valid("prt_0", "prt_"));
    assert_true(id_valid("prt_bootstrap", "prt_"));
    assert_true(id_valid("prt_0123456789abcdefghjkmnpqrstvwxyz", "prt_"));     /* 32 chars */
    assert_false(id_valid("prt_0123456789abcdefghjkmnpqrstvwxyz0", "prt_"));   /* 33 chars */
    assert_false(id_valid("prt_", "prt_"));
    assert_false(id_valid("prt", "prt_"));
    assert_false(id_valid("", "prt_"));
    assert_false(id_valid("prt_ABC", "prt_"));
    assert_false(id_valid("prt_a-b", "prt_"));
    assert_false(id_valid("prt_a_b", "prt_"));
    assert_false(id_valid("prt_a b", "prt_"));
    assert_false(id_valid("prt_a/b", "prt_"));
    assert_false(id_valid("tok_abc", "prt_"));
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_has_prefix_and_26_base32_chars),
        cmocka_unit_test(test_id_first_ten_chars_encode_the_time),
        cmocka_unit_test(test_ids_stay_ordered_when_the_clock_steps_back),
        cmocka_unit_test(test_ids_sort_by_creation_time),
        cmocka_unit_test(test_ids_at_same_ms_differ),
        cmocka_unit_test(test_id_valid),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
