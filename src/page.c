/* page.c — merging ordered parts into one page and cutting it (page.h). Used by the lists of
 * offers, needs and allocations (one part per market) and by the event feed (one per
 * market's stream). Owns only the items it was given. */
#include "impactd/page.h"

#include <stdlib.h>
#include <string.h>

void page_init(struct page *p) { memset(p, 0, sizeof *p); }

void page_free(struct page *p)
{
    for (size_t i = 0; i < p->n; i++)
        json_decref(p->items[i].item);
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

int page_add(struct page *p, const char *key, const char *cursor, json_t *item)
{
    if (!item)
        return -1;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct page_item *grown = realloc(p->items, cap * sizeof *grown);
        if (!grown) {
            json_decref(item);
            return -1;
        }
        p->items = grown;
        p->cap = cap;
    }
    struct page_item *it = &p->items[p->n++];
    copy_key(it->key, key);
    copy_key(it->cursor, cursor);
    it->item = item;
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
            json_decref(p->items[i].item);
        p->n = keep;
    }
    return p->n;
}

json_t *page_take(struct page *p, size_t limit, char next[PAGE_KEY_LEN])
{
    json_t *items = json_array();
    size_t take = p->n < limit ? p->n : limit;
    next[0] = '\0';
    for (size_t i = 0; i < take; i++) {
        if (items)
            json_array_append(items, p->items[i].item);
    }
    if (p->n > take && take > 0)
        copy_key(next, p->items[take - 1].cursor);
    else if (p->bounded)
        copy_key(next, p->bound_cursor);
    return items;
}
