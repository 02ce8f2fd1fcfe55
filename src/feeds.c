/* feeds.c — what the ministry pulls: the stock feed and the event feed.
 *
 * GET /v1/feeds/stock reads only the aggregates the market scripts keep in the same atomic
 * step as every change (m:{M}:agg), one HGETALL per market: its cost does not depend on how
 * many offers and needs are open. The body is signed (content-signature) and carries a weak
 * ETag over the rows. GET /v1/feeds/events merges the markets' event streams by (stream id,
 * market code); its cursor is the last item's id, stable across restarts. Events of the last
 * second are held back, so an event written later can never sort before a cursor given out. */
#include <event2/event.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "impactd/catalog.h"
#include "impactd/handlers.h"
#include "impactd/http.h"
#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/problem.h"
#include "impactd/records.h"
#include "impactd/router.h"
#include "impactd/server.h"
#include "impactd/signing.h"
#include "impactd/timeutil.h"
#include "impactd/validate.h"

#define SETTLE_MS 1000

static const char *const COLUMNS[] = { "offered_open", "needed_open", "needed_open_stat",
                                       "needed_open_asap", "allocated_in_flight",
                                       "shipped_in_flight", "received_total" };
#define NCOLUMNS (sizeof COLUMNS / sizeof COLUMNS[0])

/* ---- stock ---- */

struct stock_job {
    json_t *sums;           /* "<region>|<product>|<column>" -> integer, from every market */
    size_t waiting;
    bool failed;
    enum store_status status;
    bool csv;
};

static void stock_job_free(void *v)
{
    struct stock_job *j = v;
    json_decref(j->sums);
    free(j);
}

static long long stock_value(const struct stock_job *j, const char *region, const char *product,
                             const char *column)
{
    char key[160];
    snprintf(key, sizeof key, "%s|%s|%s", region, product, column);
    return (long long)json_integer_value(json_object_get(j->sums, key));
}

/* Sends body signed, with ETag and caching headers (or 304). */
static void reply_signed(struct req *r, const char *ctype, const char *body, size_t len,
                         const char *etag_src, size_t etag_len)
{
    unsigned char d[16];
    char hex[33], etag[40];
    crypto_generichash(d, sizeof d, (const unsigned char *)etag_src, etag_len, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    snprintf(etag, sizeof etag, "W/\"%s\"", hex);
    http_set_header(r, "ETag", etag);
    http_set_header(r, "Cache-Control", "private, no-cache");
    http_set_header(r, "Vary", "Accept, Authorization");
    const char *inm = http_header(r, "If-None-Match");
    if (inm && (strstr(inm, hex) || !strcmp(inm, "*"))) {
        http_reply_empty(r, 304);
        return;
    }
    const struct signing_key *k = &r->srv->signing.keys[0];
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)body, len, k->sk);
    char b64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    char header[sizeof b64 + 8];
    snprintf(header, sizeof header, "v1a,%s", b64);
    http_set_header(r, "content-signature", header);
    http_set_header(r, "content-signature-kid", k->kid);
    http_reply_raw(r, 200, ctype, body, len);
}

static void stock_finish(struct req *r, struct stock_job *j)
{
    const struct catalog *cat = &r->srv->catalog;
    const char *only_region = http_query(r, "region"), *only_product = http_query(r, "product");
    json_t *rows = json_array();
    char *text = NULL;
    size_t len = 0;
    /* CSV is built as we go; JSON rows too; the ETag covers the rows only. */
    size_t cap = 256 + cat->nregions * cat->nproducts * 160, k = 0;
    char *out = j->csv ? malloc(cap) : NULL;
    if (j->csv && !out) {
        json_decref(rows);
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    if (out)
        k += (size_t)snprintf(out, cap, "region,product,unit,offered_open,needed_open,"
                              "needed_open_stat,needed_open_asap,allocated_in_flight,"
                              "shipped_in_flight,received_total,coverage\r\n");
    for (size_t ri = 0; ri < cat->nregions; ri++) {
        const char *region = cat->regions[ri].code;
        if ((only_region && strcmp(only_region, region)) || !principal_sees_region(&r->who, region))
            continue;
        for (size_t pi = 0; pi < cat->nproducts; pi++) {
            const struct product *p = &cat->products[pi];
            if (only_product && strcmp(only_product, p->id))
                continue;
            long long v[NCOLUMNS];
            for (size_t c = 0; c < NCOLUMNS; c++)
                v[c] = stock_value(j, region, p->id, COLUMNS[c]);
            json_t *row = json_pack("{s:s, s:s, s:s}", "region", region, "product", p->id,
                                    "unit", p->unit);
            for (size_t c = 0; c < NCOLUMNS; c++)
                json_object_set_new(row, COLUMNS[c], json_integer(v[c]));
            json_object_set_new(row, "coverage",
                                v[1] > 0 ? json_real((double)v[0] / (double)v[1]) : json_null());
            json_array_append_new(rows, row);
            if (out) {
                k += (size_t)snprintf(out + k, cap - k, "%s,%s,%s", region, p->id, p->unit);
                for (size_t c = 0; c < NCOLUMNS; c++)
                    k += (size_t)snprintf(out + k, cap - k, ",%lld", v[c]);
                if (v[1] > 0)
                    k += (size_t)snprintf(out + k, cap - k, ",%.15g\r\n", (double)v[0] / (double)v[1]);
                else
                    k += (size_t)snprintf(out + k, cap - k, ",\r\n");
            }
        }
    }
    char *rows_text = json_dumps(rows, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (!rows_text) {
        free(out);
        json_decref(rows);
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    char *etag_src = NULL;
    size_t etag_len = strlen(rows_text) + 8;
    etag_src = malloc(etag_len);
    if (etag_src)
        snprintf(etag_src, etag_len, "%s%s", j->csv ? "csv:" : "json", rows_text);
    if (j->csv) {
        text = out;
        len = k;
    } else {
        char ts[RFC3339_LEN];
        time_format_rfc3339(time_now_ms(), ts);
        json_t *doc = json_pack("{s:s, s:o}", "generated_at", ts, "rows", rows);
        rows = NULL;
        text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
        json_decref(doc);
        len = text ? strlen(text) : 0;
    }
    json_decref(rows);
    if (!text || !etag_src) {
        free(text);
        free(etag_src);
        free(rows_text);
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    reply_signed(r, j->csv ? "text/csv; charset=utf-8; header=present"
                           : "application/json; charset=utf-8",
                 text, len, etag_src, strlen(etag_src));
    free(text);
    free(etag_src);
    free(rows_text);
}

static void on_agg(struct req *r, enum store_status st, redisReply *reply)
{
    struct stock_job *j = r->ctx;
    j->waiting--;
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY) {
        j->failed = true;
        j->status = st;
    } else {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *kf = reply->element[i], *vf = reply->element[i + 1];
            long long v;
            if (kf->type == REDIS_REPLY_STRING && vf->type == REDIS_REPLY_STRING &&
                json_parse_ll(vf->str, &v) == 0)
                json_object_set_new(j->sums, kf->str, json_integer(v));
        }
    }
    if (j->waiting)
        return;
    if (j->failed) {
        http_reply_store_failure(r, j->status == STORE_OK ? STORE_DOWN : j->status, NULL);
        return;
    }
    stock_finish(r, j);
}

/* JSON unless ?format=csv, or an Accept that prefers text/csv; 0, or -1 when answered. */
static int stock_format(struct req *r, bool *csv)
{
    const char *format = http_query(r, "format");
    if (format) {
        if (strcasecmp(format, "csv") && strcasecmp(format, "json")) {
            json_t *errors = problem_errors_new();
            problem_errors_add(errors, "format", "must be json or csv");
            http_reply_invalid(r, errors);
            return -1;
        }
        *csv = !strcasecmp(format, "csv");
        return 0;
    }
    const char *accept = http_header(r, "Accept");
    *csv = accept && strcasestr(accept, "text/csv") &&
           (!strcasestr(accept, "application/json") ||
            strcasestr(accept, "text/csv") < strcasestr(accept, "application/json"));
    return 0;
}

void feeds_stock(struct req *r)
{
    const struct catalog *cat = &r->srv->catalog;
    json_t *errors = problem_errors_new();
    const char *region = http_query(r, "region"), *product = http_query(r, "product");
    if (region && !catalog_region(cat, region))
        problem_errors_add(errors, "region", "is not a region code of the catalogue");
    if (product && !catalog_product(cat, product))
        problem_errors_add(errors, "product", "is not a product of the catalogue");
    if (json_array_size(errors)) {
        http_reply_invalid(r, errors);
        return;
    }
    json_decref(errors);
    if (region && !principal_sees_region(&r->who, region)) {
        http_reply_problem(r, 403, NULL, "this token may not see that region");
        return;
    }
    struct stock_job *j = calloc(1, sizeof *j);
    if (!j || !(j->sums = json_object())) {
        free(j);
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    r->ctx = j;
    r->ctx_free = stock_job_free;
    if (stock_format(r, &j->csv) != 0)
        return;
    const struct product *p = product ? catalog_product(cat, product) : NULL;
    for (size_t i = 0; i < cat->nmarkets; i++) {
        if (p && p->market != i)
            continue;
        struct cmd c;
        cmd_init(&c);
        cmd_add(&c, "HGETALL");
        store_key(&r->srv->store, &c, KEY_MARKET, cat->markets[i].id, MKEY_AGG);
        j->waiting++;
        http_store_send(r, &c, on_agg);
    }
}

/* ---- events ---- */

struct events_job {
    json_t *items;          /* [ [ms, seq, market index, item], ... ] */
    size_t waiting;
    bool failed;
    bool gone;              /* the cursor points before what a stream still holds */
    long long cms, cseq;    /* the cursor, when given */
    size_t cmarket;
    bool has_cursor;
    unsigned rounds;        /* fetches made for this page */
    bool bounded;           /* a market had more than it answered: the page ends there */
    long long bms, bseq;    /* ... at this position (the smallest such) */
    size_t bmarket;
    enum store_status status;
    int64_t limit;
};

static void events_job_free(void *v)
{
    struct events_job *j = v;
    json_decref(j->items);
    free(j);
}

/* "<ms>-<seq>-<market code>" */
static int cursor_parse(const struct catalog *cat, const char *s, long long *ms, long long *seq,
                        size_t *market)
{
    char code[MARKET_CODE_LEN + 2];
    if (!s || sscanf(s, "%lld-%lld-%5s", ms, seq, code) != 3 || strlen(code) != MARKET_CODE_LEN)
        return -1;
    for (size_t i = 0; i < cat->nmarkets; i++)
        if (!strcmp(cat->markets[i].code, code)) {
            *market = i;
            return 0;
        }
    return -1;
}

static int by_position(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    for (size_t i = 0; i < 3; i++) {
        json_int_t u = json_integer_value(json_array_get(x, i));
        json_int_t v = json_integer_value(json_array_get(y, i));
        if (u != v)
            return u < v ? -1 : 1;
    }
    return 0;
}

static void events_fetch(struct req *r, struct events_job *j);

static void events_finish(struct req *r, struct events_job *j)
{
    size_t n = json_array_size(j->items);
    json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
    if (!sorted) {
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(j->items, i);
    qsort(sorted, n, sizeof *sorted, by_position);
    size_t eligible = n;
    if (j->bounded) {
        json_t *bound = json_pack("[I, I, I]", (json_int_t)j->bms, (json_int_t)j->bseq,
                                  (json_int_t)j->bmarket);
        eligible = 0;
        while (eligible < n && by_position(&sorted[eligible], &bound) <= 0)
            eligible++;
        json_decref(bound);
    }
    if (j->bounded && eligible < (size_t)j->limit && j->rounds < 16) {
        /* too little this token may see up to the bound: keep it, read on from there */
        json_t *kept = json_array();
        for (size_t i = 0; i < eligible; i++)
            json_array_append(kept, sorted[i]);
        free(sorted);
        json_decref(j->items);
        j->items = kept;
        j->has_cursor = true;
        j->cms = j->bms;
        j->cseq = j->bseq;
        j->cmarket = j->bmarket;
        j->bounded = false;
        events_fetch(r, j);
        return;
    }
    json_t *items = json_array();
    size_t take = eligible < (size_t)j->limit ? eligible : (size_t)j->limit;
    for (size_t i = 0; i < take; i++)
        json_array_append(items, json_array_get(sorted[i], 3));
    json_t *body = json_pack("{s:o}", "items", items);
    char bound_id[64];
    const char *next = NULL;
    if (eligible > take) {
        next = json_string_value(json_object_get(json_array_get(sorted[take - 1], 3), "id"));
    } else if (j->bounded) {    /* nothing visible up to the bound: resume from it */
        snprintf(bound_id, sizeof bound_id, "%lld-%lld-%s", j->bms, j->bseq,
                 r->srv->catalog.markets[j->bmarket].code);
        next = bound_id;
    }
    json_object_set_new(body, "next_cursor", next ? json_string(next) : json_null());
    free(sorted);
    http_reply_json(r, 200, body);
}

static void on_events(struct req *r, enum store_status st, redisReply *reply)
{
    struct events_job *j = r->ctx;
    const struct catalog *cat = &r->srv->catalog;
    j->waiting--;
    if (!reply && st == STORE_OK) {
        /* a stream-info answer, already read */
    } else if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY) {
        j->failed = true;
        j->status = st;
    } else {
        int64_t settled = time_now_ms() - SETTLE_MS;
        size_t examined = 0;
        long long last_ms = 0, last_seq = 0;
        size_t last_market = cat->nmarkets;     /* none yet */
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
                continue;
            long long ms, seq;
            if (sscanf(e->element[0]->str, "%lld-%lld", &ms, &seq) != 2 || ms > settled)
                break;          /* the rest of this stream is not settled yet */
            examined++;
            last_ms = ms;
            last_seq = seq;
            const char *type = reply_entry_field(e->element[1], "type");
            const char *kind = reply_entry_field(e->element[1], "kind");
            const char *data = reply_entry_field(e->element[1], "data");
            json_t *rec = data ? json_loads(data, 0, NULL) : NULL;
            const char *mid = json_string_value(json_object_get(rec, "market"));
            size_t market = 0;
            while (mid && market < cat->nmarkets && strcmp(cat->markets[market].id, mid))
                market++;
            if (!rec || !type || !kind || !mid || market == cat->nmarkets) {
                json_decref(rec);
                continue;
            }
            last_market = market;
            enum record_kind rk = !strcmp(kind, "offer") ? RECORD_OFFER
                                  : !strcmp(kind, "need") ? RECORD_NEED : RECORD_ALLOC;
            if (record_visible(&r->who, rk, rec)) {
                char id[64];
                snprintf(id, sizeof id, "%lld-%lld-%s", ms, seq, cat->markets[market].code);
                json_t *item = json_pack("{s:s, s:s, s:s}", "id", id, "type", type, "kind", kind);
                json_set_time(item, "timestamp", ms);
                json_object_set_new(item, "data", record_to_api(rk, rec));
                json_array_append_new(j->items, json_pack("[I, I, I, o]", (json_int_t)ms,
                                                          (json_int_t)seq, (json_int_t)market, item));
            }
            json_decref(rec);
        }
        /* a full answer: this market has more after its last entry */
        if (examined == (size_t)j->limit + 1 && last_market < cat->nmarkets) {
            size_t mi = last_market;
            bool smaller = !j->bounded || last_ms < j->bms ||
                           (last_ms == j->bms && (last_seq < j->bseq ||
                                                  (last_seq == j->bseq && mi < j->bmarket)));
            if (mi < cat->nmarkets && smaller) {
                j->bounded = true;
                j->bms = last_ms;
                j->bseq = last_seq;
                j->bmarket = mi;
            }
        }
    }
    if (j->waiting)
        return;
    if (j->failed) {
        http_reply_store_failure(r, j->status == STORE_OK ? STORE_DOWN : j->status, NULL);
        return;
    }
    if (j->gone) {
        http_reply_problem(r, 410, NULL, "events after this cursor are no longer retained "
                           "(events_retention); start again without a cursor");
        return;
    }
    events_finish(r, j);
}

/* XINFO STREAM: gone when the stream was trimmed (entries-added > length) and its oldest
 * entry kept comes after the cursor — entries between the two may have been lost. (Redis
 * moves max-deleted-entry-id on XDEL only, not on trimming, so it cannot tell.) */
static void on_stream_info(struct req *r, enum store_status st, redisReply *reply)
{
    struct events_job *j = r->ctx;
    if (st == STORE_OK && reply->type == REDIS_REPLY_ARRAY) {
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
    /* no such stream yet, or an old Redis: nothing was trimmed that we can tell */
    on_events(r, STORE_OK, NULL);
}

void feeds_events(struct req *r)
{
    const struct catalog *cat = &r->srv->catalog;
    const char *after = http_query(r, "after");
    long long ms = 0, seq = 0;
    size_t cmarket = 0;
    int64_t limit;
    json_t *errors = problem_errors_new();
    if (after && cursor_parse(cat, after, &ms, &seq, &cmarket) != 0)
        problem_errors_add(errors, "after", "is not a cursor this server issued");
    if (validate_query_int(http_query(r, "limit"), 1, 500, 100, &limit) != 0)
        problem_errors_add(errors, "limit", "must be an integer between 1 and 500");
    if (json_array_size(errors)) {
        http_reply_invalid(r, errors);
        return;
    }
    json_decref(errors);
    struct events_job *j = calloc(1, sizeof *j);
    if (!j || !(j->items = json_array())) {
        free(j);
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    j->limit = limit;
    j->cms = ms;
    j->cseq = seq;
    j->cmarket = cmarket;
    j->has_cursor = after != NULL;
    r->ctx = j;
    r->ctx_free = events_job_free;
    for (size_t i = 0; after && i < cat->nmarkets; i++) {
        struct cmd c;
        cmd_init(&c);
        cmd_add(&c, "XINFO");
        cmd_add(&c, "STREAM");
        store_key(&r->srv->store, &c, KEY_MARKET, cat->markets[i].id, MKEY_EVENTS);
        j->waiting++;
        http_store_send(r, &c, on_stream_info);
    }
    events_fetch(r, j);
}

/* One XRANGE per market from the job's cursor. */
static void events_fetch(struct req *r, struct events_job *j)
{
    const struct catalog *cat = &r->srv->catalog;
    j->rounds++;
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
        j->waiting++;
        http_store_send(r, &c, on_events);
    }
}
