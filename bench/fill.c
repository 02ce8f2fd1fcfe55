/* fill.c — the populating client of bench/run: a fixed number of POSTs through impactd's
 * public API, each with its own body, every answer checked.
 *
 *   fill participants PORT ADMIN_TOKEN REGIONS COUNT CONNS OUT_FILE
 *   fill need|offer   PORT TOKENS_FILE REGIONS COUNT START CONNS MARKET NOW_S
 *
 * `participants` creates COUNT manufacturers with the bootstrap admin token (POST
 * /v1/participants), participant i in region REGIONS[i % n] (REGIONS: comma-separated
 * catalogue codes), and writes OUT_FILE, one line per participant in creation order:
 *     <participant id> <bearer token> <region>
 * `need` and `offer` post COUNT filler items of MARKET (POST /v1/needs, /v1/offers), the
 * items of ordinals START .. START + COUNT - 1, each with the token of its owner read from
 * TOKENS_FILE (the participants mode's output). Item i is in region REGIONS[i % n], owned by
 * one of the participants of that region (taking turns), with urgency URGENCIES[i / n % 4]
 * (needs) or delivery scope SCOPES[i / 7 % 3] (offers), and a quantity drawn from i. The
 * windows keep every filler item from ever matching anything (docs/BENCHMARKS.md): a need's
 * needed_by is NOW_S + 1..20 days, an offer's ready_at NOW_S + 22..60 days, and an offer
 * serves a need only when ready_at <= needed_by.
 *
 * CONNS keep-alive connections each carry one request at a time, so CONNS are in flight.
 * Every answer must be 201, and a filler answer must show the item `open` with no
 * allocation: anything else (another status, a connection error, an allocation made) prints
 * the request and the answer and exits 1 at once — a population that is not what it claims
 * would make every figure after it wrong. On success it prints
 *     FILL requests= duration_us= rate=
 * Progress goes to stderr every tenth. Owns its process and OUT_FILE. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONNS 512
#define MAX_REGIONS 64
#define BODY_MAX 1024
#define TOKEN_MAX 128
#define DAY_S 86400
#define TIMEOUT_S 60

enum mode { MODE_PARTICIPANTS, MODE_NEED, MODE_OFFER };

static const char *const URGENCIES[] = { "stat", "asap", "urgent", "routine" };
static const char *const SCOPES[] = { "region", "neighbours", "national" };

struct participant {
    char id[TOKEN_MAX];
    char token[TOKEN_MAX];
    int region;                 /* index into fill.regions */
};

struct conn;

struct fill {
    enum mode mode;
    struct event_base *base;
    struct conn *conns;
    int nconns;
    char host[64];
    char *regions[MAX_REGIONS];
    int nregions;
    struct participant *prt;    /* participants mode: made here; else read from TOKENS_FILE */
    long nprt;
    long *by_region[MAX_REGIONS];   /* item modes: participant indexes of each region */
    long nby_region[MAX_REGIONS];
    const char *admin;
    const char *market;
    long long now_s;
    long count, start, next, done;
    bool failed;
    long long start_us;
};

struct conn {
    struct fill *f;
    struct evhttp_connection *evcon;
    long item;                  /* ordinal of the request out on it */
};

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* splitmix64: the item's own random numbers, the same on every run. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A uniform integer in [lo, hi] from the seed. */
static long long draw(uint64_t seed, long long lo, long long hi)
{
    return lo + (long long)(mix(seed) % (uint64_t)(hi - lo + 1));
}

static void rfc3339(long long unix_s, char out[32])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The participant of item i: one of its region's, taking turns. */
static const struct participant *owner(const struct fill *f, long i)
{
    int r = (int)(i % f->nregions);
    long k = (i / f->nregions) % f->nby_region[r];
    return &f->prt[f->by_region[r][k]];
}

/* The path, token and body of request i; returns the body length. */
static int request_of(const struct fill *f, long i, const char **path, const char **token,
                      char body[BODY_MAX])
{
    char when[32];
    int r = (int)(i % f->nregions);
    uint64_t seed = ((uint64_t)f->mode << 56) ^ (uint64_t)i;
    switch (f->mode) {
    case MODE_PARTICIPANTS:
        *path = "/v1/participants";
        *token = f->admin;
        return snprintf(body, BODY_MAX,
                        "{\"role\":\"manufacturer\",\"name\":\"bench filler %ld\","
                        "\"region\":\"%s\"}",
                        i, f->regions[r]);
    case MODE_NEED:
        *path = "/v1/needs";
        *token = owner(f, i)->token;
        rfc3339(f->now_s + draw(seed ^ 1, 1 * DAY_S, 20 * DAY_S), when);
        return snprintf(body, BODY_MAX,
                        "{\"product\":\"%s\",\"quantity\":%lld,\"urgency\":\"%s\","
                        "\"needed_by\":\"%s\",\"region\":\"%s\"}",
                        f->market, draw(seed, 1, 1000), URGENCIES[(i / f->nregions) % 4], when,
                        f->regions[r]);
    case MODE_OFFER:
        *path = "/v1/offers";
        *token = owner(f, i)->token;
        rfc3339(f->now_s + draw(seed ^ 1, 22 * DAY_S, 60 * DAY_S), when);
        return snprintf(body, BODY_MAX,
                        "{\"product\":\"%s\",\"quantity\":%lld,\"delivery_scope\":\"%s\","
                        "\"ready_at\":\"%s\",\"region\":\"%s\"}",
                        f->market, draw(seed, 1, 100000), SCOPES[(i / 7) % 3], when,
                        f->regions[r]);
    }
    return -1;
}

/* Stops the run: prints what went wrong with request i and its answer. */
static void fail(struct fill *f, long i, int status, const char *why, const char *answer,
                 size_t len)
{
    if (!f->failed) {
        const char *path, *token;
        char body[BODY_MAX];
        request_of(f, i, &path, &token, body);
        fprintf(stderr, "fill: request %ld (POST %s %s): %s (status %d): %.*s\n", i, path, body,
                why, status, (int)(len > 600 ? 600 : len), answer ? answer : "");
    }
    f->failed = true;
    event_base_loopexit(f->base, NULL);
}

/* Checks one 201 answer; records a new participant. Returns NULL or what is wrong. */
static const char *check_answer(struct fill *f, long i, json_t *a)
{
    if (f->mode == MODE_PARTICIPANTS) {
        json_t *prt = json_object_get(a, "participant");
        const char *id = json_string_value(json_object_get(prt, "id"));
        const char *token = json_string_value(json_object_get(a, "token"));
        if (!id || !token || strlen(id) >= TOKEN_MAX || strlen(token) >= TOKEN_MAX)
            return "no participant id and token in the answer";
        struct participant *p = &f->prt[i - f->start];
        snprintf(p->id, sizeof p->id, "%s", id);
        snprintf(p->token, sizeof p->token, "%s", token);
        p->region = (int)(i % f->nregions);
        return NULL;
    }
    json_t *item = json_object_get(a, f->mode == MODE_NEED ? "need" : "offer");
    const char *status = json_string_value(json_object_get(item, "status"));
    json_t *allocs = json_object_get(a, "allocations");
    if (!status || strcmp(status, "open") != 0)
        return "the filler item is not open";
    if (!json_is_array(allocs) || json_array_size(allocs) != 0)
        return "the filler item was matched (it must never match anything)";
    return NULL;
}

static void send_next(struct conn *c);

static void on_answer(struct evhttp_request *req, void *arg)
{
    struct conn *c = arg;
    struct fill *f = c->f;
    long i = c->item;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    struct evbuffer *in = req ? evhttp_request_get_input_buffer(req) : NULL;
    size_t len = in ? evbuffer_get_length(in) : 0;
    const char *text = in ? (const char *)evbuffer_pullup(in, -1) : NULL;
    if (f->failed)
        return;
    if (status != 201) {
        fail(f, i, status, status ? "not 201" : "no answer (connection error or timeout)",
             text, len);
        return;
    }
    json_error_t err;
    json_t *a = text ? json_loadb(text, len, 0, &err) : NULL;
    const char *wrong = a ? check_answer(f, i, a) : "the answer is not JSON";
    json_decref(a);
    if (wrong) {
        fail(f, i, status, wrong, text, len);
        return;
    }
    f->done++;
    long tenth = f->count >= 10 ? f->count / 10 : 1;
    if (f->done % tenth == 0 && f->done < f->count)
        fprintf(stderr, "fill: %ld of %ld\n", f->done, f->count);
    if (f->done == f->count)
        event_base_loopexit(f->base, NULL);
    else
        send_next(c);
}

static void send_next(struct conn *c)
{
    struct fill *f = c->f;
    if (f->next >= f->start + f->count)
        return;
    long i = c->item = f->next++;
    const char *path, *token;
    char body[BODY_MAX], auth[TOKEN_MAX + 16];
    int len = request_of(f, i, &path, &token, body);
    struct evhttp_request *req = evhttp_request_new(on_answer, c);
    if (len < 0 || len >= BODY_MAX || !req) {
        if (req)
            evhttp_request_free(req);
        fail(f, i, 0, "cannot build the request", NULL, 0);
        return;
    }
    snprintf(auth, sizeof auth, "Bearer %s", token);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", f->host);
    evhttp_add_header(h, "Authorization", auth);
    evhttp_add_header(h, "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, (size_t)len);
    if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, path) != 0)
        fail(f, i, 0, "cannot send the request", NULL, 0);   /* make_request freed req */
}

/* REGIONS "01,02,...": splits in place. */
static int parse_regions(struct fill *f, char *list)
{
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (f->nregions == MAX_REGIONS)
            return -1;
        f->regions[f->nregions++] = tok;
    }
    return f->nregions > 0 ? 0 : -1;
}

static int region_index(const struct fill *f, const char *code)
{
    for (int r = 0; r < f->nregions; r++)
        if (!strcmp(f->regions[r], code))
            return r;
    return -1;
}

/* Reads TOKENS_FILE and groups the participants by region; every region needs one. */
static int read_tokens(struct fill *f, const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        perror(path);
        return -1;
    }
    long cap = 0;
    char id[TOKEN_MAX], token[TOKEN_MAX], region[16];
    int status = -1;
    while (fscanf(in, "%127s %127s %15s", id, token, region) == 3) {
        if (f->nprt == cap) {
            cap = cap ? cap * 2 : 1024;
            struct participant *grown = realloc(f->prt, (size_t)cap * sizeof *grown);
            if (!grown)
                goto done;
            f->prt = grown;
        }
        struct participant *p = &f->prt[f->nprt];
        snprintf(p->id, sizeof p->id, "%s", id);
        snprintf(p->token, sizeof p->token, "%s", token);
        p->region = region_index(f, region);
        if (p->region < 0) {
            fprintf(stderr, "fill: %s: region %s is not in REGIONS\n", path, region);
            goto done;
        }
        f->nprt++;
    }
    for (int r = 0; r < f->nregions; r++) {
        f->by_region[r] = calloc((size_t)(f->nprt ? f->nprt : 1), sizeof *f->by_region[r]);
        if (!f->by_region[r])
            goto done;
    }
    for (long k = 0; k < f->nprt; k++) {
        int r = f->prt[k].region;
        f->by_region[r][f->nby_region[r]++] = k;
    }
    for (int r = 0; r < f->nregions; r++) {
        if (!f->nby_region[r]) {
            fprintf(stderr, "fill: %s: no participant in region %s\n", path, f->regions[r]);
            goto done;
        }
    }
    status = 0;
done:
    fclose(in);
    return status;
}

static int write_participants(const struct fill *f, const char *path)
{
    FILE *out = fopen(path, "w");
    if (!out) {
        perror(path);
        return -1;
    }
    for (long k = 0; k < f->count; k++)
        fprintf(out, "%s %s %s\n", f->prt[k].id, f->prt[k].token, f->regions[f->prt[k].region]);
    return fclose(out) == 0 ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: fill participants PORT ADMIN_TOKEN REGIONS COUNT CONNS OUT_FILE\n"
            "       fill need|offer PORT TOKENS_FILE REGIONS COUNT START CONNS MARKET NOW_S\n");
}

int main(int argc, char **argv)
{
    static struct fill f;
    const char *out_path = NULL;
    if (argc == 8 && !strcmp(argv[1], "participants")) {
        f.mode = MODE_PARTICIPANTS;
        f.admin = argv[3];
        f.count = atol(argv[5]);
        f.nconns = atoi(argv[6]);
        out_path = argv[7];
    } else if (argc == 10 && (!strcmp(argv[1], "need") || !strcmp(argv[1], "offer"))) {
        f.mode = !strcmp(argv[1], "need") ? MODE_NEED : MODE_OFFER;
        f.count = atol(argv[5]);
        f.start = atol(argv[6]);
        f.nconns = atoi(argv[7]);
        f.market = argv[8];
        f.now_s = atoll(argv[9]);
    } else {
        usage();
        return 2;
    }
    int port = atoi(argv[2]);
    if (port <= 0 || port > 65535 || f.count <= 0 || f.start < 0 || f.nconns <= 0 ||
        f.nconns > MAX_CONNS || parse_regions(&f, argv[4]) != 0) {
        usage();
        return 2;
    }
    if (f.mode == MODE_PARTICIPANTS) {
        f.prt = calloc((size_t)f.count, sizeof *f.prt);
        if (!f.prt)
            return 1;
    } else if (f.now_s <= 0 || read_tokens(&f, argv[3]) != 0) {
        return 2;
    }
    if (f.nconns > f.count)
        f.nconns = (int)f.count;
    snprintf(f.host, sizeof f.host, "127.0.0.1:%d", port);
    f.next = f.start;
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    f.conns = calloc((size_t)f.nconns, sizeof *f.conns);
    f.base = event_base_new();
    if (!f.conns || !f.base)
        goto fail;
    for (int k = 0; k < f.nconns; k++) {
        struct conn *c = &f.conns[k];
        c->f = &f;
        c->evcon = evhttp_connection_base_new(f.base, NULL, "127.0.0.1", (ev_uint16_t)port);
        if (!c->evcon)
            goto fail;
        evhttp_connection_set_timeout(c->evcon, TIMEOUT_S);
    }
    f.start_us = mono_us();
    for (int k = 0; k < f.nconns && !f.failed; k++)
        send_next(&f.conns[k]);
    if (!f.failed && event_base_dispatch(f.base) != 0)
        goto fail;
    if (f.failed || f.done != f.count)
        goto fail;
    long long dur = mono_us() - f.start_us;
    if (out_path && write_participants(&f, out_path) != 0)
        goto fail;
    printf("FILL requests=%ld duration_us=%lld rate=%.1f\n", f.count, dur,
           (double)f.count * 1e6 / (double)(dur > 0 ? dur : 1));
    status = 0;
fail:
    for (int k = 0; f.conns && k < f.nconns; k++)
        if (f.conns[k].evcon)
            evhttp_connection_free(f.conns[k].evcon);
    if (f.base)
        event_base_free(f.base);
    for (int r = 0; r < f.nregions; r++)
        free(f.by_region[r]);
    free(f.conns);
    free(f.prt);
    if (status && !f.failed)
        fprintf(stderr, "fill: stopped after %ld of %ld answers\n", f.done, f.count);
    return status;
}
