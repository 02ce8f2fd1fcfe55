/* buf.c — the growing byte buffer of buf.h and its direct writers. */
#include "impactd/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "impactd/timeutil.h"

void buf_init(struct buf *b) { memset(b, 0, sizeof *b); }

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->failed = false;
}

static bool buf_reserve(struct buf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void buf_add(struct buf *b, const void *data, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_addc(struct buf *b, char c)
{
    if (!buf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

size_t buf_format_int(long long v, char *out)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0)
        out[k++] = '-';
    while (n)
        out[k++] = tmp[--n];
    out[k] = '\0';
    return k;
}

void buf_add_int(struct buf *b, long long v)
{
    char tmp[24];
    buf_add(b, tmp, buf_format_int(v, tmp));
}

static void two(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void buf_add_time(struct buf *b, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000 - (ms % 1000 < 0));     /* floor, for any ms */
    int frac = (int)((ms % 1000 + 1000) % 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) {
        char out[RFC3339_LEN];          /* outside RFC 3339's four digits: rare, slow */
        time_format_rfc3339(ms, out);
        buf_adds(b, out);
        return;
    }
    char t[24] = "0000-00-00T00:00:00.000Z";
    two(t, year / 100);
    two(t + 2, year % 100);
    two(t + 5, tm.tm_mon + 1);
    two(t + 8, tm.tm_mday);
    two(t + 11, tm.tm_hour);
    two(t + 14, tm.tm_min);
    two(t + 17, tm.tm_sec);
    if (frac) {
        t[20] = (char)('0' + frac / 100);
        t[21] = (char)('0' + frac / 10 % 10);
        t[22] = (char)('0' + frac % 10);
        buf_add(b, t, 24);
    } else {
        t[19] = 'Z';
        buf_add(b, t, 20);
    }
}

/* The length of the UTF-8 sequence at s (n bytes left, s[0] >= 0x80), or 0 when it is not
 * one: a stray continuation byte, cut short, overlong, a surrogate, above U+10FFFF. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    static const uint32_t MIN[] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (len == 0 || s[0] > 0xf4 || len > n)
        return 0;
    uint32_t cp = s[0] & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    return cp < MIN[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : len;
}

void buf_add_json_string(struct buf *b, const char *s, size_t n)
{
    static const char HEX[] = "0123456789abcdef";
    if (!buf_reserve(b, n + 2))
        return;
    buf_addc(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
            continue;
        if (c >= 0x80) {
            /* text from Redis is what was stored: JSON out must stay UTF-8 whatever it is */
            size_t len = utf8_sequence((const unsigned char *)s + i, n - i);
            if (len) {
                i += len - 1;
                continue;
            }
        }
        buf_add(b, s + start, i - start);
        start = i + 1;
        if (c >= 0x80) {
            buf_add(b, "\\ufffd", 6);
            continue;
        }
        switch (c) {
        case '"': buf_add(b, "\\\"", 2); break;
        case '\\': buf_add(b, "\\\\", 2); break;
        case '\n': buf_add(b, "\\n", 2); break;
        case '\r': buf_add(b, "\\r", 2); break;
        case '\t': buf_add(b, "\\t", 2); break;
        default: {
            char u[6] = { '\\', 'u', '0', '0', HEX[c >> 4], HEX[c & 15] };
            buf_add(b, u, 6);
        }
        }
    }
    if (n > start)      /* s may be NULL when n is 0 (an empty MessagePack string) */
        buf_add(b, s + start, n - start);
    buf_addc(b, '"');
}
