/* pace.c — the paced need-post client of the notification benchmark (bench/notify).
 *
 *   pace PORT TOKEN BODY_FILE RATE COUNT CONNS OUT_FILE
 *
 * Sends COUNT `POST /v1/needs` to 127.0.0.1:PORT (bearer TOKEN, body the bytes of
 * BODY_FILE) over CONNS keep-alive connections, request i due at start + i / RATE seconds
 * (an open loop, as wrk2 does: a request that finds no free connection waits for one and
 * the wait counts); RATE 0 sends as fast as the connections allow (a closed loop, as wrk
 * does). Each answer's `allocations[0].id` is kept. When every request is answered, or
 * COUNT / RATE + 60 s after the start, it writes OUT_FILE, one line per request:
 *     <due µs> <sent µs> <answered µs> <HTTP status> <allocation id>
 * (CLOCK_MONOTONIC, the receiver's clock; answered 0 and status 0 for a request that got
 * no answer, `-` for no allocation), and prints one line:
 *     PACE requests= answered= non201= duration_us= rate= max_lag_us=
 * where duration runs from the first send to the last answer, rate is answers per second
 * over it, and max_lag is the longest a request waited past its due time for a connection.
 *
 * Owns its process and OUT_FILE; exits 0 when every request was answered 201. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONNS 256
#define BODY_MAX (64 * 1024)
#define ID_MAX 64
#define TICK_US 500
#define GRACE_S 60

struct sample {
    long long due_us, sent_us, done_us;
    int status;
    char alloc[ID_MAX];
};

struct conn;

struct pace {
    struct event_base *base;
    struct conn *conns;
    struct conn **idle;
    int nidle;
    struct sample *s;
    long count, next, answered;
    double rate;
    long long start_us;
    char body[BODY_MAX];
    size_t body_len;
    char auth[1024], host[64];
};

struct conn {
    struct pace *p;
    struct evhttp_connection *evcon;
    long req;           /* index of the request out on it */
};

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long due_us(const struct pace *p, long i)
{
    return p->rate > 0 ? p->start_us + (long long)((double)i * 1e6 / p->rate) : p->start_us;
}

/* The id of the first allocation of a need-post answer, or "-". */
static void first_alloc(struct evhttp_request *req, char out[ID_MAX])
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    json_t *a = body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(
        json_array_get(json_object_get(a, "allocations"), 0), "id"));
    snprintf(out, ID_MAX, "%s", id && *id && !strchr(id, ' ') ? id : "-");
    json_decref(a);
}

static void pump(struct pace *p);

static void on_answer(struct evhttp_request *req, void *arg)
{
    struct conn *c = arg;
    struct pace *p = c->p;
    struct sample *s = &p->s[c->req];
    s->done_us = mono_us();
    s->status = req ? evhttp_request_get_response_code(req) : 0;
    if (s->status == 201)
        first_alloc(req, s->alloc);
    else
        strcpy(s->alloc, "-");
    if (s->status == 0)
        s->done_us = 0;
    p->answered++;
    p->idle[p->nidle++] = c;
    if (p->answered == p->count)
        event_base_loopexit(p->base, NULL);
    else
        pump(p);
}

static void send_one(struct pace *p, struct conn *c, long i)
{
    struct sample *s = &p->s[i];
    c->req = i;
    s->sent_us = mono_us();
    struct evhttp_request *req = evhttp_request_new(on_answer, c);
    if (!req) {
        on_answer(NULL, c);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", p->host);
    evhttp_add_header(h, "Authorization", p->auth);
    evhttp_add_header(h, "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), p->body, p->body_len);
    if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, "/v1/needs") != 0)
        on_answer(NULL, c);         /* make_request freed req */
}

/* Sends every request that is due, while a connection is free. */
static void pump(struct pace *p)
{
    long long now = mono_us();
    while (p->next < p->count && p->nidle > 0 && due_us(p, p->next) <= now) {
        struct conn *c = p->idle[--p->nidle];
        p->s[p->next].due_us = due_us(p, p->next);
        send_one(p, c, p->next++);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fprintf(stderr, "pace: deadline reached with requests unanswered\n");
    event_base_loopexit(arg, NULL);
}

static int read_body(const char *path, struct pace *p)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    p->body_len = fread(p->body, 1, sizeof p->body, f);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad)
        fprintf(stderr, "pace: %s: unreadable or over %d bytes\n", path, BODY_MAX);
    return bad ? -1 : 0;
}

static int write_out(const struct pace *p, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    for (long i = 0; i < p->next; i++) {
        const struct sample *s = &p->s[i];
        fprintf(f, "%lld %lld %lld %d %s\n", s->due_us, s->sent_us, s->done_us, s->status,
                s->alloc[0] ? s->alloc : "-");
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* The PACE line; returns the number of requests not answered 201. */
static long summary(const struct pace *p)
{
    long long first = 0, last = 0, max_lag = 0;
    long ok = 0;
    for (long i = 0; i < p->next; i++) {
        const struct sample *s = &p->s[i];
        if (!first || s->sent_us < first)
            first = s->sent_us;
        if (s->done_us > last)
            last = s->done_us;
        if (s->sent_us - s->due_us > max_lag)
            max_lag = s->sent_us - s->due_us;
        ok += s->status == 201;
    }
    long long dur = last > first ? last - first : 1;
    printf("PACE requests=%ld answered=%ld non201=%ld duration_us=%lld rate=%.1f max_lag_us=%lld\n",
           p->count, p->answered, p->count - ok, dur, (double)p->answered * 1e6 / (double)dur,
           max_lag);
    return p->count - ok;
}

int main(int argc, char **argv)
{
    static struct pace p;
    if (argc != 8) {
        fprintf(stderr, "usage: pace PORT TOKEN BODY_FILE RATE COUNT CONNS OUT_FILE\n");
        return 2;
    }
    int port = atoi(argv[1]), nconns = atoi(argv[6]);
    p.rate = atof(argv[4]);
    p.count = atol(argv[5]);
    if (port <= 0 || port > 65535 || p.rate < 0 || p.count <= 0 || nconns <= 0 ||
        nconns > MAX_CONNS || read_body(argv[3], &p) != 0) {
        fprintf(stderr, "pace: bad arguments\n");
        return 2;
    }
    snprintf(p.auth, sizeof p.auth, "Bearer %s", argv[2]);
    snprintf(p.host, sizeof p.host, "127.0.0.1:%d", port);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    struct event *tick = NULL, *deadline = NULL;
    p.s = calloc((size_t)p.count, sizeof *p.s);
    p.conns = calloc((size_t)nconns, sizeof *p.conns);
    p.idle = calloc((size_t)nconns, sizeof *p.idle);
    p.base = event_base_new();
    if (!p.s || !p.conns || !p.idle || !p.base)
        goto fail;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &p.conns[i];
        c->p = &p;
        c->evcon = evhttp_connection_base_new(p.base, NULL, "127.0.0.1", (ev_uint16_t)port);
        if (!c->evcon)
            goto fail;
        evhttp_connection_set_timeout(c->evcon, 30);
        p.idle[p.nidle++] = c;
    }
    struct timeval tick_tv = { 0, TICK_US };
    struct timeval deadline_tv = { (time_t)(p.rate > 0 ? (double)p.count / p.rate : 0) + GRACE_S, 0 };
    tick = event_new(p.base, -1, EV_PERSIST, on_tick, &p);
    deadline = evtimer_new(p.base, on_deadline, p.base);
    if (!tick || !deadline || event_add(deadline, &deadline_tv) != 0 ||
        (p.rate > 0 && event_add(tick, &tick_tv) != 0))
        goto fail;
    p.start_us = mono_us();
    pump(&p);
    if (event_base_dispatch(p.base) != 0)
        goto fail;
    if (write_out(&p, argv[7]) != 0)
        goto fail;
    status = summary(&p) == 0 ? 0 : 1;
fail:
    if (tick)
        event_free(tick);
    if (deadline)
        event_free(deadline);
    for (int i = 0; p.conns && i < nconns; i++)
        if (p.conns[i].evcon)
            evhttp_connection_free(p.conns[i].evcon);
    if (p.base)
        event_base_free(p.base);
    free(p.idle);
    free(p.conns);
    free(p.s);
    return status;
}
