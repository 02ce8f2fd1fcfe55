/* ids.c — time-ordered opaque ids: prefix + 26 chars of lower-case Crockford base32. */
#include "impactd/ids.h"

#include <sodium.h>
#include <string.h>

static const char B32[] = "0123456789abcdefghjkmnpqrstvwxyz";

void id_new(const char *prefix, int64_t now_ms, char out[ID_MAX_LEN])
{
    unsigned char raw[16];
    uint64_t t = (uint64_t)now_ms;
    for (int i = 5; i >= 0; i--) {
        raw[i] = (unsigned char)(t & 0xff);
        t >>= 8;
    }
    randombytes_buf(raw + 6, 10);
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
            p[k++] = B32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    p[k] = '\0';
}

bool id_valid(const char *s, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (strncmp(s, prefix, plen) != 0)
        return false;
    size_t n = 0;
    for (const char *p = s + plen; *p; p++, n++)
        if (!strchr(B32, *p) && !(*p >= 'a' && *p <= 'z'))
            return false;
    return n >= 1 && n <= 32;
}
