/* test_store.c — commands are RESP text built without an allocation per argument. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "impactd/store.h"

static void assert_args(const struct cmd *c, const char *resp)
{
    size_t n = strlen(resp);
    assert_int_equal(c->len - CMD_HEAD_ROOM, n);
    assert_memory_equal(c->buf + CMD_HEAD_ROOM, resp, n);
}

static void test_arguments_are_bulk_strings(void **state)
{
    (void)state;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGET");
    cmd_addn(&c, "a\0b", 3);
    cmd_addll(&c, -42);
    cmd_addf(&c, "%s|%d", "x", 7);
    cmd_key(&c, "impact:", "m:{%s}:rec", "gel");
    cmd_add(&c, "");
    assert_int_equal(c.argc, 6);
    assert_false(c.failed);
    static const char want[] = "$4\r\nHGET\r\n$3\r\na\0b\r\n$3\r\n-42\r\n$3\r\nx|7\r\n"
                               "$18\r\nimpact:m:{gel}:rec\r\n$0\r\n\r\n";
    assert_int_equal(c.len - CMD_HEAD_ROOM, sizeof want - 1);
    assert_memory_equal(c.buf + CMD_HEAD_ROOM, want, sizeof want - 1);
    cmd_free(&c);
    assert_null(c.buf);
    assert_int_equal(c.argc, 0);
}

static void test_long_and_many_arguments_grow_the_buffer(void **state)
{
    (void)state;
    struct cmd c;
    cmd_init(&c);
    char big[5000];
    memset(big, 'z', sizeof big);
    for (int i = 0; i < 300; i++)      /* more than the old 128-argument limit */
        cmd_addll(&c, i);
    cmd_addn(&c, big, sizeof big);
    cmd_addf(&c, "%s", "formatted beyond the small buffer: "
                       "0123456789012345678901234567890123456789012345678901234567890123456789"
                       "0123456789012345678901234567890123456789012345678901234567890123456789"
                       "0123456789012345678901234567890123456789012345678901234567890123456789"
                       "0123456789012345678901234567890123456789");
    assert_false(c.failed);
    assert_int_equal(c.argc, 302);
    assert_non_null(memmem(c.buf, c.len, "$5000\r\nzzz", 10));
    assert_non_null(memmem(c.buf, c.len, "$3\r\n299\r\n", 9));
    cmd_free(&c);
}

static void test_empty_command_has_no_buffer(void **state)
{
    (void)state;
    struct cmd c;
    cmd_init(&c);
    assert_null(c.buf);
    assert_args(&(struct cmd){ .buf = (char[CMD_HEAD_ROOM]){ 0 }, .len = CMD_HEAD_ROOM }, "");
    cmd_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments_are_bulk_strings),
        cmocka_unit_test(test_long_and_many_arguments_grow_the_buffer),
        cmocka_unit_test(test_empty_command_has_no_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
