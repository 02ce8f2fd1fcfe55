/* feeds.h — the state the ministry's feeds keep between requests: the stock feed's built
 * answers, by (format, filters, visible regions), with the aggregates' version they were
 * built from (feeds.c). The handlers themselves are in handlers.h. */
#ifndef IMPACTD_FEEDS_H
#define IMPACTD_FEEDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dict.h"
#include "signing.h"

struct evbuffer;
struct req;

struct feeds {
    struct dict cache;              /* key -> struct feed_body * (refcounted) */
};

int feeds_init(struct feeds *f) __attribute__((warn_unused_result));
void feeds_free(struct feeds *f);

/* One built feed answer, as every signed feed sends it (stock, outcomes): the body, a weak
 * ETag over its rows, the Ed25519 content-signature. Shared by the cache and every reply
 * still sending it (refs). */
struct feed_body {
    unsigned refs;
    long long version;
    int64_t built_ms;
    bool csv;
    char *body;                 /* owned */
    size_t len;
    char etag[40];              /* W/"<hex>" */
    char hex[33];
    char signature[SIGNING_SIG_LEN];
    char kid[KID_LEN];
};
/* The body of out (which it drains), its ETag over the bytes of rows (the rows alone, so
 * that a generated_at does not change it), signed with the current key; refs 1. NULL when
 * out of memory. */
struct feed_body *feed_body_new(struct req *r, bool csv, struct evbuffer *out,
                                struct evbuffer *rows);
void feed_body_unref(struct feed_body *b);
/* Answers with b: 304 when If-None-Match has it, else 200 with the bytes by reference. */
void feed_body_send(struct req *r, struct feed_body *b);
/* The filters every signed feed takes: ?region= (a catalogue code the token may see),
 * ?product=, and the format (JSON unless ?format=csv, or an Accept that prefers text/csv).
 * Faults go to errors (which may hold the caller's own already); then answers 422 for any
 * fault, or 403 for a region outside a regional token's, and returns false. */
struct feed_filters {
    const char *region, *product;   /* borrowed from the query; NULL when absent */
    bool csv;
};
bool feed_filters_read(struct req *r, json_t *errors, struct feed_filters *out);

#endif
