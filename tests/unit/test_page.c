/* test_page.c — merging ordered parts into one page and cutting it at the earliest stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "impactd/page.h"

static void add(struct page *p, const char *key)
{
    char json[32];
    int n = snprintf(json, sizeof json, "\"%s\"", key);
    assert_int_equal(page_add(p, key, key, json, (size_t)n), 0);
}

static void assert_body(struct page *p, size_t limit, const char *want)
{
    struct buf out;
    buf_init(&out);
    page_body(p, limit, &out);
    assert_false(out.failed);
    assert_string_equal(out.data, want);
    buf_free(&out);
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
    assert_body(&p, 10, "{\"items\":[\"a\",\"b\",\"c\"],\"next_cursor\":null}");
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
    assert_body(&p, 4, "{\"items\":[\"a\",\"b\",\"c\",\"d\"],\"next_cursor\":\"d\"}");
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
    assert_body(&p, 10, "{\"items\":[\"a\",\"b\"],\"next_cursor\":\"cursor-c\"}");
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
    assert_body(&p, 2, "{\"items\":[\"a\",\"b\"],\"next_cursor\":\"b\"}");
    page_free(&p);
}

static void test_empty_page(void **state)
{
    (void)state;
    struct page p;
    page_init(&p);
    assert_int_equal(page_settle(&p), 0);
    assert_body(&p, 50, "{\"items\":[],\"next_cursor\":null}");
    page_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_merge_in_key_order),
        cmocka_unit_test(test_limit_cuts_and_names_the_last_taken),
        cmocka_unit_test(test_the_earliest_stop_bounds_the_page),
        cmocka_unit_test(test_full_page_before_the_bound_resumes_after_its_last),
        cmocka_unit_test(test_empty_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
