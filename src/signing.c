/* signing.c — the platform's Ed25519 key file, and the `v1` / `v1a` webhook signatures.
 *
 * Owns the key file: its format, its permissions, its creation on first start and its
 * rotation. The file is text, one key per line, newest (current) first:
 *     <kid> <created_at, Unix seconds> <base64 of the 64-byte Ed25519 secret key>
 * with '#' comment lines (the header this module writes) and blank lines ignored. A file
 * that group or others may read or write, that is not a regular file, or that does not parse
 * is refused with a message naming it: a daemon must not sign with a key others may know,
 * nor start with a key other than the one its peers use.
 *
 * The file is never written in place: a complete temp file (0600) is published by link()
 * on creation — so two daemons creating it at once agree on one key — and by rename() on
 * rotation. It does not own where the keys are used (notify, feeds, /v1/keys). */
#include "impactd/signing.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_MAX_BYTES 65536        /* 16 keys take ~2 KiB; anything far larger is not ours */
#define LINE_MAX_LEN 256
#define KID_HEX 16
#define SK_B64_LEN 88               /* base64 of 64 bytes, padded */
#define HMAC_KEY_MAX 256            /* decoded whsec_ bytes; Standard Webhooks uses 24 to 64 */
#define TS_LEN 24                   /* any int64 in decimal, sign and NUL */
#define V1A_PREFIX "v1a,"
#define V1_PREFIX "v1,"

static const char FILE_HEADER[] =
    "# impactd signing keys (Ed25519). Keep this file secret: mode 0600, owner only.\n"
    "# One key per line, newest first (the first line is the current key):\n"
    "#   <kid> <created_at, Unix seconds> <base64 of the 64-byte Ed25519 secret key>\n"
    "# kid = first 16 hex digits of BLAKE2b-256 of the public key. Written by impactd;\n"
    "# use `impactd rotate-key` to add a key. Every daemon sharing a Redis needs this file.\n";

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- keys ---- */

void signing_kid(const unsigned char pk[crypto_sign_PUBLICKEYBYTES], char kid[KID_LEN])
{
    unsigned char d[32];
    crypto_generichash(d, sizeof d, pk, crypto_sign_PUBLICKEYBYTES, NULL, 0);
    sodium_bin2hex(kid, KID_LEN, d, KID_HEX / 2);
}

static void key_new(struct signing_key *k)
{
    crypto_sign_keypair(k->pk, k->sk);
    signing_kid(k->pk, k->kid);
    k->created_at = (int64_t)time(NULL);
}

/* Checks that sk (seed || public key, libsodium's layout) is one key pair, and fills the
 * rest of k from it. A flipped bit in a stored key shows here rather than as signatures
 * that nobody can verify. */
static int key_from_sk(struct signing_key *k)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    int rc = -1;
    if (crypto_sign_seed_keypair(pk, sk, k->sk) == 0 && sodium_memcmp(sk, k->sk, sizeof sk) == 0) {
        memcpy(k->pk, pk, sizeof pk);
        signing_kid(k->pk, k->kid);
        rc = 0;
    }
    sodium_memzero(sk, sizeof sk);
    return rc;
}

void signing_wipe(struct signing *s)
{
    sodium_memzero(s, sizeof *s);
}

int signing_key_from_whsk(const char *whsk, struct signing_key *out)
{
    struct signing_key k;
    size_t n = 0;
    int rc = -1;
    memset(&k, 0, sizeof k);
    if (strncmp(whsk, "whsk_", 5) != 0)
        return -1;
    if (sodium_base642bin(k.sk, sizeof k.sk, whsk + 5, strlen(whsk + 5), NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || n != sizeof k.sk)
        goto done;
    if (key_from_sk(&k) != 0)
        goto done;
    *out = k;
    rc = 0;
done:
    sodium_memzero(&k, sizeof k);
    return rc;
}

void signing_whpk(const struct signing_key *k, char *out, size_t outlen)
{
    if (outlen < SIGNING_WHPK_LEN) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    memcpy(out, "whpk_", 5);
    sodium_bin2base64(out + 5, outlen - 5, k->pk, sizeof k->pk, sodium_base64_VARIANT_ORIGINAL);
}

/* ---- signatures ---- */

/* "{id}.{ts}.{body}", malloc'd (the caller frees it); NULL when out of memory. */
static unsigned char *signed_content(const char *id, int64_t ts, const char *body,
                                     size_t body_len, size_t *len)
{
    char tsbuf[TS_LEN];
    int tn = snprintf(tsbuf, sizeof tsbuf, "%" PRId64, ts);
    size_t idlen = strlen(id);
    if (tn < 0 || body_len > SIZE_MAX - idlen - (size_t)tn - 2)
        return NULL;
    size_t total = idlen + 1 + (size_t)tn + 1 + body_len;
    unsigned char *m = malloc(total);
    if (!m)
        return NULL;
    unsigned char *p = m;
    memcpy(p, id, idlen);
    p += idlen;
    *p++ = '.';
    memcpy(p, tsbuf, (size_t)tn);
    p += tn;
    *p++ = '.';
    if (body_len)
        memcpy(p, body, body_len);
    *len = total;
    return m;
}

int signing_v1a(const struct signing_key *k, const char *id, int64_t ts, const char *body,
                size_t body_len, char *out, size_t outlen)
{
    unsigned char sig[crypto_sign_BYTES];
    size_t prefix = strlen(V1A_PREFIX), mlen = 0;
    if (outlen < prefix + sodium_base64_ENCODED_LEN(sizeof sig, sodium_base64_VARIANT_ORIGINAL))
        return -1;
    unsigned char *m = signed_content(id, ts, body, body_len, &mlen);
    if (!m)
        return -1;
    int rc = crypto_sign_detached(sig, NULL, m, mlen, k->sk);
    free(m);
    if (rc != 0)
        return -1;
    memcpy(out, V1A_PREFIX, prefix);
    sodium_bin2base64(out + prefix, outlen - prefix, sig, sizeof sig,
                      sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

int signing_v1(const char *whsec_secret, const char *id, int64_t ts, const char *body,
               size_t body_len, char *out, size_t outlen)
{
    unsigned char key[HMAC_KEY_MAX], mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    char tsbuf[TS_LEN];
    size_t prefix = strlen(V1_PREFIX), klen = 0;
    int rc = -1;

    if (outlen < prefix + sodium_base64_ENCODED_LEN(sizeof mac, sodium_base64_VARIANT_ORIGINAL))
        return -1;
    if (strncmp(whsec_secret, "whsec_", 6) != 0)
        return -1;
    const char *b64 = whsec_secret + 6;
    if (sodium_base642bin(key, sizeof key, b64, strlen(b64), NULL, &klen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || klen == 0)
        goto done;
    int tn = snprintf(tsbuf, sizeof tsbuf, "%" PRId64, ts);
    if (tn < 0)
        goto done;
    /* Any key length: init hashes keys longer than the SHA-256 block, as HMAC requires. */
    crypto_auth_hmacsha256_init(&st, key, klen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)tsbuf, (size_t)tn);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    if (body_len)
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, V1_PREFIX, prefix);
    sodium_bin2base64(out + prefix, outlen - prefix, mac, sizeof mac,
                      sodium_base64_VARIANT_ORIGINAL);
    rc = 0;
done:
    sodium_memzero(key, sizeof key);
    sodium_memzero(&st, sizeof st);
    return rc;
}

/* ---- the key file: parsing ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses one key line (NUL-terminated, no newline) into k; on error writes why. */
static int parse_line(const char *line, struct signing_key *k, char *why, size_t whylen)
{
    const char *f[3];
    size_t fl[3];
    size_t nf = 0;
    for (const char *p = line; *p;) {
        while (is_blank(*p))
            p++;
        if (!*p)
            break;
        if (nf == 3)
            return fail(why, whylen, "expected 3 fields: <kid> <created_at> <base64 secret key>");
        f[nf] = p;
        while (*p && !is_blank(*p))
            p++;
        fl[nf] = (size_t)(p - f[nf]);
        nf++;
    }
    if (nf != 3)
        return fail(why, whylen, "expected 3 fields: <kid> <created_at> <base64 secret key>");

    if (fl[0] != KID_HEX || strspn(f[0], "0123456789abcdef") < KID_HEX)
        return fail(why, whylen, "the kid must be 16 lower-case hex digits");

    if (fl[1] > 18 || strspn(f[1], "0123456789") < fl[1])
        return fail(why, whylen, "created_at must be Unix seconds");
    k->created_at = 0;
    for (size_t i = 0; i < fl[1]; i++)
        k->created_at = k->created_at * 10 + (f[1][i] - '0');

    size_t n = 0;
    if (fl[2] != SK_B64_LEN ||
        sodium_base642bin(k->sk, sizeof k->sk, f[2], fl[2], NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || n != sizeof k->sk)
        return fail(why, whylen, "the secret key must be the base64 of 64 bytes");
    if (key_from_sk(k) != 0)
        return fail(why, whylen, "the secret key is damaged (its public half does not match "
                                 "its seed)");
    if (memcmp(k->kid, f[0], KID_HEX) != 0)
        return fail(why, whylen, "kid %.16s does not match its key (whose kid is %s)", f[0],
                    k->kid);
    return 0;
}

/* Parses the whole text into out; messages are "path:line: why". */
static int parse_text(const char *text, size_t len, const char *path, struct signing *out,
                      char *err, size_t errlen)
{
    char line[LINE_MAX_LEN + 1], why[128];
    size_t lineno = 0;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len))
        return fail(err, errlen, "%s: not a text file (NUL byte)", path);
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - at;
        const char *start = text + at;
        at = nl ? end + 1 : len;
        lineno++;
        while (n && (start[n - 1] == '\r' || is_blank(start[n - 1])))
            n--;
        if (n == 0 || start[0] == '#')
            continue;
        if (n > LINE_MAX_LEN) {
            fail(err, errlen, "%s:%zu: line too long", path, lineno);
            goto done;
        }
        if (out->nkeys == SIGNING_MAX_KEYS) {
            fail(err, errlen, "%s:%zu: more than %d keys", path, lineno, SIGNING_MAX_KEYS);
            goto done;
        }
        memcpy(line, start, n);
        line[n] = '\0';
        struct signing_key *k = &out->keys[out->nkeys];
        if (parse_line(line, k, why, sizeof why) != 0) {
            fail(err, errlen, "%s:%zu: %s", path, lineno, why);
            goto done;
        }
        for (size_t i = 0; i < out->nkeys; i++)
            if (strcmp(out->keys[i].kid, k->kid) == 0) {
                fail(err, errlen, "%s:%zu: key %s appears twice", path, lineno, k->kid);
                goto done;
            }
        out->nkeys++;
    }
    if (out->nkeys == 0) {
        fail(err, errlen, "%s: no key (expected lines \"<kid> <created_at> <base64 secret "
                          "key>\")", path);
        goto done;
    }
    rc = 0;
done:
    sodium_memzero(line, sizeof line);
    if (rc != 0)
        signing_wipe(out);
    return rc;
}

/* ---- the key file: reading ---- */

/* Reads and checks the open file fd (owned by the caller). */
static int load_fd(int fd, const char *path, struct signing *out, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(err, errlen, "%s: not a regular file", path);
    if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH))
        return fail(err, errlen, "%s: readable or writable by group or others (mode %04o); "
                    "the signing key must be private: chmod 600 %s",
                    path, (unsigned)(st.st_mode & 07777), path);

    char *buf = malloc(FILE_MAX_BYTES + 1);
    size_t len = 0;
    int rc = -1;
    if (!buf)
        return fail(err, errlen, "%s: out of memory", path);
    for (;;) {
        ssize_t r = read(fd, buf + len, FILE_MAX_BYTES + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fail(err, errlen, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > FILE_MAX_BYTES) {
            fail(err, errlen, "%s: larger than %d bytes, not a key file", path, FILE_MAX_BYTES);
            goto done;
        }
    }
    rc = parse_text(buf, len, path, out, err, errlen);
done:
    sodium_memzero(buf, len);
    free(buf);
    return rc;
}

/* ---- the key file: writing ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The file's text; malloc'd, the caller wipes and frees it. */
static char *format_keys(const struct signing *s, size_t *len)
{
    size_t cap = sizeof FILE_HEADER + SIGNING_MAX_KEYS * (KID_HEX + TS_LEN + SK_B64_LEN + 4);
    char *text = malloc(cap);
    if (!text)
        return NULL;
    size_t n = sizeof FILE_HEADER - 1;
    memcpy(text, FILE_HEADER, n);
    for (size_t i = 0; i < s->nkeys; i++) {
        char b64[SK_B64_LEN + 1];
        sodium_bin2base64(b64, sizeof b64, s->keys[i].sk, sizeof s->keys[i].sk,
                          sodium_base64_VARIANT_ORIGINAL);
        int w = snprintf(text + n, cap - n, "%s %" PRId64 " %s\n", s->keys[i].kid,
                         s->keys[i].created_at, b64);
        sodium_memzero(b64, sizeof b64);
        if (w < 0 || (size_t)w >= cap - n) {
            sodium_memzero(text, cap);
            free(text);
            return NULL;
        }
        n += (size_t)w;
    }
    *len = n;
    return text;
}

/* Makes the missing directories above the file, mode 0700 (existing ones are left as they
 * are). */
static int make_parents(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof dir)
        return fail(err, errlen, "\"%s\": not a usable path for the signing key", path);
    memcpy(dir, path, n + 1);
    for (char *p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return fail(err, errlen, "%s: cannot create directory %s: %s", path, dir,
                        strerror(errno));
        *p = '/';
    }
    return 0;
}

/* Best effort: makes the new directory entry durable. A failure here is not worth refusing
 * a key that is already in place. */
static void sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (slash && n == 0)
        n = 1;                          /* "/file": the root */
    if (n >= sizeof dir)
        return;
    if (slash)
        memcpy(dir, path, n);
    else
        dir[n++] = '.';
    dir[n] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Writes s to a temp file next to path (0600, synced), then publishes it as path: with
 * exclusive, by link() — returns 1, leaving path alone, when it already exists —, else by
 * rename() over the old file. Returns 0 when path holds s, -1 on error (path unchanged). */
static int write_keys(const struct signing *s, const char *path, bool exclusive, char *err,
                      size_t errlen)
{
    char tmp[PATH_MAX];
    size_t len = 0;
    int rc = -1;
    bool tmp_gone = false;

    int tn = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    if (tn < 0 || (size_t)tn >= sizeof tmp)
        return fail(err, errlen, "%s: path too long", path);
    char *text = format_keys(s, &len);
    if (!text)
        return fail(err, errlen, "%s: out of memory", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        fail(err, errlen, "%s: cannot create a temp file: %s", path, strerror(errno));
        goto free_text;
    }
    bool written = fchmod(fd, 0600) == 0 && write_all(fd, text, len) == 0 && fsync(fd) == 0;
    if (close(fd) != 0)
        written = false;
    if (!written) {
        fail(err, errlen, "%s: cannot write %s: %s", path, tmp, strerror(errno));
        goto unlink_tmp;
    }
    if (exclusive) {
        if (link(tmp, path) == 0) {
            rc = 0;
        } else if (errno == EEXIST) {
            rc = 1;
        } else if ((errno == EPERM || errno == ENOTSUP || errno == ENOSYS) &&
                   rename(tmp, path) == 0) {
            rc = 0;                     /* a file system without hard links: still atomic */
            tmp_gone = true;
        } else {
            fail(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        }
    } else if (rename(tmp, path) == 0) {
        rc = 0;
        tmp_gone = true;
    } else {
        fail(err, errlen, "%s: cannot replace with %s: %s", path, tmp, strerror(errno));
    }
unlink_tmp:
    if (!tmp_gone)
        unlink(tmp);
    if (rc == 0)
        sync_parent(path);
free_text:
    sodium_memzero(text, len);
    free(text);
    return rc;
}

/* ---- load, rotate ---- */

int signing_load(struct signing *s, const char *path, char *err, size_t errlen)
{
    struct signing n;
    int rc = -1;
    memset(&n, 0, sizeof n);
    /* Twice at most: when another process creates the file between our open() and our
     * link(), the second round reads what it wrote. */
    for (int attempt = 0; attempt < 2; attempt++) {
        /* O_NONBLOCK: a FIFO in place of the file is refused, not waited on. */
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd >= 0) {
            rc = load_fd(fd, path, &n, err, errlen);
            close(fd);
            break;
        }
        if (errno != ENOENT) {
            fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
            break;
        }
        if (make_parents(path, err, errlen) != 0)
            break;
        key_new(&n.keys[0]);
        n.nkeys = 1;
        int w = write_keys(&n, path, true, err, errlen);
        if (w <= 0) {
            rc = w;
            break;
        }
        signing_wipe(&n);               /* lost the race: read the winner's file */
        fail(err, errlen, "%s: created by another process but then gone", path);
    }
    if (rc == 0)
        *s = n;
    signing_wipe(&n);
    return rc;
}

int signing_rotate(struct signing *s, const char *path, char *err, size_t errlen)
{
    struct signing n;
    memset(&n, 0, sizeof n);
    key_new(&n.keys[0]);
    n.nkeys = 1;
    for (size_t i = 0; i < s->nkeys && n.nkeys < SIGNING_MAX_KEYS; i++)
        n.keys[n.nkeys++] = s->keys[i];
    int rc = write_keys(&n, path, false, err, errlen);
    if (rc == 0)
        *s = n;
    signing_wipe(&n);
    return rc;
}

void signing_derive(const struct signing_key *k, const char *context, const void *msg,
                    size_t len, unsigned char out[32])
{
    unsigned char seed[crypto_sign_SEEDBYTES];
    crypto_sign_ed25519_sk_to_seed(seed, k->sk);
    crypto_generichash_state st;
    crypto_generichash_init(&st, seed, sizeof seed, 32);
    crypto_generichash_update(&st, (const unsigned char *)context, strlen(context) + 1);
    crypto_generichash_update(&st, msg, len);
    crypto_generichash_final(&st, out, 32);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(&st, sizeof st);
}

const struct signing_key *signing_find(const struct signing *s, const char *kid)
{
    for (size_t i = 0; i < s->nkeys; i++)
        if (strcmp(s->keys[i].kid, kid) == 0)
            return &s->keys[i];
    return NULL;
}
