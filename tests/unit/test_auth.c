/* test_auth.c — the token primitives (format, hash, id), webhook secrets, the bearer header
 * parser, the rate-limit token bucket, what a token record may say (its digest, its
 * regions), the cache's generation (a lookup in flight across a revocation caches nothing),
 * the negative cache, and the bounded tables and address keys of throttle.c. No Redis: a
 * struct auth on an event base that never runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "impactd/auth.h"
#include "impactd/config.h"
#include "impactd/throttle.h"

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

/* ---- token records ---- */

static void test_stored_hash_length_is_checked_before_its_bytes(void **state)
{
    (void)state;
    char hex[TOKEN_HASH_HEX];
    assert_int_equal(auth_token_hash("imp_x", hex), 0);
    assert_true(auth_stored_hash_matches(hex, hex));
    char longer[TOKEN_HASH_HEX + 1];
    snprintf(longer, sizeof longer, "%s0", hex);
    assert_false(auth_stored_hash_matches(longer, hex));
    assert_false(auth_stored_hash_matches(NULL, hex));
    /* short values, each in a buffer of exactly its size: ASan sees any read past it */
    const char *shorts[] = { "", "a", "abc", hex + 1 };
    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++) {
        size_t n = strlen(shorts[i]) + 1;
        char *v = malloc(n);
        assert_non_null(v);
        memcpy(v, shorts[i], n);
        assert_false(auth_stored_hash_matches(v, hex));
        free(v);
    }
    char other[TOKEN_HASH_HEX];
    memcpy(other, hex, sizeof other);
    other[10] = other[10] == '0' ? '1' : '0';
    assert_false(auth_stored_hash_matches(other, hex));
}

static void test_regions_absent_or_empty_is_the_whole_country(void **state)
{
    (void)state;
    bool bad = true;
    assert_null(auth_regions_parse(NULL, &bad));
    assert_false(bad);
    assert_null(auth_regions_parse("", &bad));
    assert_false(bad);
    json_t *v = auth_regions_parse("[\"11\",\"24\"]", &bad);
    assert_false(bad);
    assert_true(json_is_array(v));
    assert_int_equal(json_array_size(v), 2);
    json_decref(v);
}

static void test_unreadable_regions_fail_closed(void **state)
{
    (void)state;
    const char *BAD[] = { "not json [", "{\"11\": 1}", "[1, 2]", "\"11\"", "null", "[\"11\", null]",
                          "[\"11\"] trailing" };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        bool bad = false;
        json_t *v = auth_regions_parse(BAD[i], &bad);
        if (!bad || !json_is_array(v) || json_array_size(v) != 0)
            fail_msg("regions %s did not become an empty scope", BAD[i]);
        json_decref(v);
    }
}

/* ---- the cache ---- */

struct fixture {
    struct event_base *base;
    struct config cfg;
    struct auth a;
};

static int cache_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->base = event_base_new();
    config_defaults(&f->cfg);
    f->cfg.auth_cache_ttl_ms = 2000;
    f->cfg.auth_negative_ttl_ms = 3000;
    f->cfg.auth_table_size = 64;
    if (!f->base || auth_init(&f->a, f->base, NULL, &f->cfg) != 0)
        return -1;
    *state = f;
    return 0;
}

static int cache_teardown(void **state)
{
    struct fixture *f = *state;
    auth_free(&f->a);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void record_of(const char *token, char hex[TOKEN_HASH_HEX], char tid[ID_MAX_LEN],
                      struct auth_record *rec)
{
    assert_int_equal(auth_token_hash(token, hex), 0);
    auth_token_id(hex, tid);
    *rec = (struct auth_record){ .hash = hex, .participant = "prt_x", .role = "hospital",
                                 .region = "11", .regions = "" };
}

static void test_verified_token_is_cached_for_the_ttl(void **state)
{
    struct fixture *f = *state;
    char hex[TOKEN_HASH_HEX], tid[ID_MAX_LEN];
    struct auth_record rec;
    struct auth_entry *e;
    record_of("imp_cached", hex, tid, &rec);
    assert_int_equal(auth_remember(&f->a, tid, auth_generation(&f->a), hex, &rec, T0, &e), 1);
    assert_true(auth_cached(&f->a, tid, hex, T0 + US_PER_S));
    assert_false(auth_cached(&f->a, tid, hex, T0 + 3 * US_PER_S));
    auth_forget(&f->a, tid);
    assert_false(auth_cached(&f->a, tid, hex, T0 + US_PER_S));
}

static void test_lookup_in_flight_across_a_revocation_caches_nothing(void **state)
{
    struct fixture *f = *state;
    char hex[TOKEN_HASH_HEX], tid[ID_MAX_LEN];
    struct auth_record rec;
    struct auth_entry *e = NULL;
    record_of("imp_revoked", hex, tid, &rec);
    uint64_t sent = auth_generation(&f->a);     /* HGETALL sent ... */
    auth_forget(&f->a, tid);                    /* ... the token revoked meanwhile ... */
    /* ... and the record read before the revocation arrives */
    assert_int_equal(auth_remember(&f->a, tid, sent, hex, &rec, T0, &e), 0);
    assert_non_null(e);
    auth_entry_free(e);
    assert_false(auth_cached(&f->a, tid, hex, T0));
    /* the next lookup, sent after the revocation, caches again */
    assert_int_equal(auth_remember(&f->a, tid, auth_generation(&f->a), hex, &rec, T0, &e), 1);
    assert_true(auth_cached(&f->a, tid, hex, T0));
}

static void test_unknown_token_is_remembered_for_the_negative_ttl(void **state)
{
    struct fixture *f = *state;
    const char *tid = "tok_000000000000000000000001";
    assert_false(auth_known_unknown(&f->a, tid, T0));
    auth_remember_unknown(&f->a, tid, auth_generation(&f->a), T0);
    assert_true(auth_known_unknown(&f->a, tid, T0 + 2 * US_PER_S));
    assert_false(auth_known_unknown(&f->a, tid, T0 + 3 * US_PER_S));   /* expired */
}

static void test_forget_drops_the_negative_entry_at_once(void **state)
{
    struct fixture *f = *state;
    const char *tid = "tok_000000000000000000000002";
    auth_remember_unknown(&f->a, tid, auth_generation(&f->a), T0);
    auth_forget(&f->a, tid);        /* the token is created by this process */
    assert_false(auth_known_unknown(&f->a, tid, T0));
    /* a "not found" read before the creation is not kept either */
    uint64_t sent = auth_generation(&f->a);
    auth_forget(&f->a, tid);
    auth_remember_unknown(&f->a, tid, sent, T0);
    assert_false(auth_known_unknown(&f->a, tid, T0));
}

static void test_negative_cache_is_bounded(void **state)
{
    struct fixture *f = *state;
    char tid[ID_MAX_LEN];
    for (int i = 0; i < 10000; i++) {
        snprintf(tid, sizeof tid, "tok_%024d", i);
        auth_remember_unknown(&f->a, tid, auth_generation(&f->a), T0 + i);
    }
    int kept = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(tid, sizeof tid, "tok_%024d", i);
        kept += auth_known_unknown(&f->a, tid, T0 + 10000);
    }
    assert_true(kept > 0);
    assert_true(kept <= 64);        /* auth_table_size, whatever a client sends */
    snprintf(tid, sizeof tid, "tok_%024d", 9999);
    assert_true(auth_known_unknown(&f->a, tid, T0 + 10000));   /* the newest stays */
}

/* ---- throttle.c ---- */

static void test_throttle_bucket_burst_then_rate(void **state)
{
    (void)state;
    struct throttle t;
    assert_int_equal(throttle_init(&t, 16), 0);
    struct throttle_slot *s = throttle_take(&t, "k", 1, T0);
    assert_non_null(s);
    for (int i = 0; i < 10; i++)
        assert_int_equal(throttle_bucket_take(s, 2, 10, T0), 0);
    assert_int_equal(throttle_bucket_take(s, 2, 10, T0), 1);     /* 0.5 s to the next */
    assert_int_equal(throttle_bucket_take(s, 2, 10, T0 + US_PER_S / 2), 0);
    throttle_bucket_give(s, 10);
    assert_int_equal(throttle_bucket_take(s, 2, 10, T0 + US_PER_S / 2), 0);
    assert_true(throttle_bucket_take(s, 0.1, 10, T0 + US_PER_S / 2) >= 10);
    throttle_free(&t);
}

static void test_throttle_table_keeps_the_recently_used(void **state)
{
    (void)state;
    struct throttle t;
    assert_int_equal(throttle_init(&t, 8), 0);     /* one set of 8 */
    for (int i = 0; i < 8; i++)
        assert_non_null(throttle_take(&t, &i, sizeof i, T0 + i));
    int zero = 0;
    assert_non_null(throttle_find(&t, &zero, sizeof zero, T0 + 100));  /* 0 used again */
    int nine = 9;
    assert_non_null(throttle_take(&t, &nine, sizeof nine, T0 + 101));
    int one = 1;
    assert_null(throttle_find(&t, &one, sizeof one, T0 + 102));        /* the oldest went */
    assert_non_null(throttle_find(&t, &zero, sizeof zero, T0 + 102));
    throttle_drop(&t, &zero, sizeof zero);
    assert_null(throttle_find(&t, &zero, sizeof zero, T0 + 103));
    throttle_free(&t);
}

static void test_throttle_address_keys(void **state)
{
    (void)state;
    unsigned char k1[THROTTLE_KEY_MAX], k2[THROTTLE_KEY_MAX];
    struct sockaddr_in v4 = { .sin_family = AF_INET };
    inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
    struct sockaddr_in6 mapped = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &mapped.sin6_addr);
    size_t n1 = throttle_addr_key((struct sockaddr *)&v4, k1);
    size_t n2 = throttle_addr_key((struct sockaddr *)&mapped, k2);
    assert_int_equal(n1, 5);
    assert_true(n1 == n2 && memcmp(k1, k2, n1) == 0);  /* one client, two spellings */
    struct sockaddr_in6 a = { .sin6_family = AF_INET6 }, b = a, c = a;
    inet_pton(AF_INET6, "2001:db8:1:2::1", &a.sin6_addr);
    inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &b.sin6_addr);
    inet_pton(AF_INET6, "2001:db8:1:3::1", &c.sin6_addr);
    n1 = throttle_addr_key((struct sockaddr *)&a, k1);
    n2 = throttle_addr_key((struct sockaddr *)&b, k2);
    assert_true(n1 == 9 && n1 == n2 && memcmp(k1, k2, n1) == 0);     /* the same /64 */
    n2 = throttle_addr_key((struct sockaddr *)&c, k2);
    assert_false(n1 == n2 && memcmp(k1, k2, n1) == 0);
    struct sockaddr un = { .sa_family = AF_UNIX };
    assert_int_equal(throttle_addr_key(&un, k1), 0);
    assert_int_equal(throttle_addr_key(NULL, k1), 0);
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
        cmocka_unit_test(test_stored_hash_length_is_checked_before_its_bytes),
        cmocka_unit_test(test_regions_absent_or_empty_is_the_whole_country),
        cmocka_unit_test(test_unreadable_regions_fail_closed),
        cmocka_unit_test_setup_teardown(test_verified_token_is_cached_for_the_ttl, cache_setup,
                                        cache_teardown),
        cmocka_unit_test_setup_teardown(test_lookup_in_flight_across_a_revocation_caches_nothing,
                                        cache_setup, cache_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_token_is_remembered_for_the_negative_ttl,
                                        cache_setup, cache_teardown),
        cmocka_unit_test_setup_teardown(test_forget_drops_the_negative_entry_at_once,
                                        cache_setup, cache_teardown),
        cmocka_unit_test_setup_teardown(test_negative_cache_is_bounded, cache_setup,
                                        cache_teardown),
        cmocka_unit_test(test_throttle_bucket_burst_then_rate),
        cmocka_unit_test(test_throttle_table_keeps_the_recently_used),
        cmocka_unit_test(test_throttle_address_keys),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
