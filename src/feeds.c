/* feeds.c — what the ministry pulls: the stock feed and the event feed.
 *
 * GET /v1/feeds/stock reads only the aggregates the market functions keep in the same atomic
 * step as every change (m:{M}:agg): its cost does not depend on how many offers and needs are
 * open. Its answer — body, weak ETag over the rows, Ed25519 content-signature — is built once
 * per (format, filters, visible regions) and kept with the aggregates' version (KEY_FEED_VERSION,
 * bumped behind every market change, market.c): a pull is then one GET of that version and
 * the cached bytes handed to evhttp by reference. An entry older than CACHE_MAX_AGE_MS is
 * built again anyway, so a version bump lost with a dying daemon costs at most that delay.
 *
 * GET /v1/feeds/events merges the markets' event streams by (stream id, market); its cursor
 * is the last item's id, stable across restarts. A page lists only what no later write can
 * sort before, judged on Redis's own clock, the one that stamps stream ids: TIME is read
 * first, then the streams, and only entries of an earlier millisecond are listed. Every write
 * after that TIME gets an id of its millisecond or later (XADD takes max(clock, last id + 1)),
 * and every entry of an earlier millisecond was written before it, so is in the reads that
 * follow. An entry held back (this very millisecond) is waited for, briefly, when the page
 * would otherwise end there: a change is listed as soon as its request has been answered.
 * No daemon's clock is involved, so daemons may disagree on the time. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "impactd/calls.h"
#include "impactd/buf.h"
#include "impactd/catalog.h"
#include "impactd/engine.h"
#include "impactd/feeds.h"
#include "impactd/handlers.h"
#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/page.h"
#include "impactd/problem.h"
#include "impactd/record.h"
#include "impactd/reply.h"
#include "impactd/request.h"
#include "impactd/router.h"
#include "impactd/server.h"
#include "impactd/signing.h"
#include "impactd/timeutil.h"
#include "impactd/validate.h"

/* A page that would end at entries of Redis's current millisecond waits for that millisecond
 * to pass and reads again, at most SETTLE_WAITS times, only for entries at most
 * SETTLE_WAIT_MAX_MS ahead (farther means Redis's clock stepped back: they are listed once
 * it has caught up, and meanwhile the page still hands out a cursor). */
#define SETTLE_WAITS 3
#define SETTLE_WAIT_MAX_MS 5
#define CACHE_MAX_AGE_MS 5000
#define CACHE_MAX_ENTRIES 256

static const char *const COLUMNS[] = { "offered_open", "needed_open", "needed_open_stat",
                                       "needed_open_asap", "allocated_in_flight",
                                       "shipped_in_flight", "received_total" };
#define NCOLUMNS (sizeof COLUMNS / sizeof COLUMNS[0])

/* ---- the stock feed's cache ---- */

void feed_body_unref(struct feed_body *b)
{
    if (b && --b->refs == 0) {
        free(b->body);
        free(b);
    }
}

static void feed_body_unref_any(void *v) { feed_body_unref(v); }

static void on_body_sent(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    feed_body_unref(arg);
}

int feeds_init(struct feeds *f) { return dict_init(&f->cache); }

void feeds_free(struct feeds *f) { dict_free(&f->cache, feed_body_unref_any); }

static void cache_put(struct feeds *f, const char *key, struct feed_body *b)
{
    if (f->cache.count >= CACHE_MAX_ENTRIES && !dict_get(&f->cache, key)) {
        dict_free(&f->cache, feed_body_unref_any);       /* more shapes than expected: start over */
        if (dict_init(&f->cache) != 0)
            return;
    }
    struct feed_body *old = dict_get(&f->cache, key);
    b->refs++;
    if (dict_set(&f->cache, key, b) != 0) {
        b->refs--;
        return;
    }
    feed_body_unref(old);
}

/* ---- the stock feed ---- */

struct stock_job {
    bool csv;
    const char *region, *product;   /* filters, borrowed from the query */
    char key[600];                  /* the cache key */
    long long version;
    long long *sums;                /* [region][product][column], owned */
    struct fanout fan;
};

static void stock_job_clear(void *v)
{
    free(((struct stock_job *)v)->sums);
}

static const struct req_state_type STOCK = { "stock feed", sizeof(struct stock_job),
                                             stock_job_clear };

/* Sends b: 304 when the client has it, else the bytes by reference, signed. */
void feed_body_send(struct req *r, struct feed_body *b)
{
    req_set_header(r, "ETag", b->etag);
    req_set_header(r, "Cache-Control", "private, no-cache");
    req_set_header(r, "Vary", "Accept, Authorization");
    const char *inm = req_header(r, "If-None-Match");
    if (inm && (strstr(inm, b->hex) || !strcmp(inm, "*"))) {
        reply_empty(r, 304);
        return;
    }
    req_set_header(r, "content-signature", b->signature);
    req_set_header(r, "content-signature-kid", b->kid);
    struct evbuffer *buf = evbuffer_new();
    b->refs++;
    if (!buf || evbuffer_add_reference(buf, b->body, b->len, on_body_sent, b) != 0) {
        b->refs--;
        if (buf)
            evbuffer_free(buf);
        reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    r->replied = true;
    req_transmit_buffer(r, 200, b->csv ? "text/csv; charset=utf-8; header=present"
                                       : "application/json; charset=utf-8", buf);
    evbuffer_free(buf);
}

static long long *sum_at(const struct catalog *cat, long long *sums, size_t ri, size_t pi,
                         size_t c)
{
    return &sums[(ri * cat->nproducts + pi) * NCOLUMNS + c];
}

/* The rows, as CSV or as the JSON document, into out; the rows alone into rows (ETag). */
static void stock_render(struct req *r, struct stock_job *j, struct evbuffer *out,
                         struct evbuffer *rows)
{
    const struct catalog *cat = &r->srv->catalog;
    if (j->csv) {
        evbuffer_add_printf(out, "region,product,unit");
        for (size_t c = 0; c < NCOLUMNS; c++)
            evbuffer_add_printf(out, ",%s", COLUMNS[c]);
        evbuffer_add_printf(out, ",coverage\r\n");
    }
    size_t n = 0;
    for (size_t ri = 0; ri < cat->nregions; ri++) {
        const char *region = cat->regions[ri].code;
        if ((j->region && strcmp(j->region, region)) || !principal_sees_region(&r->who, region))
            continue;
        for (size_t pi = 0; pi < cat->nproducts; pi++) {
            const struct product *p = &cat->products[pi];
            if (j->product && strcmp(j->product, p->id))
                continue;
            const long long *v = sum_at(cat, j->sums, ri, pi, 0);
            char coverage[40] = "";
            if (v[1] > 0)
                snprintf(coverage, sizeof coverage, "%.15g", (double)v[0] / (double)v[1]);
            /* region codes, product ids and units are slugs (catalog.c): nothing to escape */
            if (j->csv) {
                evbuffer_add_printf(rows, "%s,%s,%s", region, p->id, p->unit);
                for (size_t c = 0; c < NCOLUMNS; c++)
                    evbuffer_add_printf(rows, ",%lld", v[c]);
                evbuffer_add_printf(rows, ",%s\r\n", coverage);
            } else {
                evbuffer_add_printf(rows, "%s{\"region\":\"%s\",\"product\":\"%s\",\"unit\":\"%s\"",
                                    n ? "," : "", region, p->id, p->unit);
                for (size_t c = 0; c < NCOLUMNS; c++)
                    evbuffer_add_printf(rows, ",\"%s\":%lld", COLUMNS[c], v[c]);
                evbuffer_add_printf(rows, ",\"coverage\":%s}", coverage[0] ? coverage : "null");
            }
            n++;
        }
    }
    if (!j->csv) {
        char ts[RFC3339_LEN];
        time_format_rfc3339(time_now_ms(), ts);
        evbuffer_add_printf(out, "{\"generated_at\":\"%s\",\"rows\":[", ts);
    }
    evbuffer_add_buffer_reference(out, rows);
    if (!j->csv)
        evbuffer_add(out, "]}", 2);
}

static struct feed_body *stock_build(struct req *r, struct stock_job *j)
{
    struct evbuffer *out = evbuffer_new(), *rows = evbuffer_new();
    if (!out || !rows) {
        if (out)
            evbuffer_free(out);
        if (rows)
            evbuffer_free(rows);
        return NULL;
    }
    stock_render(r, j, out, rows);
    struct feed_body *b = feed_body_new(r, j->csv, out, rows);
    if (b)
        b->version = j->version;
    evbuffer_free(rows);
    evbuffer_free(out);
    return b;
}

struct feed_body *feed_body_new(struct req *r, bool csv, struct evbuffer *out,
                                struct evbuffer *rows)
{
    struct feed_body *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    size_t rlen = evbuffer_get_length(rows);
    const unsigned char *rtext = evbuffer_pullup(rows, -1);
    unsigned char d[16];
    crypto_generichash_state gs;
    crypto_generichash_init(&gs, NULL, 0, sizeof d);
    crypto_generichash_update(&gs, (const unsigned char *)(csv ? "csv:" : "json"), 4);
    if (rlen)
        crypto_generichash_update(&gs, rtext, rlen);
    crypto_generichash_final(&gs, d, sizeof d);
    sodium_bin2hex(b->hex, sizeof b->hex, d, sizeof d);
    snprintf(b->etag, sizeof b->etag, "W/\"%s\"", b->hex);
    b->len = evbuffer_get_length(out);
    b->body = malloc(b->len ? b->len : 1);
    if (!b->body || evbuffer_remove(out, b->body, b->len) != (int)b->len)
        goto fail;
    const struct signing_key *k = &r->srv->signing.keys[0];
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)b->body, b->len, k->sk);
    char b64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    snprintf(b->signature, sizeof b->signature, "v1a,%s", b64);
    snprintf(b->kid, sizeof b->kid, "%s", k->kid);
    b->csv = csv;
    b->built_ms = time_now_ms();
    b->refs = 1;
    return b;
fail:
    free(b->body);
    free(b);
    return NULL;
}

static void on_agg(struct req *r, size_t market, redisReply *reply)
{
    (void)market;
    struct stock_job *j = r->state;
    const struct catalog *cat = &r->srv->catalog;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements; i += 2) {
        const redisReply *kf = reply->element[i], *vf = reply->element[i + 1];
        long long v;
        char region[REGION_CODE_LEN + 1], product[80], column[40];
        if (kf->type != REDIS_REPLY_STRING || vf->type != REDIS_REPLY_STRING ||
            json_parse_ll(vf->str, &v) != 0 ||
            sscanf(kf->str, "%4[^|]|%79[^|]|%39s", region, product, column) != 3)
            continue;
        const struct region *rg = catalog_region(cat, region);
        const struct product *p = catalog_product(cat, product);
        size_t c = 0;
        while (c < NCOLUMNS && strcmp(COLUMNS[c], column))
            c++;
        if (rg && p && c < NCOLUMNS)
            *sum_at(cat, j->sums, (size_t)(rg - cat->regions), (size_t)(p - cat->products), c) = v;
    }
}

static void on_aggs_done(struct req *r)
{
    struct stock_job *j = r->state;
    struct feed_body *b = stock_build(r, j);
    if (!b) {
        reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    cache_put(&r->srv->feeds, j->key, b);
    feed_body_send(r, b);
    feed_body_unref(b);
}

static void on_version(struct req *r, enum store_status st, redisReply *reply)
{
    struct stock_job *j = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    long long v = 0;
    if (reply->type == REDIS_REPLY_STRING && json_parse_ll(reply->str, &v) != 0)
        v = 0;
    j->version = v;
    struct feed_body *b = dict_get(&r->srv->feeds.cache, j->key);
    if (b && b->version == v && time_now_ms() - b->built_ms < CACHE_MAX_AGE_MS) {
        feed_body_send(r, b);
        return;
    }
    const struct catalog *cat = &r->srv->catalog;
    j->sums = calloc(cat->nregions * cat->nproducts * NCOLUMNS + 1, sizeof *j->sums);
    if (!j->sums) {
        reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    const struct product *p = j->product ? catalog_product(cat, j->product) : NULL;
    fanout_begin(&j->fan, on_agg, on_aggs_done);
    for (size_t i = 0; i < cat->nmarkets; i++) {
        if (p && p->market != i)
            continue;
        struct cmd c;
        cmd_init(&c);
        cmd_add(&c, "HGETALL");
        store_key(&r->srv->store, &c, KEY_MARKET, cat->markets[i].id, MKEY_AGG);
        fanout_send(r, &j->fan, i, &c);
    }
    fanout_end(r, &j->fan);
}

/* JSON unless ?format=csv, or an Accept that prefers text/csv; adds a fault when ?format is
 * neither. */
static bool wants_csv(struct req *r, json_t *errors)
{
    const char *format = req_query(r, "format");
    if (format) {
        if (strcasecmp(format, "csv") && strcasecmp(format, "json"))
            problem_errors_add(errors, "format", "must be json or csv");
        return !strcasecmp(format, "csv");
    }
    const char *accept = req_header(r, "Accept");
    return accept && strcasestr(accept, "text/csv") &&
           (!strcasestr(accept, "application/json") ||
            strcasestr(accept, "text/csv") < strcasestr(accept, "application/json"));
}

bool feed_filters_read(struct req *r, json_t *errors, struct feed_filters *out)
{
    const struct catalog *cat = &r->srv->catalog;
    out->region = req_query(r, "region");
    out->product = req_query(r, "product");
    if (out->region && !catalog_region(cat, out->region))
        problem_errors_add(errors, "region", "is not a region code of the catalogue");
    if (out->product && !catalog_product(cat, out->product))
        problem_errors_add(errors, "product", "is not a product of the catalogue");
    out->csv = wants_csv(r, errors);
    if (reply_if_invalid(r, errors))
        return false;
    if (out->region && !principal_sees_region(&r->who, out->region)) {
        reply_problem(r, 403, NULL, "this token may not see that region");
        return false;
    }
    return true;
}

void feeds_stock(struct req *r)
{
    struct feed_filters f;
    if (!feed_filters_read(r, problem_errors_new(), &f))
        return;
    const char *region = f.region, *product = f.product;
    bool csv = f.csv;
    struct stock_job *j = req_state(r, &STOCK);
    if (!j)
        return;
    j->csv = csv;
    j->region = region;
    j->product = product;
    char *regions = r->who.role == ROLE_MINISTRY && r->who.regions
                        ? json_dump_compact(r->who.regions) : NULL;
    snprintf(j->key, sizeof j->key, "%s|%s|%s|%s", csv ? "csv" : "json", region ? region : "",
             product ? product : "", regions ? regions : "*");
    free(regions);
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "GET");
    store_key(&r->srv->store, &c, KEY_FEED_VERSION);
    req_send(r, &c, on_version);
}

/* ---- events ---- */

struct events_job {
    struct page page;
    struct buf item;        /* scratch: one item's JSON */
    struct fanout fan;
    bool gone;              /* the cursor points before what a stream still holds */
    long long cms, cseq;    /* the cursor, when given */
    size_t cmarket;
    bool has_cursor;
    long long ams, aseq;    /* the client's cursor, to read again from after a wait */
    size_t amarket;
    bool has_after;
    unsigned rounds;        /* fetches made for this page */
    bool bounded;           /* a market had more than it answered: the page ends there */
    long long bms, bseq;    /* ... at this position (the smallest such) */
    size_t bmarket;
    long long now_ms;       /* Redis's TIME before this read: entries from it on are held */
    bool held;              /* a market has entries from now_ms on */
    long long held_ms;      /* ... the earliest of them */
    unsigned waits;
    struct event *wait;     /* owned: the timer of a wait for Redis's clock */
    int64_t limit;
};

static void events_job_clear(void *v)
{
    struct events_job *j = v;
    page_free(&j->page);
    buf_free(&j->item);
    if (j->wait)
        event_free(j->wait);
}

static const struct req_state_type EVENTS = { "event feed", sizeof(struct events_job),
                                              events_job_clear };

/* "<ms>-<seq>-<market code>": a strict stream id (page_stream_id_parse), then the code of a
 * market of the catalogue. */
static int cursor_parse(const struct catalog *cat, const char *s, long long *ms, long long *seq,
                        size_t *market)
{
    const char *dash = s ? strrchr(s, '-') : NULL;
    int64_t m, q;
    if (!dash || strlen(dash + 1) != MARKET_CODE_LEN ||
        page_stream_id_parse(s, (size_t)(dash - s), &m, &q) != 0)
        return -1;
    for (size_t i = 0; i < cat->nmarkets; i++)
        if (!strcmp(cat->markets[i].code, dash + 1)) {
            *ms = m;
            *seq = q;
            *market = i;
            return 0;
        }
    return -1;
}

/* Sort key of a position: fixed-width, so that strings sort as positions do. */
static void position_key(long long ms, long long seq, size_t market, char key[PAGE_KEY_LEN])
{
    snprintf(key, PAGE_KEY_LEN, "%015lld-%012lld-%05zu", ms, seq, market);
}

static void events_read(struct req *r);
static void events_fetch(struct req *r, struct events_job *j);

static const struct resource *event_resource(const char *type)
{
    return !strncmp(type, "offer.", 6) ? &RESOURCE_OFFER
           : !strncmp(type, "need.", 5) ? &RESOURCE_NEED
           : !strncmp(type, "allocation.", 11) ? &RESOURCE_ALLOCATION : NULL;
}

/* One stream entry [id, [field, value...]] into the page, when this token may see it. */
static void feed_event_add(struct req *r, struct events_job *j, size_t market, long long ms,
                           long long seq, const redisReply *fields)
{
    const struct catalog *cat = &r->srv->catalog;
    const struct market *m = &cat->markets[market];
    const char *type = store_entry_field(fields, "t", NULL);
    size_t dlen = 0;
    const char *d = store_entry_field(fields, "d", &dlen);
    const struct resource *res = type ? event_resource(type) : NULL;
    struct record rec;
    if (!res || !d || record_decode(&rec, d, dlen) != 0) {
        if (res && d)
            record_release(&rec);
        return;
    }
    if (engine_visible(&r->who, res, &rec)) {
        char oid[ID_MAX_LEN], cursor[PAGE_KEY_LEN], key[PAGE_KEY_LEN];
        const char *given = store_entry_field(fields, "i", NULL);
        if (given)
            snprintf(oid, sizeof oid, "%s", given);
        else
            id_of_event(res->prefix, ms, seq, m->code, oid);
        snprintf(cursor, sizeof cursor, "%lld-%lld-%s", ms, seq, m->code);
        position_key(ms, seq, market, key);
        struct buf *item = &j->item;
        buf_reset(item);
        buf_adds(item, "{\"id\":\"");
        buf_adds(item, cursor);
        buf_adds(item, "\",\"type\":");
        buf_add_json_string(item, type, strlen(type));
        buf_adds(item, ",\"kind\":\"");
        buf_adds(item, res->name);
        buf_adds(item, "\",\"timestamp\":\"");
        buf_add_time(item, ms);
        buf_adds(item, "\",\"data\":");
        record_json(res, oid, &rec, cat, item);
        buf_addc(item, '}');
        if (item->failed || page_add(&j->page, key, cursor, item->data, item->len) != 0)
            j->fan.failed = true;
    }
    record_release(&rec);
}

static void on_stream_part(struct req *r, size_t market, redisReply *reply)
{
    struct events_job *j = r->state;
    if (reply->type != REDIS_REPLY_ARRAY)
        return;
    size_t examined = 0;
    long long last_ms = 0, last_seq = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        long long ms, seq;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            sscanf(e->element[0]->str, "%lld-%lld", &ms, &seq) != 2)
            break;
        if (ms >= j->now_ms) {
            /* a write after TIME may still sort before it: held, the rest of it too */
            if (!j->held || ms < j->held_ms)
                j->held_ms = ms;
            j->held = true;
            j->page.more = true;
            break;
        }
        examined++;
        last_ms = ms;
        last_seq = seq;
        feed_event_add(r, j, market, ms, seq, e->element[1]);
    }
    /* a full answer: this market has more after its last entry */
    if (examined == (size_t)j->limit + 1) {
        bool smaller = !j->bounded || last_ms < j->bms ||
                       (last_ms == j->bms && (last_seq < j->bseq ||
                                              (last_seq == j->bseq && market < j->bmarket)));
        if (smaller) {
            j->bounded = true;
            j->bms = last_ms;
            j->bseq = last_seq;
            j->bmarket = market;
        }
    }
}

static void on_settle_wait(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct req *r = arg;
    if (!r->replied)
        events_read(r);
    req_release(r);
}

/* The page would end at entries held back: read again from the client's cursor once Redis's
 * clock has passed them. Returns false (answer now) when that is not worth a wait. */
static bool events_wait(struct req *r, struct events_job *j)
{
    long long ahead = j->held_ms - j->now_ms;
    if (!j->held || j->bounded || j->page.n >= (size_t)j->limit || j->waits >= SETTLE_WAITS ||
        ahead < 0 || ahead >= SETTLE_WAIT_MAX_MS)
        return false;
    if (!j->wait)
        j->wait = evtimer_new(r->srv->base, on_settle_wait, r);
    struct timeval tv = { 0, (ahead + 1) * 1000 };
    if (!j->wait || evtimer_add(j->wait, &tv) != 0)
        return false;
    j->waits++;
    page_free(&j->page);
    j->has_cursor = j->has_after;
    j->cms = j->ams;
    j->cseq = j->aseq;
    j->cmarket = j->amarket;
    j->rounds = 0;
    req_hold(r);                /* released by on_settle_wait */
    return true;
}

static void on_events_done(struct req *r)
{
    struct events_job *j = r->state;
    const struct catalog *cat = &r->srv->catalog;
    if (j->gone) {
        reply_problem(r, 410, NULL, "events after this cursor are no longer retained "
                      "(events_retention); start again without a cursor");
        return;
    }
    if (j->bounded) {
        char key[PAGE_KEY_LEN], cursor[PAGE_KEY_LEN];
        position_key(j->bms, j->bseq, j->bmarket, key);
        snprintf(cursor, sizeof cursor, "%lld-%lld-%s", j->bms, j->bseq,
                 cat->markets[j->bmarket].code);
        page_bound(&j->page, key, cursor);
    }
    size_t eligible = page_settle(&j->page);
    if (j->bounded && eligible < (size_t)j->limit && j->rounds < 16) {
        /* too little this token may see up to the bound: keep it, read on from there */
        j->page.bounded = false;
        j->has_cursor = true;
        j->cms = j->bms;
        j->cseq = j->bseq;
        j->cmarket = j->bmarket;
        j->bounded = false;
        events_fetch(r, j);
        return;
    }
    if (events_wait(r, j))
        return;
    struct buf body;
    buf_init(&body);
    page_body(&j->page, (size_t)j->limit, &body);
    if (body.failed)
        reply_problem(r, 500, NULL, "out of memory");
    else
        reply_raw(r, 200, "application/json; charset=utf-8", body.data, body.len);
    buf_free(&body);
}

/* XINFO STREAM: gone when the stream was trimmed (entries-added > length) and its oldest
 * entry kept comes after the cursor — entries between the two may have been lost. (Redis
 * moves max-deleted-entry-id on XDEL only, not on trimming, so it cannot tell.) */
static void on_stream_info(struct req *r, size_t market, redisReply *reply)
{
    (void)market;
    struct events_job *j = r->state;
    if (reply->type != REDIS_REPLY_ARRAY)
        return;     /* no such stream yet: nothing was trimmed */
    long long length = -1, added = -1, fms = -1, fseq = -1;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type != REDIS_REPLY_STRING)
            continue;
        if (!strcmp(k->str, "length") && v->type == REDIS_REPLY_INTEGER)
            length = v->integer;
        else if (!strcmp(k->str, "entries-added") && v->type == REDIS_REPLY_INTEGER)
            added = v->integer;
        else if (!strcmp(k->str, "first-entry") && v->type == REDIS_REPLY_ARRAY &&
                 v->elements >= 1 && v->element[0]->type == REDIS_REPLY_STRING &&
                 sscanf(v->element[0]->str, "%lld-%lld", &fms, &fseq) != 2)
            fms = -1;
    }
    if (added > length && length >= 0 && fms >= 0 &&
        (fms > j->cms || (fms == j->cms && fseq > j->cseq + 1)))
        j->gone = true;
}

static void on_infos_done(struct req *r)
{
    events_read(r);
}

void feeds_events(struct req *r)
{
    const struct catalog *cat = &r->srv->catalog;
    const char *after = req_query(r, "after");
    long long ms = 0, seq = 0;
    size_t cmarket = 0;
    int64_t limit;
    json_t *errors = problem_errors_new();
    if (after && cursor_parse(cat, after, &ms, &seq, &cmarket) != 0)
        problem_errors_add(errors, "after", "is not a cursor this server issued");
    if (validate_query_int(req_query(r, "limit"), 1, 500, 100, &limit) != 0)
        problem_errors_add(errors, "limit", "must be an integer between 1 and 500");
    if (reply_if_invalid(r, errors))
        return;
    struct events_job *j = req_state(r, &EVENTS);
    if (!j)
        return;
    page_init(&j->page);
    j->limit = limit;
    j->cms = j->ams = ms;
    j->cseq = j->aseq = seq;
    j->cmarket = j->amarket = cmarket;
    j->has_cursor = j->has_after = after != NULL;
    if (!after) {
        events_read(r);
        return;
    }
    fanout_begin(&j->fan, on_stream_info, on_infos_done);
    for (size_t i = 0; i < cat->nmarkets; i++) {
        struct cmd c;
        cmd_init(&c);
        store_key(&r->srv->store, &c, KEY_MARKET, cat->markets[i].id, MKEY_EVENTS);
        fanout_fcall(r, &j->fan, i, FN_STREAM_INFO, 1, &c);
    }
    fanout_end(r, &j->fan);
}

/* TIME answers [seconds, microseconds]. */
static void on_redis_time(struct req *r, enum store_status st, redisReply *reply)
{
    struct events_job *j = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    long long sec, usec;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING ||
        json_parse_ll(reply->element[0]->str, &sec) != 0 ||
        json_parse_ll(reply->element[1]->str, &usec) != 0) {
        reply_store_failure(r, STORE_OK, reply);
        return;
    }
    j->now_ms = sec * 1000 + usec / 1000;
    j->held = false;
    events_fetch(r, j);
}

/* A read of the page: Redis's TIME first (its answer bounds what may be listed, and holds for
 * every later fetch of this page: what came before it is complete), then the streams. With
 * Redis Cluster each node stamps its markets' ids with its own clock: TIME is read on each
 * node and the page's bound is the earliest of them. */
static void events_read(struct req *r)
{
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "TIME");
    req_send(r, &c, on_redis_time);
}

/* One XRANGE per market from the job's cursor. */
static void events_fetch(struct req *r, struct events_job *j)
{
    const struct catalog *cat = &r->srv->catalog;
    j->rounds++;
    fanout_begin(&j->fan, on_stream_part, on_events_done);
    for (size_t i = 0; i < cat->nmarkets; i++) {
        struct cmd c;
        cmd_init(&c);
        cmd_add(&c, "XRANGE");
        store_key(&r->srv->store, &c, KEY_MARKET, cat->markets[i].id, MKEY_EVENTS);
        if (!j->has_cursor)
            cmd_add(&c, "-");
        else if (i > j->cmarket)    /* later in the merge order at the same stream id */
            cmd_addf(&c, "%lld-%lld", j->cms, j->cseq);
        else
            cmd_addf(&c, "(%lld-%lld", j->cms, j->cseq);
        cmd_add(&c, "+");
        cmd_add(&c, "COUNT");
        cmd_addll(&c, j->limit + 1);
        fanout_send(r, &j->fan, i, &c);
    }
    fanout_end(r, &j->fan);
}
