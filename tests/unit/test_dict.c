/* test_dict.c — the string-keyed hash table: set/get/replace/del, growth, sweep, free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "impactd/dict.h"

#define MANY 5000

static int dict_setup(void **state)
{
    static struct dict d;
    if (dict_init(&d) != 0)
        return -1;
    *state = &d;
    return 0;
}

static int dict_teardown(void **state)
{
    dict_free(*state, NULL);
    return 0;
}

static void test_set_then_get(void **state)
{
    struct dict *d = *state;
    int a = 1, b = 2;
    assert_int_equal(dict_set(d, "alpha", &a), 0);
    assert_int_equal(dict_set(d, "beta", &b), 0);
    assert_int_equal(d->count, 2);
    assert_ptr_equal(dict_get(d, "alpha"), &a);
    assert_ptr_equal(dict_get(d, "beta"), &b);
    assert_null(dict_get(d, "gamma"));
    assert_null(dict_get(d, "alph"));
    assert_null(dict_get(d, ""));
}

static void test_set_copies_the_key(void **state)
{
    struct dict *d = *state;
    int a = 1;
    char key[16];
    snprintf(key, sizeof key, "tok_%d", 42);
    assert_int_equal(dict_set(d, key, &a), 0);
    memset(key, 'z', sizeof key - 1);
    assert_ptr_equal(dict_get(d, "tok_42"), &a);
}

static void test_set_existing_key_replaces(void **state)
{
    struct dict *d = *state;
    int a = 1, b = 2;
    assert_int_equal(dict_set(d, "k", &a), 0);
    assert_int_equal(dict_set(d, "k", &b), 0);
    assert_int_equal(d->count, 1);
    assert_ptr_equal(dict_get(d, "k"), &b);
}

static void test_del_returns_value_and_removes(void **state)
{
    struct dict *d = *state;
    int a = 1, b = 2;
    assert_int_equal(dict_set(d, "a", &a), 0);
    assert_int_equal(dict_set(d, "b", &b), 0);
    assert_ptr_equal(dict_del(d, "a"), &a);
    assert_int_equal(d->count, 1);
    assert_null(dict_get(d, "a"));
    assert_ptr_equal(dict_get(d, "b"), &b);
    assert_null(dict_del(d, "a"));
    assert_null(dict_del(d, "never"));
    assert_int_equal(d->count, 1);
    /* a deleted key can come back */
    assert_int_equal(dict_set(d, "a", &b), 0);
    assert_ptr_equal(dict_get(d, "a"), &b);
    assert_int_equal(d->count, 2);
}

static void test_growth_keeps_every_value(void **state)
{
    struct dict *d = *state;
    static int values[MANY];
    char key[32];
    size_t before = d->nbuckets;
    for (int i = 0; i < MANY; i++) {
        values[i] = i;
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(dict_set(d, key, &values[i]), 0);
    }
    assert_int_equal(d->count, MANY);
    assert_true(d->nbuckets > before);
    assert_true(d->nbuckets >= MANY);       /* load kept at or below 1 */
    assert_int_equal(d->nbuckets & (d->nbuckets - 1), 0);
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        int *v = dict_get(d, key);
        if (!v || *v != i)
            fail_msg("%s lost after growth", key);
    }
}

static int drop_even(const char *key, void *value, void *arg)
{
    (void)key;
    int *calls = arg;
    (*calls)++;
    return *(int *)value % 2 == 0;
}

static void test_sweep_deletes_half(void **state)
{
    struct dict *d = *state;
    static int values[MANY];
    char key[32];
    for (int i = 0; i < MANY; i++) {
        values[i] = i;
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(dict_set(d, key, &values[i]), 0);
    }
    int calls = 0;
    dict_sweep(d, drop_even, &calls);
    assert_int_equal(calls, MANY);
    assert_int_equal(d->count, MANY / 2);
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        int *v = dict_get(d, key);
        if (i % 2 == 0 && v)
            fail_msg("%s survived the sweep", key);
        if (i % 2 == 1 && (!v || *v != i))
            fail_msg("%s lost in the sweep", key);
    }
    calls = 0;
    dict_sweep(d, drop_even, &calls);
    assert_int_equal(calls, MANY / 2);
    assert_int_equal(d->count, MANY / 2);
}

static int destroyed;
static void count_destroy(void *value)
{
    (void)value;
    destroyed++;
}

static void test_free_calls_destroy_once_per_entry(void **state)
{
    (void)state;
    struct dict d;
    int v = 0;
    char key[32];
    assert_int_equal(dict_init(&d), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(dict_set(&d, key, &v), 0);
    }
    destroyed = 0;
    dict_free(&d, count_destroy);
    assert_int_equal(destroyed, 100);
    assert_null(d.buckets);
    assert_int_equal(d.count, 0);
    dict_free(&d, count_destroy);           /* a second free is harmless */
    assert_int_equal(destroyed, 100);
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set_then_get, dict_setup, dict_teardown),
        cmocka_unit_test_setup_teardown(test_set_copies_the_key, dict_setup, dict_teardown),
        cmocka_unit_test_setup_teardown(test_set_existing_key_replaces, dict_setup,
                                        dict_teardown),
        cmocka_unit_test_setup_teardown(test_del_returns_value_and_removes, dict_setup,
                                        dict_teardown),
        cmocka_unit_test_setup_teardown(test_growth_keeps_every_value, dict_setup,
                                        dict_teardown),
        cmocka_unit_test_setup_teardown(test_sweep_deletes_half, dict_setup, dict_teardown),
        cmocka_unit_test(test_free_calls_destroy_once_per_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
