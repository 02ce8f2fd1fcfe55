/* ids.c — time-ordered opaque ids: prefix + 26 chars of lower-case Crockford base32.
 *
 * Within one process ids are strictly increasing: two ids made in the same millisecond (or
 * after the clock stepped back) reuse the last time and add one to the last random part, as
 * ULID's monotonic mode does. That last id is the only state kept here; it only ever moves
 * forward, like the clock it stands for. */
#include "impactd/ids.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

const char ID_B32[33] = "0123456789abcdefghjkmnpqrstvwxyz";

/* prefix + 26 base32 digits of 48 bits of ms then the 80 bits of rnd. */
static void id_encode(const char *prefix, int64_t now_ms, const unsigned char rnd[10],
                      char out[ID_MAX_LEN])
{
    unsigned char raw[16];
    uint64_t t = (uint64_t)now_ms;
    for (int i = 5; i >= 0; i--) {
        raw[i] = (unsigned char)(t & 0xff);
        t >>= 8;
    }
    memcpy(raw + 6, rnd, 10);
    size_t plen = strlen(prefix);
    memcpy(out, prefix, plen);
    /* 128 bits -> 26 base32 digits (the first carries 3 bits) */
    char *p = out + plen;
    unsigned acc = 0;
    int bits = 2;   /* pad 2 zero bits in front: 130 = 26 * 5 */
    size_t k = 0;
    for (size_t i = 0; i < 16; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 5) {
            p[k++] = ID_B32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    p[k] = '\0';
}

static struct { int64_t ms; unsigned char rnd[10]; } id_last;

void id_new(const char *prefix, int64_t now_ms, char out[ID_MAX_LEN])
{
    if (now_ms <= id_last.ms) {
        now_ms = id_last.ms;
        int i = 9;
        while (i >= 0 && ++id_last.rnd[i] == 0)
            i--;            /* carry; 80 bits do not run out within one millisecond */
    } else {
        id_last.ms = now_ms;
        randombytes_buf(id_last.rnd, sizeof id_last.rnd);
        id_last.rnd[0] &= 0x7f;     /* leave room to count up */
    }
    id_encode(prefix, now_ms, id_last.rnd, out);
}

bool id_valid(const char *s, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (strncmp(s, prefix, plen) != 0)
        return false;
    size_t n = 0;
    for (const char *p = s + plen; *p; p++, n++)
        if (!strchr(ID_B32, *p) && !(*p >= 'a' && *p <= 'z'))
            return false;
    return n >= 1 && n <= 32;
}

void id_base(int64_t now_ms, char *out, size_t n)
{
    unsigned char rnd[10];
    char full[ID_MAX_LEN];
    randombytes_buf(rnd, sizeof rnd);
    id_encode("", now_ms, rnd, full);       /* the monotonic state is not involved */
    memcpy(out, full, n);
    out[n] = '\0';
}

void id_digest(const char *prefix, int64_t ms, const unsigned char *digest, size_t n,
               char out[ID_MAX_LEN])
{
    size_t plen = strlen(prefix);
    memcpy(out, prefix, plen);
    char *p = out + plen;
    uint64_t t = (uint64_t)ms;
    for (int i = 9; i >= 0; i--) {
        p[i] = ID_B32[t & 31];
        t >>= 5;
    }
    uint64_t acc = 0;
    int bits = 0;
    size_t k = 10;
    for (size_t i = 0; i < n && k < 26; i++) {
        acc = (acc << 8) | digest[i];
        bits += 8;
        while (bits >= 5 && k < 26) {
            p[k++] = ID_B32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    p[k] = '\0';
}

void id_of_event(const char *prefix, long long ms, long long seq, const char *code,
                 char out[ID_MAX_LEN])
{
    snprintf(out, ID_MAX_LEN, "%s%011llx%04llx%s", prefix, ms, seq, code);
}
