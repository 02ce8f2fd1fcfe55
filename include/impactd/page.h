/* page.h — one page out of several ordered parts (markets, streams): merge, then cut.
 *
 * Each part answers its items in order, up to the page's limit, and says where it stopped
 * when it did not reach its end. Nothing after the earliest such stop is known yet, so the
 * page ends there: items are sorted by key, those after the bound are left out, the first
 * `limit` are the page, and the next cursor is the last one taken (or the bound). Keys sort
 * as strings; a cursor is what the client sends back for that position. Items are JSON
 * text, so a page is written straight into its body.
 *
 * The cursors themselves are checked here too, strictly, before anything reaches Redis: a
 * client's cursor is either one this server could have issued or a 422 (never a Redis error
 * answered 5xx). */
#ifndef IMPACTD_PAGE_H
#define IMPACTD_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PAGE_KEY_LEN 64

struct page_item {
    char key[PAGE_KEY_LEN];
    char cursor[PAGE_KEY_LEN];
    char *json;                     /* owned */
    size_t len;
};

struct page {
    struct page_item *items;        /* owned */
    size_t n, cap;
    bool bounded;
    bool more;                      /* items exist after all those added (not yet listable):
                                       a page that is not the end, so it hands out a cursor */
    char bound_key[PAGE_KEY_LEN];
    char bound_cursor[PAGE_KEY_LEN];
};

void page_init(struct page *p);
void page_free(struct page *p);
/* Adds an item (its JSON text is copied). Returns -1 when memory runs out. */
int page_add(struct page *p, const char *key, const char *cursor, const char *json, size_t len)
    __attribute__((warn_unused_result));
/* A part stopped at key without reaching its end; the earliest such stop bounds the page. */
void page_bound(struct page *p, const char *key, const char *cursor);
/* Sorts and drops what comes after the bound; returns how many items are left. */
size_t page_settle(struct page *p);
/* After page_settle: the list body {"items": [the first `limit`], "next_cursor": ... | null}
 * appended to out. */
void page_body(const struct page *p, size_t limit, struct buf *out);

/* The largest parts of a stream id a cursor may carry: 15 and 12 decimal digits. Redis hands
 * out far smaller ones for centuries (ms since 1970, a sequence within one ms), and a
 * position key holds exactly these widths. */
#define PAGE_MS_DIGITS 15
#define PAGE_SEQ_DIGITS 12
/* Parses the len bytes at s as a stream id "<ms>-<seq>": decimal digits only, no sign, no
 * spaces, each part 1..PAGE_*_DIGITS digits. Returns 0, or -1 for anything else. */
int page_stream_id_parse(const char *s, size_t len, int64_t *ms, int64_t *seq)
    __attribute__((warn_unused_result));
/* True when s is an object id usable as a list cursor: prefix, the 11 + 4 lowercase hex
 * digits of its creation event's stream id, then code_len more characters (the market's code,
 * which the caller checks against the catalogue). */
bool page_id_cursor_valid(const char *s, const char *prefix, size_t code_len);

#endif
