/* server.c — building, running and tearing down the one server struct.
 *
 * Start-up order: file limits → event base → catalogue → function library and OpenAPI
 * document → signing keys → metrics → store → auth → HTTP → signals → sweeper, notifier,
 * webhooks → first Redis connection. Shutdown (SIGTERM/SIGINT): stop accepting, let requests
 * in flight finish (at most shutdown_timeout), then leave the loop; server_free releases
 * everything in reverse order, except that the store closes before HTTP: its pending calls
 * answer their requests first. A second signal during the drain leaves at once. */
#include "impactd/server.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "impactd/library.h"
#include "impactd/log.h"
#include "impactd/market.h"
#include "impactd/routes.h"
#include "impactd/schema.h"
#include "impactd/timeutil.h"

#define DRAIN_POLL_US 50000

/* Lets the process hold at least 1,000 client connections when the hard limit allows. */
static void server_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? 65536 : rl.rlim_max;
    if (want > 65536)
        want = 65536;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("msg=\"cannot raise the open-file limit\"");
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1100)
        log_warn("msg=\"open-file limit is low; fewer than 1,000 clients can connect\" "
                 "nofile=%llu", (unsigned long long)rl.rlim_cur);
}

static bool server_idle(const struct server *srv)
{
    return srv->http.inflight == 0 && srv->webhook.inflight == 0;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    if (server_idle(srv)) {
        log_info("msg=\"drained; exiting\"");
        event_base_loopexit(srv->base, NULL);
        return;
    }
    if (time_mono_us() >= srv->stop_deadline_us) {
        log_warn("msg=\"shutdown timeout; exiting with requests in flight\" inflight=%u",
                 srv->http.inflight);
        event_base_loopexit(srv->base, NULL);
        return;
    }
    struct timeval tv = { 0, DRAIN_POLL_US };
    evtimer_add(srv->drain_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *srv = arg;
    if (srv->stopping) {
        log_warn("msg=\"second signal; exiting now\" signal=%d", (int)sig);
        event_base_loopbreak(srv->base);
        return;
    }
    log_info("msg=\"signal received; draining\" signal=%d inflight=%u", (int)sig,
             srv->http.inflight);
    srv->stopping = true;
    srv->stop_deadline_us = time_mono_us() + srv->cfg.shutdown_timeout_ms * 1000;
    http_stop_accepting(srv);
    on_drain_tick(-1, 0, srv);
}

/* SIGHUP: load the signing keys again (after `impactd rotate-key`). */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct server *srv = arg;
    struct signing fresh;
    char err[CONFIG_ERR_LEN];
    if (signing_load(&fresh, srv->cfg.signing_key_file, err, sizeof err) != 0) {
        log_error("msg=\"signing keys not reloaded\" error=\"%s\"", err);
        return;
    }
    signing_wipe(&srv->signing);
    srv->signing = fresh;
    log_info("msg=\"signing keys reloaded\" kid=%s keys=%zu", srv->signing.keys[0].kid,
             srv->signing.nkeys);
}

int server_init(struct server *srv, char *err, size_t errlen)
{
    log_set_level((enum log_level)srv->cfg.log_level);
    server_raise_nofile();
    srv->base = event_base_new();
    if (!srv->base) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    if (catalog_load(&srv->catalog, srv->cfg.catalog_dir, err, errlen) != 0 ||
        library_build(&srv->library, &srv->catalog, err, errlen) != 0)
        return -1;
    json_t *doc = schema_document(err, errlen);
    if (!doc)
        return -1;
    srv->openapi = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!srv->openapi || feeds_init(&srv->feeds) != 0 || parties_init(&srv->parties) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->openapi_len = strlen(srv->openapi);
    if (market_init(srv) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->routes = routes_table(&srv->nroutes);
    if (signing_load(&srv->signing, srv->cfg.signing_key_file, err, errlen) != 0)
        return -1;
    log_info("msg=\"signing key loaded\" kid=%s file=%s keys=%zu", srv->signing.keys[0].kid,
             srv->cfg.signing_key_file, srv->signing.nkeys);
    if (metrics_init(&srv->metrics, srv->nroutes) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < srv->nroutes; i++)
        metrics_route_label(&srv->metrics, i, router_method_name(srv->routes[i].method),
                            srv->routes[i].pattern);
    if (store_init(&srv->store, srv->base, &srv->cfg, &srv->metrics, &srv->library) != 0 ||
        auth_init(&srv->auth, srv->base, &srv->store, &srv->cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (http_start(srv) != 0) {
        snprintf(err, errlen, "cannot serve HTTP on %s:%d (see the log above)",
                 srv->cfg.listen_host, srv->cfg.listen_port);
        return -1;
    }
    srv->sig_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->drain_timer = evtimer_new(srv->base, on_drain_tick, srv);
    if (!srv->sig_term || !srv->sig_int || !srv->drain_timer ||
        evsignal_add(srv->sig_term, NULL) != 0 || evsignal_add(srv->sig_int, NULL) != 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        return -1;
    }
    if (sweeper_start(srv) != 0 || notify_start(srv) != 0) {
        snprintf(err, errlen, "cannot start the sweeper or the notifier");
        return -1;
    }
    if (webhook_start(srv, err, errlen) != 0)
        return -1;
    srv->sig_hup = evsignal_new(srv->base, SIGHUP, on_sighup, srv);
    if (!srv->sig_hup || evsignal_add(srv->sig_hup, NULL) != 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        return -1;
    }
    store_start(&srv->store);
    return 0;
}

int server_run(struct server *srv)
{
    if (event_base_dispatch(srv->base) < 0) {
        log_error("msg=\"event loop failed\"");
        return 1;
    }
    return 0;
}

void server_free(struct server *srv)
{
    /* Redis calls still pending fail now, and their callbacks answer their requests, while
     * those requests' evhttp objects still exist: http_free frees them. */
    store_close(&srv->store);
    http_free(srv);
    sweeper_stop(srv);
    notify_stop(srv);
    webhook_stop(srv);
    signing_wipe(&srv->signing);
    if (srv->sig_hup)
        event_free(srv->sig_hup);
    auth_free(&srv->auth);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->drain_timer)
        event_free(srv->drain_timer);
    metrics_free(&srv->metrics);
    feeds_free(&srv->feeds);
    parties_free(&srv->parties);
    market_free(srv);
    free(srv->openapi);
    srv->openapi = NULL;
    library_free(&srv->library);
    catalog_free(&srv->catalog);
    if (srv->base)
        event_base_free(srv->base);
    srv->base = NULL;
}
