/* test_signing.c — the v1 / v1a signatures against Standard Webhooks' known answers, the
 * whsk_/whpk_ forms, the kid, and the key file: creation, permissions, reload, rotation and
 * refusal of damaged files. Each key-file test works in its own temp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "impactd/signing.h"

/* Standard Webhooks' (Svix's) server test vectors. */
#define MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define MSG_TS 1614265330
#define MSG_BODY "{\"test\": 2432232314}"
#define WHSEC "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define V1_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define WHSK_B64_NOPAD \
    "6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg"
#define WHSK "whsk_" WHSK_B64_NOPAD "=="
#define WHPK "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4="
#define V1A_SIG \
    "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="

static int group_setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

/* snprintf that fails the test rather than cut a path or a line */
static void fmt(char *out, size_t outlen, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t outlen, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, outlen, f, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < outlen);
}

/* ---- temp directory fixture ---- */

struct tmp {
    char dir[PATH_MAX];
    char key[PATH_MAX];         /* <dir>/keys/signing.key: its parent does not exist yet */
};

static int tmp_setup(void **state)
{
    struct tmp *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    const char *base = getenv("TMPDIR");
    fmt(t->dir, sizeof t->dir, "%s/test_signing.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    fmt(t->key, sizeof t->key, "%s/keys/signing.key", t->dir);
    *state = t;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int tmp_teardown(void **state)
{
    struct tmp *t = *state;
    int rc = nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return rc;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static void make_key_dir(const struct tmp *t)
{
    char d[PATH_MAX];
    fmt(d, sizeof d, "%s/keys", t->dir);
    assert_int_equal(mkdir(d, 0700), 0);
}

/* A key line as the file stores it. */
static void key_line(const struct signing_key *k, const char *kid, char *out, size_t outlen)
{
    char b64[89];
    sodium_bin2base64(b64, sizeof b64, k->sk, sizeof k->sk, sodium_base64_VARIANT_ORIGINAL);
    fmt(out, outlen, "%s %" PRId64 " %s\n", kid, k->created_at, b64);
}

static struct signing_key whsk_key(void)
{
    struct signing_key k;
    assert_int_equal(signing_key_from_whsk(WHSK, &k), 0);
    return k;
}

static void assert_refused(const char *path, const char *expect_in_err)
{
    struct signing s;
    memset(&s, 0, sizeof s);
    char err[512] = "";
    assert_int_equal(signing_load(&s, path, err, sizeof err), -1);
    if (!strstr(err, path))
        fail_msg("error \"%s\" does not name %s", err, path);
    if (expect_in_err && !strstr(err, expect_in_err))
        fail_msg("error \"%s\" does not say \"%s\"", err, expect_in_err);
    assert_int_equal(s.nkeys, 0);
}

/* ---- signatures: known answers ---- */

static void test_v1_known_answer(void **state)
{
    (void)state;
    char sig[SIGNING_SIG_LEN];
    assert_int_equal(signing_v1(WHSEC, MSG_ID, MSG_TS, MSG_BODY, strlen(MSG_BODY), sig,
                                sizeof sig), 0);
    assert_string_equal(sig, V1_SIG);
}

static void test_v1a_known_answer(void **state)
{
    (void)state;
    struct signing_key k = whsk_key();
    char sig[SIGNING_SIG_LEN];
    assert_int_equal(signing_v1a(&k, MSG_ID, MSG_TS, MSG_BODY, strlen(MSG_BODY), sig,
                                 sizeof sig), 0);
    assert_string_equal(sig, V1A_SIG);
}

static void test_whpk_of_whsk_key(void **state)
{
    (void)state;
    struct signing_key k = whsk_key();
    char whpk[SIGNING_WHPK_LEN];
    signing_whpk(&k, whpk, sizeof whpk);
    assert_string_equal(whpk, WHPK);
    char kid[KID_LEN];
    signing_kid(k.pk, kid);
    assert_string_equal(k.kid, kid);
    assert_int_equal(k.created_at, 0);
    /* too small a buffer gives "", never a cut key */
    char small[SIGNING_WHPK_LEN - 1];
    signing_whpk(&k, small, sizeof small);
    assert_string_equal(small, "");
}

static void test_v1a_verifies_with_public_key(void **state)
{
    (void)state;
    struct signing_key k = whsk_key();
    char sig[SIGNING_SIG_LEN];
    assert_int_equal(signing_v1a(&k, MSG_ID, MSG_TS, MSG_BODY, strlen(MSG_BODY), sig,
                                 sizeof sig), 0);
    assert_memory_equal(sig, "v1a,", 4);
    unsigned char raw[crypto_sign_BYTES];
    size_t n = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof raw, sig + 4, strlen(sig + 4), NULL, &n, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    assert_int_equal(n, crypto_sign_BYTES);
    const char *content = MSG_ID "." "1614265330" "." MSG_BODY;
    assert_int_equal(crypto_sign_verify_detached(raw, (const unsigned char *)content,
                                                 strlen(content), k.pk), 0);
}

static void test_changed_body_byte_changes_signatures(void **state)
{
    (void)state;
    struct signing_key k = whsk_key();
    char body[] = MSG_BODY;
    body[10] ^= 1;
    char v1[SIGNING_SIG_LEN], v1a[SIGNING_SIG_LEN];
    assert_int_equal(signing_v1(WHSEC, MSG_ID, MSG_TS, body, strlen(body), v1, sizeof v1), 0);
    assert_int_equal(signing_v1a(&k, MSG_ID, MSG_TS, body, strlen(body), v1a, sizeof v1a), 0);
    assert_string_not_equal(v1, V1_SIG);
    assert_string_not_equal(v1a, V1A_SIG);
    /* the original signature does not verify the changed content */
    unsigned char raw[crypto_sign_BYTES];
    size_t n = 0;
    const char *orig = &V1A_SIG[4];
    assert_int_equal(sodium_base642bin(raw, sizeof raw, orig, strlen(orig), NULL, &n, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    char content[128];
    fmt(content, sizeof content, "%s.%d.%s", MSG_ID, MSG_TS, body);
    assert_int_not_equal(crypto_sign_verify_detached(raw, (const unsigned char *)content,
                                                     strlen(content), k.pk), 0);
    /* the timestamp and the id are signed too */
    assert_int_equal(signing_v1(WHSEC, MSG_ID, MSG_TS + 1, MSG_BODY, strlen(MSG_BODY), v1,
                                sizeof v1), 0);
    assert_string_not_equal(v1, V1_SIG);
    assert_int_equal(signing_v1a(&k, "msg_other", MSG_TS, MSG_BODY, strlen(MSG_BODY), v1a,
                                 sizeof v1a), 0);
    assert_string_not_equal(v1a, V1A_SIG);
}

static void test_empty_body_signs(void **state)
{
    (void)state;
    struct signing_key k = whsk_key();
    char v1[SIGNING_SIG_LEN], v1a[SIGNING_SIG_LEN];
    assert_int_equal(signing_v1(WHSEC, MSG_ID, MSG_TS, NULL, 0, v1, sizeof v1), 0);
    assert_int_equal(signing_v1a(&k, MSG_ID, MSG_TS, NULL, 0, v1a, sizeof v1a), 0);
    assert_int_equal(strlen(v1), 3 + 44);
    assert_int_equal(strlen(v1a), 4 + 88);
}

static void test_long_hmac_key_is_accepted(void **state)
{
    (void)state;
    /* 100 bytes: longer than the SHA-256 block, hashed by HMAC first */
    unsigned char raw[100];
    memset(raw, 0x5a, sizeof raw);
    char secret[6 + 140] = "whsec_";
    sodium_bin2base64(secret + 6, sizeof secret - 6, raw, sizeof raw,
                      sodium_base64_VARIANT_ORIGINAL);
    char sig[SIGNING_SIG_LEN];
    assert_int_equal(signing_v1(secret, MSG_ID, MSG_TS, MSG_BODY, strlen(MSG_BODY), sig,
                                sizeof sig), 0);
    unsigned char key_hash[crypto_hash_sha256_BYTES], mac[crypto_auth_hmacsha256_BYTES];
    crypto_hash_sha256(key_hash, raw, sizeof raw);
    const char *content = MSG_ID "." "1614265330" "." MSG_BODY;
    /* RFC 2104: a long key is replaced by its hash; a 32-byte key is used as is */
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key_hash, sizeof key_hash);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)content, strlen(content));
    crypto_auth_hmacsha256_final(&st, mac);
    char expect[SIGNING_SIG_LEN] = "v1,";
    sodium_bin2base64(expect + 3, sizeof expect - 3, mac, sizeof mac,
                      sodium_base64_VARIANT_ORIGINAL);
    assert_string_equal(sig, expect);
}

static void test_bad_secrets_rejected(void **state)
{
    (void)state;
    static const char *const BAD[] = {
        "",
        "whsec_",                                       /* empty key */
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",             /* no prefix */
        "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",        /* wrong prefix */
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",        /* not a whole base64 quantum */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w",       /* not base64 */
        "whsec_MfKQ9r8GKYqrTwjUPD8I LPZIo2LaLaSw",      /* space */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
    };
    char sig[SIGNING_SIG_LEN];
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        if (signing_v1(BAD[i], MSG_ID, MSG_TS, MSG_BODY, strlen(MSG_BODY), sig, sizeof sig) != -1)
            fail_msg("secret \"%s\" accepted", BAD[i]);
    /* a buffer too small is refused, not overrun */
    char small[3 + 44];
    assert_int_equal(signing_v1(WHSEC, MSG_ID, MSG_TS, MSG_BODY, strlen(MSG_BODY), small,
                                sizeof small), -1);
    struct signing_key k = whsk_key();
    char small_a[4 + 88];
    assert_int_equal(signing_v1a(&k, MSG_ID, MSG_TS, MSG_BODY, strlen(MSG_BODY), small_a,
                                 sizeof small_a), -1);
}

static void test_bad_whsk_rejected(void **state)
{
    (void)state;
    /* the same key with one bit of its public half flipped: not a key pair */
    char damaged[] = WHSK;
    char *last = damaged + strlen(damaged) - 4;       /* inside the public half */
    *last = *last == 'A' ? 'B' : 'A';
    static const char *const BAD[] = {
        "",
        "whsk_",
        "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=",     /* a public key */
        "whsk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=",     /* 32 bytes */
        "whsk_" WHSK_B64_NOPAD,                                   /* no padding */
        "whsec_" WHSK_B64_NOPAD "==",                            /* wrong prefix */
        WHSK_B64_NOPAD "==",                                     /* no prefix */
    };
    struct signing_key k;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        if (signing_key_from_whsk(BAD[i], &k) != -1)
            fail_msg("whsk \"%s\" accepted", BAD[i]);
    assert_int_equal(signing_key_from_whsk(damaged, &k), -1);
}

static void test_kid_is_16_hex_of_blake2b_of_public_key(void **state)
{
    (void)state;
    struct signing_key k = whsk_key();
    unsigned char d[32];
    assert_int_equal(crypto_generichash(d, sizeof d, k.pk, sizeof k.pk, NULL, 0), 0);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    char kid[KID_LEN];
    signing_kid(k.pk, kid);
    assert_int_equal(strlen(kid), 16);
    assert_memory_equal(kid, hex, 16);
}

/* ---- the key file ---- */

static void test_load_creates_private_file_and_reloads_it(void **state)
{
    struct tmp *t = *state;
    struct signing a, b;
    char err[512] = "";
    if (signing_load(&a, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(a.nkeys, 1);
    char kid[KID_LEN];
    signing_kid(a.keys[0].pk, kid);
    assert_string_equal(a.keys[0].kid, kid);
    assert_true(a.keys[0].created_at > 1700000000);

    struct stat st;
    assert_int_equal(stat(t->key, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    char d[PATH_MAX];
    fmt(d, sizeof d, "%s/keys", t->dir);
    assert_int_equal(stat(d, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);       /* 0700 less the umask */

    if (signing_load(&b, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(b.nkeys, 1);
    assert_string_equal(b.keys[0].kid, a.keys[0].kid);
    assert_int_equal(b.keys[0].created_at, a.keys[0].created_at);
    assert_memory_equal(b.keys[0].sk, a.keys[0].sk, sizeof a.keys[0].sk);
    assert_memory_equal(b.keys[0].pk, a.keys[0].pk, sizeof a.keys[0].pk);

    /* no temp file left behind: the directory holds the key file only */
    DIR *dir = opendir(d);
    assert_non_null(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            assert_string_equal(e->d_name, "signing.key");
            entries++;
        }
    closedir(dir);
    assert_int_equal(entries, 1);
    signing_wipe(&a);
    signing_wipe(&b);
    assert_int_equal(a.nkeys, 0);
}

static void test_group_or_other_access_refused(void **state)
{
    struct tmp *t = *state;
    struct signing s;
    char err[512] = "";
    if (signing_load(&s, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    static const mode_t BAD[] = { 0644, 0640, 0604, 0620, 0602, 0666 };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        assert_int_equal(chmod(t->key, BAD[i]), 0);
        assert_refused(t->key, "group or others");
    }
    /* owner-only modes load */
    assert_int_equal(chmod(t->key, 0400), 0);
    struct signing again;
    if (signing_load(&again, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(again.keys[0].kid, s.keys[0].kid);
    signing_wipe(&s);
    signing_wipe(&again);
}

static void test_not_a_regular_file_refused(void **state)
{
    struct tmp *t = *state;
    make_key_dir(t);
    assert_int_equal(mkdir(t->key, 0700), 0);
    assert_refused(t->key, "not a regular file");
    assert_int_equal(rmdir(t->key), 0);
    assert_int_equal(mkfifo(t->key, 0600), 0);        /* must not block */
    assert_refused(t->key, "not a regular file");
}

static void test_rotate_puts_new_key_first_and_keeps_old(void **state)
{
    struct tmp *t = *state;
    struct signing s;
    char err[512] = "";
    if (signing_load(&s, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    char old_kid[KID_LEN];
    memcpy(old_kid, s.keys[0].kid, KID_LEN);
    if (signing_rotate(&s, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(s.nkeys, 2);
    assert_string_not_equal(s.keys[0].kid, old_kid);
    assert_string_equal(s.keys[1].kid, old_kid);
    assert_true(s.keys[0].created_at >= s.keys[1].created_at);

    struct stat st;
    assert_int_equal(stat(t->key, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    struct signing r;
    if (signing_load(&r, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(r.nkeys, 2);
    assert_string_equal(r.keys[0].kid, s.keys[0].kid);
    assert_string_equal(r.keys[1].kid, old_kid);
    assert_memory_equal(r.keys[0].sk, s.keys[0].sk, sizeof s.keys[0].sk);
    assert_memory_equal(r.keys[1].sk, s.keys[1].sk, sizeof s.keys[1].sk);
    signing_wipe(&s);
    signing_wipe(&r);
}

static void test_rotate_keeps_at_most_max_keys(void **state)
{
    struct tmp *t = *state;
    struct signing s;
    char err[512] = "";
    if (signing_load(&s, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    char first[KID_LEN], second[KID_LEN];
    memcpy(first, s.keys[0].kid, KID_LEN);
    if (signing_rotate(&s, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    memcpy(second, s.keys[1].kid, KID_LEN);
    assert_string_equal(second, first);
    memcpy(second, s.keys[0].kid, KID_LEN);
    for (int i = 0; i < SIGNING_MAX_KEYS - 1; i++)
        if (signing_rotate(&s, t->key, err, sizeof err) != 0)
            fail_msg("%s", err);
    /* 17 keys made: the oldest is gone, the second oldest is last */
    assert_int_equal(s.nkeys, SIGNING_MAX_KEYS);
    assert_string_equal(s.keys[SIGNING_MAX_KEYS - 1].kid, second);
    struct signing r;
    if (signing_load(&r, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(r.nkeys, SIGNING_MAX_KEYS);
    for (size_t i = 0; i < r.nkeys; i++) {
        assert_string_equal(r.keys[i].kid, s.keys[i].kid);
        assert_string_not_equal(r.keys[i].kid, first);
    }
    signing_wipe(&s);
    signing_wipe(&r);
}

static void test_hand_written_file_with_comments_loads(void **state)
{
    struct tmp *t = *state;
    make_key_dir(t);
    struct signing_key k = whsk_key();
    k.created_at = 1614265330;
    char line[256], text[1024];
    key_line(&k, k.kid, line, sizeof line);
    fmt(text, sizeof text, "# a comment\n\n#another\n%s\n# trailing comment\n", line);
    write_text(t->key, text, 0600);
    struct signing s;
    char err[512] = "";
    if (signing_load(&s, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(s.nkeys, 1);
    assert_string_equal(s.keys[0].kid, k.kid);
    assert_int_equal(s.keys[0].created_at, 1614265330);
    char sig[SIGNING_SIG_LEN];
    assert_int_equal(signing_v1a(&s.keys[0], MSG_ID, MSG_TS, MSG_BODY, strlen(MSG_BODY), sig,
                                 sizeof sig), 0);
    assert_string_equal(sig, V1A_SIG);
    signing_wipe(&s);
}

static void test_malformed_lines_refused(void **state)
{
    struct tmp *t = *state;
    make_key_dir(t);
    struct signing_key k = whsk_key();
    char good[256];
    key_line(&k, k.kid, good, sizeof good);
    good[strlen(good) - 1] = '\0';
    char b64[89];
    sodium_bin2base64(b64, sizeof b64, k.sk, sizeof k.sk, sodium_base64_VARIANT_ORIGINAL);

    char bad[8][256];
    fmt(bad[0], sizeof bad[0], "%s 0", k.kid);                      /* 2 fields */
    fmt(bad[1], sizeof bad[1], "%s extra", good);                   /* 4 fields */
    fmt(bad[2], sizeof bad[2], "%s -5 %s", k.kid, b64);             /* created_at */
    fmt(bad[3], sizeof bad[3], "%s 12x %s", k.kid, b64);
    fmt(bad[4], sizeof bad[4], "%s 0 %.86s", k.kid, b64);           /* cut secret */
    fmt(bad[5], sizeof bad[5], "%.15s 0 %s", k.kid, b64);           /* short kid */
    fmt(bad[6], sizeof bad[6], "%s 0 %s", "ZZZZZZZZZZZZZZZZ", b64); /* not hex */
    fmt(bad[7], sizeof bad[7], "just garbage");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024];
        fmt(text, sizeof text, "# header\n%s\n", bad[i]);
        write_text(t->key, text, 0600);
        char where[PATH_MAX + 8];
        fmt(where, sizeof where, "%s:2:", t->key);
        assert_refused(t->key, where);
    }
    /* a good line after a bad one does not rescue the file */
    char text[1024];
    fmt(text, sizeof text, "%s\nnonsense\n", good);
    write_text(t->key, text, 0600);
    assert_refused(t->key, ":2:");
    /* the same key twice */
    fmt(text, sizeof text, "%s\n%s\n", good, good);
    write_text(t->key, text, 0600);
    assert_refused(t->key, "twice");
    /* comments only: no key */
    write_text(t->key, "# nothing here\n", 0600);
    assert_refused(t->key, "no key");
    write_text(t->key, "", 0600);
    assert_refused(t->key, "no key");
}

static void test_kid_mismatch_refused(void **state)
{
    struct tmp *t = *state;
    make_key_dir(t);
    struct signing_key k = whsk_key();
    char line[256];
    key_line(&k, "0123456789abcdef", line, sizeof line);
    write_text(t->key, line, 0600);
    assert_refused(t->key, "does not match");
    /* a damaged secret key (its public half flipped) is refused even with a matching kid */
    k.sk[40] ^= 1;
    key_line(&k, k.kid, line, sizeof line);
    write_text(t->key, line, 0600);
    assert_refused(t->key, "damaged");
}

static void test_failed_reload_keeps_loaded_keys(void **state)
{
    struct tmp *t = *state;
    struct signing s;
    char err[512] = "";
    if (signing_load(&s, t->key, err, sizeof err) != 0)
        fail_msg("%s", err);
    char kid[KID_LEN];
    memcpy(kid, s.keys[0].kid, KID_LEN);
    assert_int_equal(chmod(t->key, 0644), 0);
    assert_int_equal(signing_load(&s, t->key, err, sizeof err), -1);
    assert_int_equal(s.nkeys, 1);
    assert_string_equal(s.keys[0].kid, kid);
    /* a rotation that cannot write leaves keys and file alone */
    char nowhere[PATH_MAX];
    fmt(nowhere, sizeof nowhere, "%s/missing/dir/signing.key", t->dir);
    assert_int_equal(signing_rotate(&s, nowhere, err, sizeof err), -1);
    if (!strstr(err, nowhere))
        fail_msg("error \"%s\" does not name %s", err, nowhere);
    assert_int_equal(s.nkeys, 1);
    assert_string_equal(s.keys[0].kid, kid);
    signing_wipe(&s);
}

static void test_file_in_current_directory(void **state)
{
    struct tmp *t = *state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(t->dir), 0);
    struct signing s;
    char err[512] = "";
    int rc = signing_load(&s, "signing.key", err, sizeof err);
    int rc2 = rc == 0 ? signing_rotate(&s, "signing.key", err, sizeof err) : -1;
    assert_int_equal(chdir(cwd), 0);
    if (rc != 0 || rc2 != 0)
        fail_msg("%s", err);
    assert_int_equal(s.nkeys, 2);
    signing_wipe(&s);
}

#define TMP_TEST(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_known_answer),
        cmocka_unit_test(test_v1a_known_answer),
        cmocka_unit_test(test_whpk_of_whsk_key),
        cmocka_unit_test(test_v1a_verifies_with_public_key),
        cmocka_unit_test(test_changed_body_byte_changes_signatures),
        cmocka_unit_test(test_empty_body_signs),
        cmocka_unit_test(test_long_hmac_key_is_accepted),
        cmocka_unit_test(test_bad_secrets_rejected),
        cmocka_unit_test(test_bad_whsk_rejected),
        cmocka_unit_test(test_kid_is_16_hex_of_blake2b_of_public_key),
        TMP_TEST(test_load_creates_private_file_and_reloads_it),
        TMP_TEST(test_group_or_other_access_refused),
        TMP_TEST(test_not_a_regular_file_refused),
        TMP_TEST(test_rotate_puts_new_key_first_and_keeps_old),
        TMP_TEST(test_rotate_keeps_at_most_max_keys),
        TMP_TEST(test_hand_written_file_with_comments_loads),
        TMP_TEST(test_malformed_lines_refused),
        TMP_TEST(test_kid_mismatch_refused),
        TMP_TEST(test_failed_reload_keeps_loaded_keys),
        TMP_TEST(test_file_in_current_directory),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
