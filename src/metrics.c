/* metrics.c — per-process counters and histograms, rendered as Prometheus text 0.0.4.
 *
 * Names follow Prometheus conventions (base units, `_total` counters) so that
 * `promtool check metrics` accepts the output as is. */
#include "impactd/metrics.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "impactd/timeutil.h"

static const double BUCKETS[METRICS_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };

int metrics_init(struct metrics *m, size_t nroutes)
{
    memset(m, 0, sizeof *m);
    m->routes = calloc(nroutes + 1, sizeof *m->routes);
    if (!m->routes)
        return -1;
    m->nroutes = nroutes;
    m->routes[nroutes].route = "unmatched";
    m->routes[nroutes].method = "any";
    m->started_ms = time_now_ms();
    return 0;
}

void metrics_free(struct metrics *m)
{
    free(m->routes);
    m->routes = NULL;
}

void metrics_route_label(struct metrics *m, size_t route, const char *method, const char *tmpl)
{
    if (route < m->nroutes) {
        m->routes[route].route = tmpl;
        m->routes[route].method = method;
    }
}

void metrics_observe(struct histogram *h, double seconds)
{
    size_t i = 0;
    while (i < METRICS_BUCKETS && seconds > BUCKETS[i])
        i++;
    h->counts[i]++;
    h->sum += seconds;
    h->total++;
}

void metrics_request(struct metrics *m, size_t route, int status, double seconds)
{
    if (route > m->nroutes)
        route = m->nroutes;
    struct route_metrics *rm = &m->routes[route];
    metrics_observe(&rm->latency, seconds);
    for (size_t i = 0; i < rm->nstatuses; i++) {
        if (rm->statuses[i].status == status) {
            rm->statuses[i].count++;
            return;
        }
    }
    if (rm->nstatuses < METRICS_MAX_STATUSES) {
        rm->statuses[rm->nstatuses].status = status;
        rm->statuses[rm->nstatuses].count = 1;
        rm->nstatuses++;
    }
}

/* Writes the _bucket, _sum and _count lines of one histogram; labels may be "". */
static int render_histogram(struct evbuffer *out, const char *name, const char *labels,
                            const struct histogram *h)
{
    uint64_t cum = 0;
    const char *sep = *labels ? "," : "";
    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        cum += h->counts[i];
        if (evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                BUCKETS[i], (unsigned long long)cum) < 0)
            return -1;
    }
    cum += h->counts[METRICS_BUCKETS];
    if (evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                            (unsigned long long)cum) < 0)
        return -1;
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    if (evbuffer_add_printf(out, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, open, labels,
                            close, h->sum, name, open, labels, close,
                            (unsigned long long)h->total) < 0)
        return -1;
    return 0;
}

static int family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    return evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0
               ? -1 : 0;
}

/* One unlabelled sample with its HELP and TYPE lines. */
static int sample(struct evbuffer *out, const char *name, const char *type, const char *help,
                  double value)
{
    if (family(out, name, type, help) != 0)
        return -1;
    return evbuffer_add_printf(out, "%s %.17g\n", name, value) < 0 ? -1 : 0;
}

int metrics_render(const struct metrics *m, struct evbuffer *out)
{
    int rc = 0;
    rc |= family(out, "impactd_build_info", "gauge", "Version of the running impactd.");
    rc |= evbuffer_add_printf(out, "impactd_build_info{version=\"%s\"} 1\n", IMPACTD_VERSION) < 0;
    rc |= family(out, "impactd_start_time_seconds", "gauge", "Unix time the process started.");
    rc |= evbuffer_add_printf(out, "impactd_start_time_seconds %.3f\n",
                              (double)m->started_ms / 1000.0) < 0;

    rc |= family(out, "impactd_http_requests_total", "counter",
                 "HTTP requests answered, by route template, method and status.");
    for (size_t r = 0; r <= m->nroutes; r++) {
        const struct route_metrics *rm = &m->routes[r];
        for (size_t i = 0; i < rm->nstatuses; i++)
            rc |= evbuffer_add_printf(out,
                                      "impactd_http_requests_total{route=\"%s\",method=\"%s\","
                                      "status=\"%d\"} %llu\n", rm->route, rm->method,
                                      rm->statuses[i].status,
                                      (unsigned long long)rm->statuses[i].count) < 0;
    }
    rc |= family(out, "impactd_http_request_duration_seconds", "histogram",
                 "Time from a request's arrival to its answer, by route template and method.");
    for (size_t r = 0; r <= m->nroutes; r++) {
        const struct route_metrics *rm = &m->routes[r];
        if (!rm->latency.total)
            continue;
        char labels[256];
        snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\"", rm->route, rm->method);
        rc |= render_histogram(out, "impactd_http_request_duration_seconds", labels, &rm->latency);
    }
    rc |= sample(out, "impactd_http_requests_in_flight", "gauge",
                 "Requests received and not yet answered.", (double)m->inflight);
    rc |= sample(out, "impactd_http_rate_limited_total", "counter",
                 "Requests refused with 429 by the per-token rate limit.", (double)m->rate_limited);

    rc |= sample(out, "impactd_matches_total", "counter",
                 "Allocations made by matching (from posts, changes, declines and lapses).",
                 (double)m->allocations_made);
    rc |= sample(out, "impactd_notifications_created_total", "counter",
                 "Notification messages stored in participants' inboxes by this process.",
                 (double)m->messages_created);
    rc |= sample(out, "impactd_webhooks_delivered_total", "counter",
                 "Webhook messages delivered (answered 2xx).", (double)m->webhooks_delivered);
    rc |= sample(out, "impactd_webhooks_retried_total", "counter",
                 "Webhook attempts that failed and will be retried.", (double)m->webhooks_retried);
    rc |= sample(out, "impactd_webhooks_dead_lettered_total", "counter",
                 "Webhook messages dead-lettered after their last attempt failed.",
                 (double)m->webhooks_dead);
    rc |= family(out, "impactd_webhook_attempt_duration_seconds", "histogram",
                 "Time of one webhook attempt, from connecting to the answer.");
    rc |= render_histogram(out, "impactd_webhook_attempt_duration_seconds", "", &m->webhook_latency);
    rc |= family(out, "impactd_store_roundtrip_seconds", "histogram",
                 "Time from sending a Redis command to its reply.");
    rc |= render_histogram(out, "impactd_store_roundtrip_seconds", "", &m->store_latency);
    rc |= sample(out, "impactd_store_connected", "gauge",
                 "1 when the Redis connection is up and the function library is loaded, else 0.",
                 m->store_connected);
    rc |= sample(out, "impactd_store_connects_total", "counter",
                 "Connection attempts to Redis (the first one included).",
                 (double)m->store_reconnects);
    rc |= family(out, "impactd_store_errors_total", "counter",
                 "Redis calls that got no reply, by kind (down: not connected or lost; "
                 "timeout: no reply in time).");
    rc |= evbuffer_add_printf(out, "impactd_store_errors_total{kind=\"down\"} %llu\n"
                              "impactd_store_errors_total{kind=\"timeout\"} %llu\n",
                              (unsigned long long)(m->store_errors[1] + m->store_errors[3]),
                              (unsigned long long)m->store_errors[2]) < 0;
    return rc ? -1 : 0;
}
