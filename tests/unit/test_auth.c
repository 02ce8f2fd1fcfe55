/* test_auth.c — the token primitives (format, hash, id), webhook secrets, the bearer header
 * parser and the rate-limit token bucket. No server or Redis: the cache is tested through
 * the integration suite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "impactd/auth.h"

#define US_PER_S 1000000LL
#define T0 (1000 * US_PER_S)    /* an arbitrary monotonic start, not 0 */

static int group_setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static bool is_base64url(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* ---- tokens ---- */

static void test_token_new_is_prefix_and_43_base64url_chars(void **state)
{
    (void)state;
    char t[TOKEN_LEN];
    auth_token_new(t);
    assert_int_equal(strlen(t), 4 + 43);
    assert_memory_equal(t, "imp_", 4);
    for (const char *p = t + 4; *p; p++)
        if (!is_base64url(*p))
            fail_msg("token %s has '%c', not base64url", t, *p);
    /* 43 characters decode to the 32 random bytes */
    unsigned char raw[64];
    size_t len = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof raw, t + 4, 43, NULL, &len, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
    assert_int_equal(len, 32);
}

static void test_token_new_twice_differs(void **state)
{
    (void)state;
    char a[TOKEN_LEN], b[TOKEN_LEN];
    auth_token_new(a);
    auth_token_new(b);
    assert_string_not_equal(a, b);
}

static void test_token_wellformed_accepts_new_tokens(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++) {
        char t[TOKEN_LEN];
        auth_token_new(t);
        if (!auth_token_wellformed(t))
            fail_msg("fresh token %s not wellformed", t);
    }
    assert_true(auth_token_wellformed("imp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-"));
    assert_true(auth_token_wellformed("imp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL_0123"));
}

static void test_token_wellformed_rejects_bad_tokens(void **state)
{
    (void)state;
    static const char *const BAD[] = {
        "",
        "imp_",
        "tok_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL_0123",   /* wrong prefix */
        "IMP_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL_0123",   /* prefix is case-sensitive */
        "impabcdefghijklmnopqrstuvwxyzABCDEFGHIJKL_0123x",   /* no underscore */
        "imp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL_012",    /* 42 characters */
        "imp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL_01234",  /* 44 characters */
        "imp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL+0123",   /* standard base64 '+' */
        "imp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL/0123",   /* standard base64 '/' */
        "imp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL_012=",   /* padding */
        "imp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL 0123",   /* space */
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        if (auth_token_wellformed(BAD[i]))
            fail_msg("\"%s\" accepted as a token", BAD[i]);
}

static void test_token_hash_is_blake2b_256_hex(void **state)
{
    (void)state;
    char hex[TOKEN_HASH_HEX];
    /* the BLAKE2b-256 test vector for "abc" */
    assert_int_equal(auth_token_hash("abc", hex), 0);
    assert_string_equal(hex, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");

    char t[TOKEN_LEN];
    auth_token_new(t);
    assert_int_equal(auth_token_hash(t, hex), 0);
    unsigned char d[32];
    char want[65];
    assert_int_equal(crypto_generichash(d, sizeof d, (const unsigned char *)t, strlen(t), NULL, 0),
                     0);
    sodium_bin2hex(want, sizeof want, d, sizeof d);
    assert_string_equal(hex, want);
}

static void test_token_hash_deterministic_64_hex(void **state)
{
    (void)state;
    char t[TOKEN_LEN], h1[TOKEN_HASH_HEX], h2[TOKEN_HASH_HEX];
    auth_token_new(t);
    assert_int_equal(auth_token_hash(t, h1), 0);
    assert_int_equal(auth_token_hash(t, h2), 0);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 64);
    for (const char *p = h1; *p; p++)
        assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
}

static void test_token_hash_differs_for_different_tokens(void **state)
{
    (void)state;
    char a[TOKEN_LEN], b[TOKEN_LEN], ha[TOKEN_HASH_HEX], hb[TOKEN_HASH_HEX];
    auth_token_new(a);
    memcpy(b, a, sizeof b);
    b[10] = b[10] == 'A' ? 'B' : 'A';   /* one character apart */
    assert_int_equal(auth_token_hash(a, ha), 0);
    assert_int_equal(auth_token_hash(b, hb), 0);
    assert_string_not_equal(ha, hb);
}

static void test_token_id_is_tok_and_24_hex_of_hash(void **state)
{
    (void)state;
    char hex[TOKEN_HASH_HEX], id[ID_MAX_LEN];
    assert_int_equal(auth_token_hash("abc", hex), 0);
    auth_token_id(hex, id);
    assert_string_equal(id, "tok_bddd813c634239723171ef3f");

    char t[TOKEN_LEN];
    auth_token_new(t);
    assert_int_equal(auth_token_hash(t, hex), 0);
    auth_token_id(hex, id);
    assert_int_equal(strlen(id), 4 + 24);
    assert_memory_equal(id, "tok_", 4);
    assert_memory_equal(id + 4, hex, 24);
}

/* ---- webhook secrets ---- */

static void test_webhook_secret_is_whsec_and_32_bytes_base64(void **state)
{
    (void)state;
    char s[WEBHOOK_SECRET_LEN], s2[WEBHOOK_SECRET_LEN];
    auth_webhook_secret_new(s);
    assert_memory_equal(s, "whsec_", 6);
    assert_int_equal(strlen(s), 6 + 44);
    unsigned char raw[64];
    size_t len = 0;
    const char *end = NULL;
    assert_int_equal(sodium_base642bin(raw, sizeof raw, s + 6, strlen(s + 6), NULL, &len, &end,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    assert_int_equal(len, 32);
    assert_int_equal(*end, '\0');
    auth_webhook_secret_new(s2);
    assert_string_not_equal(s, s2);
}

/* ---- Authorization header ---- */

static void test_bearer_parses_scheme_case_insensitively(void **state)
{
    (void)state;
    const char *t = auth_bearer("Bearer x");
    assert_non_null(t);
    assert_string_equal(t, "x");
    t = auth_bearer("bearer x");
    assert_non_null(t);
    assert_string_equal(t, "x");
    t = auth_bearer("BEARER imp_abc");
    assert_non_null(t);
    assert_string_equal(t, "imp_abc");
}

static void test_bearer_rejects_malformed(void **state)
{
    (void)state;
    static const char *const BAD[] = { "Basic x", "Bearer", "Bearer ", "Bearer a b", "Bearerx",
                                       "", "x" };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        if (auth_bearer(BAD[i]))
            fail_msg("\"%s\" gave a token", BAD[i]);
    assert_null(auth_bearer(NULL));
}

/* ---- token bucket ---- */

static void test_bucket_allows_burst_of_rate_then_refuses(void **state)
{
    (void)state;
    struct bucket b = { 0, 0 };
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_bucket_take(&b, 5, T0), 0);
    int wait = auth_bucket_take(&b, 5, T0);
    assert_true(wait >= 1);
    assert_int_equal(wait, 1);      /* the next token is 0.2 s away */
    assert_true(auth_bucket_take(&b, 5, T0) >= 1);
}

static void test_bucket_refills_after_one_second(void **state)
{
    (void)state;
    struct bucket b = { 0, 0 };
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_bucket_take(&b, 5, T0), 0);
    assert_true(auth_bucket_take(&b, 5, T0) >= 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_bucket_take(&b, 5, T0 + US_PER_S), 0);
    assert_true(auth_bucket_take(&b, 5, T0 + US_PER_S) >= 1);
}

static void test_bucket_refills_in_proportion(void **state)
{
    (void)state;
    struct bucket b = { 0, 0 };
    for (int i = 0; i < 10; i++)
        assert_int_equal(auth_bucket_take(&b, 10, T0), 0);
    /* half a second at 10/s is 5 tokens */
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_bucket_take(&b, 10, T0 + US_PER_S / 2), 0);
    assert_true(auth_bucket_take(&b, 10, T0 + US_PER_S / 2) >= 1);
}

static void test_bucket_burst_is_capped_at_rate(void **state)
{
    (void)state;
    struct bucket b = { 0, 0 };
    assert_int_equal(auth_bucket_take(&b, 5, T0), 0);
    /* an hour idle still allows only a burst of 5 */
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_bucket_take(&b, 5, T0 + 3600 * US_PER_S), 0);
    assert_true(auth_bucket_take(&b, 5, T0 + 3600 * US_PER_S) >= 1);
}

static void test_bucket_wait_is_time_to_next_token_rounded_up(void **state)
{
    (void)state;
    /* rate 1: the bucket is empty right after a take, and refills one token in 1 s: a client
     * told to come back after 1 s (Retry-After: 1) is then admitted. */
    struct bucket b = { 0, 0 };
    assert_int_equal(auth_bucket_take(&b, 1, T0), 0);
    int wait = auth_bucket_take(&b, 1, T0);
    assert_int_equal(wait, 1);
    assert_int_equal(auth_bucket_take(&b, 1, T0 + (int64_t)wait * US_PER_S), 0);
}

static void test_bucket_rate_zero_always_allows(void **state)
{
    (void)state;
    struct bucket b = { 0, 0 };
    for (int i = 0; i < 10000; i++)
        assert_int_equal(auth_bucket_take(&b, 0, T0), 0);
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_new_is_prefix_and_43_base64url_chars),
        cmocka_unit_test(test_token_new_twice_differs),
        cmocka_unit_test(test_token_wellformed_accepts_new_tokens),
        cmocka_unit_test(test_token_wellformed_rejects_bad_tokens),
        cmocka_unit_test(test_token_hash_is_blake2b_256_hex),
        cmocka_unit_test(test_token_hash_deterministic_64_hex),
        cmocka_unit_test(test_token_hash_differs_for_different_tokens),
        cmocka_unit_test(test_token_id_is_tok_and_24_hex_of_hash),
        cmocka_unit_test(test_webhook_secret_is_whsec_and_32_bytes_base64),
        cmocka_unit_test(test_bearer_parses_scheme_case_insensitively),
        cmocka_unit_test(test_bearer_rejects_malformed),
        cmocka_unit_test(test_bucket_allows_burst_of_rate_then_refuses),
        cmocka_unit_test(test_bucket_refills_after_one_second),
        cmocka_unit_test(test_bucket_refills_in_proportion),
        cmocka_unit_test(test_bucket_burst_is_capped_at_rate),
        cmocka_unit_test(test_bucket_wait_is_time_to_next_token_rounded_up),
        cmocka_unit_test(test_bucket_rate_zero_always_allows),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
