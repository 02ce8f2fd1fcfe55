/* metrics.h — counters and histograms, rendered in the Prometheus text format (0.0.4).
 *
 * Owns the numbers only; the http module records requests, the store module round trips.
 * Everything is per process: Prometheus scrapes each impactd and sums. */
#ifndef IMPACTD_METRICS_H
#define IMPACTD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define METRICS_BUCKETS 14
#define METRICS_MAX_STATUSES 24

struct histogram {
    uint64_t counts[METRICS_BUCKETS + 1];   /* last one is +Inf */
    double sum;
    uint64_t total;
};

struct route_metrics {
    const char *route;                      /* template, e.g. "/v1/participants/{id}" */
    const char *method;
    struct { int status; uint64_t count; } statuses[METRICS_MAX_STATUSES];
    size_t nstatuses;
    struct histogram latency;
};

struct metrics {
    struct route_metrics *routes;           /* owned; nroutes + 1: the last is unmatched */
    size_t nroutes;
    struct histogram store_latency;
    uint64_t store_errors[4];               /* by enum store_status (index 0 unused) */
    uint64_t store_reconnects;
    int store_connected;
    uint64_t rate_limited;
    uint64_t allocations_made;              /* by matching, in any script */
    uint64_t webhooks_delivered;
    uint64_t webhooks_retried;              /* failed attempts with another one to come */
    uint64_t webhooks_dead;                 /* dead-lettered after the last attempt */
    uint64_t messages_created;              /* notification messages stored (notify.c) */
    struct histogram webhook_latency;       /* one attempt, connect to answer */
    int64_t inflight;                       /* requests not yet answered */
    int64_t started_ms;
};

int metrics_init(struct metrics *m, size_t nroutes) __attribute__((warn_unused_result));
void metrics_free(struct metrics *m);
void metrics_route_label(struct metrics *m, size_t route, const char *method, const char *tmpl);
/* route == nroutes for requests that matched no route. */
void metrics_request(struct metrics *m, size_t route, int status, double seconds);
void metrics_observe(struct histogram *h, double seconds);
int metrics_render(const struct metrics *m, struct evbuffer *out) __attribute__((warn_unused_result));

#endif
