/* page.c — merging ordered parts into one page and cutting it (page.h). Used by the lists of
 * offers, needs and allocations (one part per market) and by the event feed (one per
 * market's stream). Owns only the items it was given. Also the strict checks of the cursors
 * those pages (and the inbox) hand out. */
#include "impactd/page.h"

#include <stdlib.h>
#include <string.h>

void page_init(struct page *p) { memset(p, 0, sizeof *p); }

void page_free(struct page *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->items[i].json);
    free(p->items);
    page_init(p);
}

static void copy_key(char dst[PAGE_KEY_LEN], const char *src)
{
    size_t n = strlen(src);
    if (n >= PAGE_KEY_LEN)
        n = PAGE_KEY_LEN - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int page_add(struct page *p, const char *key, const char *cursor, const char *json, size_t len)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct page_item *grown = realloc(p->items, cap * sizeof *grown);
        if (!grown)
            return -1;
        p->items = grown;
        p->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, json, len);
    copy[len] = '\0';
    struct page_item *it = &p->items[p->n++];
    copy_key(it->key, key);
    copy_key(it->cursor, cursor);
    it->json = copy;
    it->len = len;
    return 0;
}

void page_bound(struct page *p, const char *key, const char *cursor)
{
    if (p->bounded && strcmp(key, p->bound_key) >= 0)
        return;
    p->bounded = true;
    copy_key(p->bound_key, key);
    copy_key(p->bound_cursor, cursor);
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct page_item *)a)->key, ((const struct page_item *)b)->key);
}

size_t page_settle(struct page *p)
{
    if (p->n > 1)
        qsort(p->items, p->n, sizeof *p->items, by_key);
    if (p->bounded) {
        size_t keep = 0;
        while (keep < p->n && strcmp(p->items[keep].key, p->bound_key) <= 0)
            keep++;
        for (size_t i = keep; i < p->n; i++)
            free(p->items[i].json);
        p->n = keep;
    }
    return p->n;
}

void page_body(const struct page *p, size_t limit, struct buf *out)
{
    size_t take = p->n < limit ? p->n : limit;
    buf_adds(out, "{\"items\":[");
    for (size_t i = 0; i < take; i++) {
        if (i)
            buf_addc(out, ',');
        buf_add(out, p->items[i].json, p->items[i].len);
    }
    buf_adds(out, "],\"next_cursor\":");
    const char *next = p->n > take && take > 0 ? p->items[take - 1].cursor
                       : p->bounded ? p->bound_cursor
                       : p->more && take > 0 ? p->items[take - 1].cursor : NULL;
    if (next)
        buf_add_json_string(out, next, strlen(next));
    else
        buf_adds(out, "null");
    buf_addc(out, '}');
}

/* Digits only, 1..max of them; the value into *out. */
static int parse_digits(const char *s, size_t len, size_t max, int64_t *out)
{
    if (len == 0 || len > max)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');     /* at most 15 digits: no overflow */
    }
    *out = v;
    return 0;
}

int page_stream_id_parse(const char *s, size_t len, int64_t *ms, int64_t *seq)
{
    const char *dash = s ? memchr(s, '-', len) : NULL;
    if (!dash)
        return -1;
    size_t mlen = (size_t)(dash - s);
    return parse_digits(s, mlen, PAGE_MS_DIGITS, ms) == 0 &&
                   parse_digits(dash + 1, len - mlen - 1, PAGE_SEQ_DIGITS, seq) == 0
               ? 0 : -1;
}

bool page_id_cursor_valid(const char *s, const char *prefix, size_t code_len)
{
    size_t plen = strlen(prefix);
    if (strncmp(s, prefix, plen) != 0 || strlen(s) != plen + 15 + code_len)
        return false;
    for (size_t i = plen; i < plen + 15; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}
