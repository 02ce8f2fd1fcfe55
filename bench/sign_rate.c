/* sign_rate.c — the signing reference of the notification benchmark (bench/notify).
 *
 *   sign_rate SECONDS BODY_BYTES
 *
 * On one core, for SECONDS each, signs "<msg id>.<timestamp>.<body>" (BODY_BYTES of JSON-like
 * text) the two ways a webhook is signed (src/signing.c): Ed25519 (crypto_sign_detached)
 * and HMAC-SHA256 keyed with 32 bytes (crypto_auth_hmacsha256), each followed by the base64
 * encoding impactd does, and prints
 *     SIGN bytes= ed25519_per_s= hmac_per_s=
 * It measures libsodium, not impactd: no allocation, no copy of the message per call.
 *
 * Owns nothing beyond its process. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_MAX (1024 * 1024)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Calls one(m, len, out) for `seconds`; returns the calls per second. */
static double rate(void (*one)(const unsigned char *, size_t, char *), const unsigned char *m,
                   size_t len, double seconds)
{
    char out[256];
    long n = 0;
    double start = now_s(), t;
    do {
        for (int i = 0; i < 64; i++)
            one(m, len, out);
        n += 64;
        t = now_s() - start;
    } while (t < seconds);
    return (double)n / t;
}

static unsigned char sk[crypto_sign_SECRETKEYBYTES];
static unsigned char hmac_key[32];

static void ed25519(const unsigned char *m, size_t len, char *out)
{
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, m, len, sk);
    sodium_bin2base64(out, 256, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
}

static void hmac(const unsigned char *m, size_t len, char *out)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, m, len, hmac_key);
    sodium_bin2base64(out, 256, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sign_rate SECONDS BODY_BYTES\n");
        return 2;
    }
    double seconds = atof(argv[1]);
    long bytes = atol(argv[2]);
    if (seconds <= 0 || bytes <= 0 || bytes > BODY_MAX || sodium_init() < 0) {
        fprintf(stderr, "sign_rate: bad arguments, or libsodium did not start\n");
        return 2;
    }
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(hmac_key, sizeof hmac_key);

    static const char prefix[] = "msg_0e2kd4v7m1xq3r9s8t6w5y4z2a.1774598400.{\"id\":\"msg_\",\"data\":{";
    unsigned char *m = malloc((size_t)bytes + sizeof prefix);
    if (!m)
        return 1;
    memcpy(m, prefix, sizeof prefix - 1);
    for (long i = 0; i < bytes; i++)
        m[sizeof prefix - 1 + i] = (unsigned char)"abcdefghij\",:0123456789"[i % 23];
    size_t len = sizeof prefix - 1 + (size_t)bytes;

    double ed = rate(ed25519, m, len, seconds);
    double hm = rate(hmac, m, len, seconds);
    printf("SIGN bytes=%zu ed25519_per_s=%.0f hmac_per_s=%.0f\n", len, ed, hm);
    free(m);
    return 0;
}
