/* test_page.c — merging ordered parts into one page and cutting it at the earliest stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "impactd/page.h"

static void add(struct page *p, const char *key)
{
    assert_int_equal(page_add(p, key, key, json_string(key)), 0);
}

static const char *at(json_t *items, size_t i)
{
    return json_string_value(json_array_get(items, i));
}

static void test_parts_merge_in_key_order(void **state)
{
    (void)state;
    struct page p;
    page_init(&p);
    add(&p, "c");
    add(&p, "a");
    add(&p, "b");
    assert_int_equal(page_settle(&p), 3);
    char next[PAGE_KEY_LEN];
    json_t *items = page_take(&p, 10, next);
    assert_int_equal(json_array_size(items), 3);
    assert_string_equal(at(items, 0), "a");
    assert_string_equal(at(items, 2), "c");
    assert_string_equal(next, "");      /* the end */
    json_decref(items);
    page_free(&p);
}

static void test_limit_cuts_and_names_the_last_taken(void **state)
{
    (void)state;
    struct page p;
    page_init(&p);
    for (const char *k = "abcdef"; *k; k++) {
        char key[2] = { *k, 0 };
        add(&p, key);
    }
    page_settle(&p);
    char next[PAGE_KEY_LEN];
    json_t *items = page_take(&p, 4, next);
    assert_int_equal(json_array_size(items), 4);
    assert_string_equal(next, "d");
    json_decref(items);
    page_free(&p);
}

/* A part that stopped at "c" knows nothing beyond it: "d" from another part may not be on
 * this page, since the stopped part could still hold a "c1". */
static void test_the_earliest_stop_bounds_the_page(void **state)
{
    (void)state;
    struct page p;
    page_init(&p);
    add(&p, "a");
    add(&p, "d");
    add(&p, "b");
    page_bound(&p, "e", "cursor-e");
    page_bound(&p, "c", "cursor-c");
    page_bound(&p, "f", "cursor-f");     /* a later stop does not move the bound */
    assert_int_equal(page_settle(&p), 2);
    char next[PAGE_KEY_LEN];
    json_t *items = page_take(&p, 10, next);
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(at(items, 1), "b");
    assert_string_equal(next, "cursor-c");   /* resume from the bound */
    json_decref(items);
    page_free(&p);
}

static void test_full_page_before_the_bound_resumes_after_its_last(void **state)
{
    (void)state;
    struct page p;
    page_init(&p);
    add(&p, "a");
    add(&p, "b");
    add(&p, "c");
    page_bound(&p, "z", "cursor-z");
    page_settle(&p);
    char next[PAGE_KEY_LEN];
    json_t *items = page_take(&p, 2, next);
    assert_string_equal(next, "b");
    json_decref(items);
    page_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_merge_in_key_order),
        cmocka_unit_test(test_limit_cuts_and_names_the_last_taken),
        cmocka_unit_test(test_the_earliest_stop_bounds_the_page),
        cmocka_unit_test(test_full_page_before_the_bound_resumes_after_its_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
