/* outcomes.c — GET /v1/feeds/outcomes: how allocations ended, for the ministry.
 *
 * Owns the outcomes feed: one row per (need region, product, outcome, reason) with the
 * count, the quantity those allocations were for, what was received (received_*), and the
 * median hours from proposal to receipt (received_*). It reads each market's outcomes
 * stream (m:{M}:outcomes), which the market functions append to in the same atomic step
 * that closes an allocation (allocations.lua), so the rows are exactly what the closed
 * allocations say. Filters: ?region= (of the need), ?product=, ?since= (closed at or after);
 * a regional ministry sees its regions only. JSON or CSV, signed and with an ETag like the
 * stock feed (feeds.c's feed_body). Not cached: its cost grows with the allocations closed
 * (about 100 bytes of stream each), read at most OUTCOMES_READ_MAX per market per request. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "impactd/calls.h"
#include "impactd/catalog.h"
#include "impactd/engine.h"
#include "impactd/feeds.h"
#include "impactd/handlers.h"
#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/problem.h"
#include "impactd/reply.h"
#include "impactd/request.h"
#include "impactd/resource.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"

#define OUTCOMES_READ_MAX 1000000   /* entries read per market and request */

/* The outcomes, in the order rows are listed (and their codes in the stream). */
static const char *const OUTCOMES[] = { "received_full", "received_short", "declined",
                                        "lapsed", "cancelled" };
#define NOUTCOMES (sizeof OUTCOMES / sizeof OUTCOMES[0])

struct outcome_row {
    size_t region, product, outcome;
    int reason;                     /* index in ENUM_CLOSE_REASON, -1 for none */
    long long count, quantity, received;
    double *hours;                  /* owned; count of them when received_* */
    size_t nhours, caphours;
};

struct outcomes_job {
    bool csv;
    const char *region, *product;   /* filters, borrowed from the query */
    int64_t since_ms;               /* -1: all */
    struct outcome_row *rows;       /* owned */
    size_t nrows, caprows;
    bool failed;                    /* out of memory */
    struct fanout fan;
};

static void outcomes_job_clear(void *v)
{
    struct outcomes_job *j = v;
    for (size_t i = 0; i < j->nrows; i++)
        free(j->rows[i].hours);
    free(j->rows);
}

static const struct req_state_type OUTCOMES_JOB = { "outcomes feed",
                                                    sizeof(struct outcomes_job),
                                                    outcomes_job_clear };

static struct outcome_row *row_of(struct outcomes_job *j, size_t region, size_t product,
                                  size_t outcome, int reason)
{
    for (size_t i = 0; i < j->nrows; i++) {
        struct outcome_row *x = &j->rows[i];
        if (x->region == region && x->product == product && x->outcome == outcome &&
            x->reason == reason)
            return x;
    }
    if (j->nrows == j->caprows) {
        size_t cap = j->caprows ? 2 * j->caprows : 64;
        struct outcome_row *more = realloc(j->rows, cap * sizeof *more);
        if (!more)
            return NULL;
        j->rows = more;
        j->caprows = cap;
    }
    struct outcome_row *x = &j->rows[j->nrows++];
    memset(x, 0, sizeof *x);
    x->region = region, x->product = product, x->outcome = outcome, x->reason = reason;
    return x;
}

static bool add_hours(struct outcome_row *x, double h)
{
    if (x->nhours == x->caphours) {
        size_t cap = x->caphours ? 2 * x->caphours : 16;
        double *more = realloc(x->hours, cap * sizeof *more);
        if (!more)
            return false;
        x->hours = more;
        x->caphours = cap;
    }
    x->hours[x->nhours++] = h;
    return true;
}

static bool field_ll(const redisReply *f, const char *name, long long *out)
{
    const char *v = store_entry_field(f, name, NULL);
    return v && *v && json_parse_ll(v, out) == 0;
}

/* One market's stream: [[id, [field, value, ...]], ...]. */
static void on_stream(struct req *r, size_t market, redisReply *reply)
{
    (void)market;
    struct outcomes_job *j = r->state;
    const struct catalog *cat = &r->srv->catalog;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
            continue;
        const redisReply *f = e->element[1];
        const char *region = store_entry_field(f, "r", NULL);
        const char *product = store_entry_field(f, "p", NULL);
        const char *outcome = store_entry_field(f, "o", NULL);
        const char *reason = store_entry_field(f, "w", NULL);
        const struct region *rg = region ? catalog_region(cat, region) : NULL;
        const struct product *p = product ? catalog_product(cat, product) : NULL;
        size_t o = 0;
        while (outcome && o < NOUTCOMES && strcmp(OUTCOMES[o], outcome))
            o++;
        long long q, rq = 0, ms = -1;
        if (!rg || !p || !outcome || o == NOUTCOMES || !field_ll(f, "q", &q))
            continue;
        if ((j->region && strcmp(j->region, rg->code)) || (j->product && strcmp(j->product, p->id)) ||
            !principal_sees_region(&r->who, rg->code))
            continue;
        (void)field_ll(f, "rq", &rq);
        bool timed = field_ll(f, "h", &ms) && ms >= 0;
        int why = reason && *reason ? enum_code(&ENUM_CLOSE_REASON, reason) : -1;
        struct outcome_row *x = row_of(j, (size_t)(rg - cat->regions),
                                       (size_t)(p - cat->products), o, why);
        if (!x || (timed && !add_hours(x, (double)ms / 3600000.0))) {
            j->failed = true;
            return;
        }
        x->count++;
        x->quantity += q;
        x->received += rq;
    }
}

static int row_cmp(const void *a, const void *b)
{
    const struct outcome_row *x = a, *y = b;
    if (x->region != y->region)
        return x->region < y->region ? -1 : 1;
    if (x->product != y->product)
        return x->product < y->product ? -1 : 1;
    if (x->outcome != y->outcome)
        return x->outcome < y->outcome ? -1 : 1;
    return (x->reason > y->reason) - (x->reason < y->reason);
}

static int hours_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median, rounded to the millisecond's worth of an hour's thousandths (3 decimals). */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, hours_cmp);
    double m = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return round(m * 1000.0) / 1000.0;
}

static void render(struct req *r, struct outcomes_job *j, struct evbuffer *out,
                   struct evbuffer *rows)
{
    const struct catalog *cat = &r->srv->catalog;
    if (j->nrows)   /* qsort takes no NULL, even for nothing */
        qsort(j->rows, j->nrows, sizeof *j->rows, row_cmp);
    if (j->csv)
        evbuffer_add_printf(out, "region,product,outcome,reason,count,quantity,"
                                 "received_quantity,median_hours_to_receipt\r\n");
    for (size_t i = 0; i < j->nrows; i++) {
        struct outcome_row *x = &j->rows[i];
        bool received = x->outcome <= 1;
        const char *reason = x->reason >= 0 ? ENUM_CLOSE_REASON.values[x->reason] : NULL;
        char hours[40] = "", rq[24] = "";
        if (received && x->nhours)
            snprintf(hours, sizeof hours, "%.3f", median(x->hours, x->nhours));
        if (received)
            snprintf(rq, sizeof rq, "%lld", x->received);
        /* codes, ids and reasons are slugs: nothing to escape */
        if (j->csv)
            evbuffer_add_printf(rows, "%s,%s,%s,%s,%lld,%lld,%s,%s\r\n",
                                cat->regions[x->region].code, cat->products[x->product].id,
                                OUTCOMES[x->outcome], reason ? reason : "", x->count,
                                x->quantity, rq, hours);
        else
            evbuffer_add_printf(rows, "%s{\"region\":\"%s\",\"product\":\"%s\",\"outcome\":"
                                "\"%s\",\"reason\":%s%s%s,\"count\":%lld,\"quantity\":%lld,"
                                "\"received_quantity\":%s,\"median_hours_to_receipt\":%s}",
                                i ? "," : "", cat->regions[x->region].code,
                                cat->products[x->product].id, OUTCOMES[x->outcome],
                                reason ? "\"" : "", reason ? reason : "null", reason ? "\"" : "",
                                x->count, x->quantity, rq[0] ? rq : "null",
                                hours[0] ? hours : "null");
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

static void on_streams_done(struct req *r)
{
    struct outcomes_job *j = r->state;
    struct evbuffer *out = j->failed ? NULL : evbuffer_new();
    struct evbuffer *rows = out ? evbuffer_new() : NULL;
    struct feed_body *b = NULL;
    if (rows) {
        render(r, j, out, rows);
        b = feed_body_new(r, j->csv, out, rows);
    }
    if (rows)
        evbuffer_free(rows);
    if (out)
        evbuffer_free(out);
    if (!b) {
        reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    feed_body_send(r, b);
    feed_body_unref(b);
}

void feeds_outcomes(struct req *r)
{
    const struct catalog *cat = &r->srv->catalog;
    json_t *errors = problem_errors_new();
    const char *since = req_query(r, "since");
    int64_t since_ms = -1;
    if (since && time_parse_rfc3339(since, &since_ms) != 0)
        problem_errors_add(errors, "since", "must be an RFC 3339 date-time, e.g. "
                                            "2026-03-27T08:00:00Z");
    struct feed_filters f;
    if (!feed_filters_read(r, errors, &f))
        return;
    struct outcomes_job *j = req_state(r, &OUTCOMES_JOB);
    if (!j)
        return;
    j->csv = f.csv;
    j->region = f.region;
    j->product = f.product;
    j->since_ms = since_ms;
    const struct product *p = f.product ? catalog_product(cat, f.product) : NULL;
    fanout_begin(&j->fan, on_stream, on_streams_done);
    for (size_t i = 0; i < cat->nmarkets; i++) {
        if (p && p->market != i)
            continue;
        struct cmd c;
        cmd_init(&c);
        cmd_add(&c, "XRANGE");
        store_key(&r->srv->store, &c, KEY_MARKET, cat->markets[i].id, MKEY_OUTCOMES);
        if (since_ms >= 0)
            cmd_addll(&c, since_ms);
        else
            cmd_add(&c, "-");
        cmd_add(&c, "+");
        cmd_add(&c, "COUNT");
        cmd_addll(&c, OUTCOMES_READ_MAX);
        fanout_send(r, &j->fan, i, &c);
    }
    fanout_end(r, &j->fan);
}
