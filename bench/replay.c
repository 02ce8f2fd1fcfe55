/* replay.c — reference (c) of bench/run beside redis-benchmark: one captured Redis call,
 * replayed the way redis-benchmark replays a command, for any arguments.
 *
 *   replay PORT CONNS COUNT ARGS_FILE
 *
 * redis-benchmark takes its command from its own command line, so it cannot send an
 * argument holding a NUL byte (a msgpack-encoded one, say). This sends the call of
 * ARGS_FILE (bench/capture.py's `.args`: each argument as "<length>\n<bytes>\n") COUNT
 * times to the Redis at 127.0.0.1:PORT over CONNS hiredis connections on one libevent
 * loop, one call in flight on each (redis-benchmark -c CONNS -n COUNT -P 1), and prints
 * redis-benchmark's --csv line for it,
 *     "<command>","<calls/s>","<avg ms>","<min ms>","<p50 ms>","<p95 ms>","<p99 ms>","<max ms>"
 * with each latency from the call's send to its reply. Each `__rand_int__` in an argument
 * becomes 12 random digits for each call, as with redis-benchmark -r 1000000000000 (the
 * capture marks the random part of ids a call carries that way). Unlike redis-benchmark it reads
 * every reply: the first error reply (or a lost connection) is printed and the exit
 * status is 1, so a call that stopped working cannot pass for a fast one.
 *
 * Owns its process, the connections and the latency array. */
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONNS 256
#define MAX_ARGS 1024
#define MAX_RAND 64
#define ARG_MAX (16 * 1024 * 1024)

static const char RAND[] = "__rand_int__";     /* 12 characters, as the digits */
#define RAND_LEN (sizeof RAND - 1)

struct replay {
    struct event_base *base;
    int argc;
    char *argv[MAX_ARGS];       /* owned; __rand_int__ places rewritten per call */
    const char *cargv[MAX_ARGS];    /* the same buffers, as hiredis takes them */
    size_t lens[MAX_ARGS];
    struct { int arg; size_t at; } rand[MAX_RAND];  /* where __rand_int__ stood */
    int nrand;
    uint64_t seed;
    long count, sent, done;
    double *lat_ms;             /* one per call, in reply order */
    bool failed;
};

struct conn {
    struct replay *rp;
    redisAsyncContext *ac;      /* NULL once disconnected */
    long long sent_ns;
};

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void stop(struct replay *rp, const char *why, const char *detail)
{
    if (!rp->failed)
        fprintf(stderr, "replay: %s%s%s\n", why, detail ? ": " : "", detail ? detail : "");
    rp->failed = true;
    event_base_loopexit(rp->base, NULL);
}

static void send_call(struct conn *c);

/* xorshift64*: the digits of the next call */
static uint64_t next_random(struct replay *rp)
{
    rp->seed ^= rp->seed >> 12;
    rp->seed ^= rp->seed << 25;
    rp->seed ^= rp->seed >> 27;
    return rp->seed * 0x2545f4914f6cdd1dULL;
}

/* Writes 12 fresh digits where each __rand_int__ stood (hiredis copies the arguments when
 * the call is sent, so the template can change between calls). */
static void randomise(struct replay *rp)
{
    for (int i = 0; i < rp->nrand; i++) {
        uint64_t v = next_random(rp) % 1000000000000ULL;
        char *p = rp->argv[rp->rand[i].arg] + rp->rand[i].at;
        for (int k = (int)RAND_LEN - 1; k >= 0; k--, v /= 10)
            p[k] = (char)('0' + v % 10);
    }
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct conn *c = privdata;
    struct replay *rp = c->rp;
    redisReply *reply = r;
    if (rp->failed)
        return;
    if (!reply) {
        stop(rp, "connection lost", NULL);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        stop(rp, "error reply", reply->str);
        return;
    }
    rp->lat_ms[rp->done++] = (double)(mono_ns() - c->sent_ns) / 1e6;
    if (rp->done == rp->count)
        event_base_loopexit(rp->base, NULL);
    else
        send_call(c);
}

static void send_call(struct conn *c)
{
    struct replay *rp = c->rp;
    if (rp->sent >= rp->count || !c->ac)
        return;
    rp->sent++;
    randomise(rp);
    c->sent_ns = mono_ns();
    if (redisAsyncCommandArgv(c->ac, on_reply, c, rp->argc, rp->cargv, rp->lens) != REDIS_OK)
        stop(rp, "cannot send the call", c->ac->errstr);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        stop(((struct conn *)ac->data)->rp, "cannot connect to Redis", ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    c->ac = NULL;               /* hiredis frees the context after this callback */
    if (status != REDIS_OK)
        stop(c->rp, "Redis connection lost", ac->errstr);
}

/* Reads "<length>\n<bytes>\n" arguments; every buffer is owned by rp. */
static int read_args(struct replay *rp, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    long len;
    int status = -1;
    while (fscanf(f, "%ld", &len) == 1) {
        if (rp->argc == MAX_ARGS || len < 0 || len > ARG_MAX || fgetc(f) != '\n')
            goto done;
        char *a = malloc((size_t)len + 1);
        if (!a)
            goto done;
        rp->argv[rp->argc] = a;
        rp->cargv[rp->argc] = a;
        rp->lens[rp->argc++] = (size_t)len;
        if (fread(a, 1, (size_t)len, f) != (size_t)len || fgetc(f) != '\n')
            goto done;
        a[len] = '\0';
        for (char *p = a; (p = memmem(p, (size_t)(a + len - p), RAND, RAND_LEN));
             p += RAND_LEN) {
            if (rp->nrand == MAX_RAND)
                goto done;
            rp->rand[rp->nrand].arg = rp->argc - 1;
            rp->rand[rp->nrand++].at = (size_t)(p - a);
        }
    }
    status = feof(f) && rp->argc > 0 ? 0 : -1;
done:
    if (status)
        fprintf(stderr, "replay: %s: not a capture.py .args file\n", path);
    fclose(f);
    return status;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank, as redis-benchmark's own percentiles are read. */
static double percentile(const double *sorted, long n, double q)
{
    long k = (long)(q * (double)n + 0.999999) - 1;
    return sorted[k < 0 ? 0 : k >= n ? n - 1 : k];
}

int main(int argc, char **argv)
{
    static struct replay rp;
    static struct conn conns[MAX_CONNS];
    if (argc != 5) {
        fprintf(stderr, "usage: replay PORT CONNS COUNT ARGS_FILE\n");
        return 2;
    }
    int port = atoi(argv[1]), nconns = atoi(argv[2]);
    rp.count = atol(argv[3]);
    if (port <= 0 || port > 65535 || nconns <= 0 || nconns > MAX_CONNS || rp.count <= 0 ||
        read_args(&rp, argv[4]) != 0)
        return 2;
    if (nconns > rp.count)
        nconns = (int)rp.count;

    int status = 1;
    rp.lat_ms = calloc((size_t)rp.count, sizeof *rp.lat_ms);
    rp.base = event_base_new();
    if (!rp.lat_ms || !rp.base)
        goto fail;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->rp = &rp;
        c->ac = redisAsyncConnect("127.0.0.1", port);
        if (!c->ac || c->ac->err) {
            fprintf(stderr, "replay: cannot connect to Redis\n");
            if (c->ac)
                redisAsyncFree(c->ac);
            c->ac = NULL;
            goto fail;
        }
        c->ac->data = c;
        if (redisLibeventAttach(c->ac, rp.base) != REDIS_OK ||
            redisAsyncSetConnectCallback(c->ac, on_connect) != REDIS_OK ||
            redisAsyncSetDisconnectCallback(c->ac, on_disconnect) != REDIS_OK)
            goto fail;
    }
    rp.seed = (uint64_t)mono_ns() | 1;
    long long start = mono_ns();
    for (int i = 0; i < nconns; i++)
        send_call(&conns[i]);
    if (event_base_dispatch(rp.base) != 0 || rp.failed || rp.done != rp.count)
        goto fail;
    double secs = (double)(mono_ns() - start) / 1e9, sum = 0;
    for (long i = 0; i < rp.count; i++)
        sum += rp.lat_ms[i];
    qsort(rp.lat_ms, (size_t)rp.count, sizeof *rp.lat_ms, by_value);
    printf("\"%.*s\",\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\"\n",
           (int)rp.lens[0], rp.argv[0], (double)rp.count / secs, sum / (double)rp.count,
           rp.lat_ms[0], percentile(rp.lat_ms, rp.count, 0.50),
           percentile(rp.lat_ms, rp.count, 0.95), percentile(rp.lat_ms, rp.count, 0.99),
           rp.lat_ms[rp.count - 1]);
    status = 0;
fail:
    for (int i = 0; i < nconns; i++)
        if (conns[i].ac)
            redisAsyncFree(conns[i].ac);    /* pending callbacks run with NULL */
    if (rp.base)
        event_base_free(rp.base);
    for (int i = 0; i < rp.argc; i++)
        free(rp.argv[i]);
    free(rp.lat_ms);
    return status;
}
