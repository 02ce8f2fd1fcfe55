/* webhook.c — delivering messages to webhook URLs, at least once.
 *
 * A tick claims due deliveries on 30 s leases (delivery_claim.lua), so a delivery a dead
 * process had claimed comes due again for any process 30 s later. Each attempt: load the
 * message and its participant's URL and secret (delivery_load.lua), resolve the host (and
 * refuse private addresses unless allowed), POST the body with both signatures, record the
 * outcome (delivery_done.lua in the participant's slot, schedule.lua in the schedule's).
 * At most webhook_max_per_endpoint attempts run per endpoint; a claim over that limit is
 * put back a moment later without counting as an attempt. */
#include "impactd/webhook.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "build_config.h"
#include "impactd/checks.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/server.h"
#include "impactd/signing.h"
#include "impactd/timeutil.h"

#define TICK_MS 200
#define LEASE_MS 30000
#define MAX_INFLIGHT 64
#define BUSY_RETRY_MS 100
#define CLAIM_BATCH 16
#define MAX_RESPONSE_BODY 65536

struct attempt {
    struct server *srv;
    char participant[ID_MAX_LEN];
    char msg_id[ID_MAX_LEN];
    char endpoint[300];         /* "scheme://host:port", counted in webhook->endpoints */
    char host[256];
    char path[2048];
    int port;
    bool https;
    char *secret;
    char *body;
    char *type;
    int64_t msg_ts;
    int attempts;               /* attempts made before this one */
    int64_t start_us;
    int error;                  /* enum evhttp_request_error, -1 when none */
    unsigned pending;           /* outcome writes not back yet */
    struct evhttp_connection *evcon;    /* while the request is out */
    struct evhttp_request *req;
    struct attempt *prev, *next;        /* in webhook->active while the request is out */
};

static void attempt_free(struct attempt *a)
{
    free(a->secret);
    free(a->body);
    free(a->type);
    free(a);
}

/* ---- schedule and outcome ---- */

static void schedule_cmd(struct server *srv, const struct attempt *a, const char *action,
                         int64_t at, const char *info, store_cb cb, void *arg)
{
    struct cmd c;
    cmd_init(&c);
    store_key(&srv->store, &c, KEY_DUE);
    store_key(&srv->store, &c, KEY_DEAD);
    store_key(&srv->store, &c, KEY_DEADINFO);
    cmd_add(&c, action);
    cmd_addll(&c, at);
    cmd_add(&c, info ? info : "");
    cmd_addf(&c, "%s|%s", a->participant, a->msg_id);
    store_fcall(&srv->store, FN_SCHEDULE, 3, &c, cb, arg);
}

static void on_outcome_written(void *arg, enum store_status st, redisReply *reply)
{
    struct attempt *a = arg;
    if (st != STORE_OK || store_reply_error(reply, NULL))
        log_warn("msg=\"webhook outcome not recorded; the lease will bring it back\" msg_id=%s",
                 a->msg_id);
    if (--a->pending == 0)
        attempt_free(a);
}

/* outcome: delivered | retry | dead | none (no webhook any more) | busy (not attempted). */
static void attempt_finish(struct attempt *a, const char *outcome, const char *error)
{
    struct server *srv = a->srv;
    int64_t now = time_now_ms();
    if (!strcmp(outcome, "busy")) {
        a->pending = 1;
        schedule_cmd(srv, a, "retry", now + BUSY_RETRY_MS, NULL, on_outcome_written, a);
        return;
    }
    a->pending = 2;
    struct cmd c;
    cmd_init(&c);
    store_key(&srv->store, &c, KEY_MESSAGES, a->participant);
    cmd_add(&c, a->msg_id);
    cmd_add(&c, outcome);
    cmd_add(&c, error ? error : "");
    cmd_addll(&c, now);
    store_fcall(&srv->store, FN_DELIVERY_DONE, 1, &c, on_outcome_written, a);
    if (!strcmp(outcome, "retry")) {
        int64_t delay = srv->cfg.retry_schedule_ms[a->attempts + 1];
        int64_t jitter = delay / 10;
        if (jitter > 0)
            delay += (int64_t)randombytes_uniform((uint32_t)(2 * jitter + 1)) - jitter;
        schedule_cmd(srv, a, "retry", now + delay, NULL, on_outcome_written, a);
    } else if (!strcmp(outcome, "dead")) {
        json_t *info = json_pack("{s:s, s:s, s:s?, s:i, s:s?, s:I}", "message_id", a->msg_id,
                                 "participant_id", a->participant, "type", a->type,
                                 "attempts", a->attempts + 1, "last_error", error,
                                 "dead_at", (json_int_t)now);
        char *text = info ? json_dumps(info, JSON_COMPACT) : NULL;
        json_decref(info);
        schedule_cmd(srv, a, "dead", now, text, on_outcome_written, a);
        free(text);
    } else {
        schedule_cmd(srv, a, "done", now, NULL, on_outcome_written, a);
    }
}

static void endpoint_release(struct server *srv, const char *endpoint)
{
    struct webhook *w = &srv->webhook;
    intptr_t n = (intptr_t)dict_get(&w->endpoints, endpoint);
    if (n <= 1)
        dict_del(&w->endpoints, endpoint);
    else if (dict_set(&w->endpoints, endpoint, (void *)(n - 1)) != 0)
        log_error("msg=\"endpoint count lost\"");
}

/* ---- HTTP ---- */

static const char *request_error_text(int error)
{
    switch (error) {
    case EVREQ_HTTP_TIMEOUT: return "timeout";
    case EVREQ_HTTP_EOF: return "connection closed before an answer";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid answer";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection failed";
    case EVREQ_HTTP_DATA_TOO_LONG: return "answer too large";
    default: return "connection failed";
    }
}

static void attempt_done(struct attempt *a, int code)
{
    struct server *srv = a->srv;
    struct webhook *w = &srv->webhook;
    w->inflight--;
    endpoint_release(srv, a->endpoint);
    double secs = (double)(time_mono_us() - a->start_us) / 1e6;
    metrics_observe(&srv->metrics.webhook_latency, secs);
    if (code >= 200 && code < 300) {
        srv->metrics.webhooks_delivered++;
        log_info("msg=\"webhook delivered\" msg_id=%s prt=%s status=%d attempt=%d dur_ms=%.1f",
                 a->msg_id, a->participant, code, a->attempts + 1, secs * 1000);
        attempt_finish(a, "delivered", NULL);
        return;
    }
    char error[96];
    if (code > 0)
        snprintf(error, sizeof error, "HTTP %d", code);
    else
        snprintf(error, sizeof error, "%s", a->error >= 0 ? request_error_text(a->error)
                                                          : "connection failed");
    bool last = (size_t)(a->attempts + 1) >= srv->cfg.retry_count;
    log_warn("msg=\"webhook attempt failed\" msg_id=%s prt=%s error=\"%s\" attempt=%d%s",
             a->msg_id, a->participant, error, a->attempts + 1, last ? " dead_letter=1" : "");
    if (last)
        srv->metrics.webhooks_dead++;
    else
        srv->metrics.webhooks_retried++;
    attempt_finish(a, last ? "dead" : "retry", error);
}

static void on_request_error(enum evhttp_request_error error, void *arg)
{
    struct attempt *a = arg;
    a->error = (int)error;
}

static void active_unlink(struct webhook *w, struct attempt *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        w->active = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
}

/* A connection cannot be freed from its own callback: it is freed at the next tick. */
static void spend_connection(struct webhook *w, struct evhttp_connection *evcon)
{
    if (w->nspent == w->capspent) {
        size_t cap = w->capspent ? w->capspent * 2 : 16;
        struct evhttp_connection **grown = realloc(w->spent, cap * sizeof *grown);
        if (!grown) {
            log_error("msg=\"out of memory; one webhook connection leaks\"");
            return;
        }
        w->spent = grown;
        w->capspent = cap;
    }
    w->spent[w->nspent++] = evcon;
}

static void free_spent(struct webhook *w)
{
    for (size_t i = 0; i < w->nspent; i++)
        evhttp_connection_free(w->spent[i]);
    w->nspent = 0;
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct attempt *a = arg;
    struct webhook *w = &a->srv->webhook;
    active_unlink(w, a);
    spend_connection(w, a->evcon);
    a->evcon = NULL;
    a->req = NULL;
    attempt_done(a, req ? evhttp_request_get_response_code(req) : 0);
}

/* Sends the POST to the numeric address `ip` (already checked). */
static void attempt_send(struct attempt *a, const char *ip)
{
    struct server *srv = a->srv;
    struct webhook *w = &srv->webhook;
    struct bufferevent *bev = NULL;
    if (a->https) {
        SSL *ssl = SSL_new(w->ssl);
        if (!ssl) {
            attempt_done(a, 0);
            return;
        }
        unsigned char tmp[16];
        bool literal = inet_pton(AF_INET, a->host, tmp) == 1 || inet_pton(AF_INET6, a->host, tmp) == 1;
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        if (literal) {
            X509_VERIFY_PARAM_set1_ip_asc(param, a->host);
        } else {
            SSL_set_tlsext_host_name(ssl, a->host);
            X509_VERIFY_PARAM_set1_host(param, a->host, 0);
        }
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        bev = bufferevent_openssl_socket_new(srv->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!bev) {
            SSL_free(ssl);
            attempt_done(a, 0);
            return;
        }
    }
    struct evhttp_connection *evcon = evhttp_connection_base_bufferevent_new(
        srv->base, NULL, bev, ip, (ev_uint16_t)a->port);
    struct evhttp_request *req = evcon ? evhttp_request_new(on_response, a) : NULL;
    if (!req) {
        if (evcon)
            evhttp_connection_free(evcon);
        attempt_done(a, 0);
        return;
    }
    struct timeval tv = { (time_t)(srv->cfg.webhook_timeout_ms / 1000),
                          (suseconds_t)((srv->cfg.webhook_timeout_ms % 1000) * 1000) };
    evhttp_connection_set_timeout_tv(evcon, &tv);
    evhttp_connection_set_retries(evcon, 0);
    evhttp_connection_set_max_body_size(evcon, MAX_RESPONSE_BODY);
    evhttp_request_set_error_cb(req, on_request_error);

    /* the first attempt carries the message's own timestamp (its signatures then equal the
     * inbox item's); later ones are signed afresh so receivers' tolerance accepts them */
    int64_t now_s = time_now_ms() / 1000;
    int64_t ts = (a->attempts == 0 && now_s - a->msg_ts < 60) ? a->msg_ts : now_s;
    const struct signing_key *key = &srv->signing.keys[0];
    char v1[128], v1a[128], sigs[300], tsbuf[24], host_header[300];
    size_t blen = strlen(a->body);
    if (signing_v1(a->secret, a->msg_id, ts, a->body, blen, v1, sizeof v1) != 0 ||
        signing_v1a(key, a->msg_id, ts, a->body, blen, v1a, sizeof v1a) != 0) {
        evhttp_request_free(req);
        evhttp_connection_free(evcon);
        attempt_done(a, 0);
        return;
    }
    snprintf(sigs, sizeof sigs, "%s %s", v1, v1a);
    snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)ts);
    bool default_port = a->port == (a->https ? 443 : 80);
    if (strchr(a->host, ':'))
        snprintf(host_header, sizeof host_header, default_port ? "[%s]" : "[%s]:%d", a->host, a->port);
    else
        snprintf(host_header, sizeof host_header, default_port ? "%s" : "%s:%d", a->host, a->port);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", host_header);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "User-Agent", "impactd/" IMPACTD_VERSION);
    evhttp_add_header(h, "webhook-id", a->msg_id);
    evhttp_add_header(h, "webhook-timestamp", tsbuf);
    evhttp_add_header(h, "webhook-signature", sigs);
    evhttp_add_header(h, "webhook-key-id", key->kid);
    evhttp_add_header(h, "Connection", "close");
    evbuffer_add(evhttp_request_get_output_buffer(req), a->body, blen);
    a->start_us = time_mono_us();
    if (evhttp_make_request(evcon, req, EVHTTP_REQ_POST, a->path) != 0) {
        evhttp_connection_free(evcon);     /* make_request freed req */
        attempt_done(a, 0);
        return;
    }
    a->evcon = evcon;
    a->req = req;
    a->next = w->active;
    if (w->active)
        w->active->prev = a;
    w->active = a;
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct attempt *a = arg;
    char ip[INET6_ADDRSTRLEN] = "";
    if (result == 0 && res) {
        const void *addr = res->ai_family == AF_INET6
                               ? (const void *)&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr
                               : (const void *)&((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
        evutil_inet_ntop(res->ai_family, addr, ip, sizeof ip);
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (!ip[0]) {
        a->error = -1;
        log_warn("msg=\"webhook host not resolved\" host=%s", a->host);
        attempt_done(a, 0);
        return;
    }
    if (!a->srv->cfg.webhook_allow_private && checks_host_private(ip)) {
        log_warn("msg=\"webhook refused: private address\" host=%s ip=%s", a->host, ip);
        attempt_done(a, 0);
        return;
    }
    attempt_send(a, ip);
}

/* Parses the URL into a; returns -1 when it cannot be used. */
static int attempt_target(struct attempt *a, const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u)
        return -1;
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    int rc = -1;
    if (scheme && host && *host && (!strcasecmp(scheme, "http") || !strcasecmp(scheme, "https"))) {
        a->https = !strcasecmp(scheme, "https");
        a->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : a->https ? 443 : 80;
        const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
        snprintf(a->host, sizeof a->host, "%s", host);
        snprintf(a->path, sizeof a->path, "%s%s%s", path && *path ? path : "/", query ? "?" : "",
                 query ? query : "");
        snprintf(a->endpoint, sizeof a->endpoint, "%s://%s:%d", a->https ? "https" : "http",
                 a->host, a->port);
        rc = 0;
    }
    evhttp_uri_free(u);
    return rc;
}

/* A string element of a reply, or NULL (nil, or another type). */
static const char *element_str(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str
                                                                         : NULL;
}

static long long element_int(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer
                                                                          : 0;
}

/* delivery_load answers {status, attempts, Unix s, type, url, secret, body}, or {}. */
static void on_loaded(void *arg, enum store_status st, redisReply *reply)
{
    struct attempt *a = arg;
    struct server *srv = a->srv;
    struct webhook *w = &srv->webhook;
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY) {
        attempt_free(a);        /* the lease brings it back */
        return;
    }
    const char *status = element_str(reply, 0), *type = element_str(reply, 3);
    const char *url = element_str(reply, 4), *secret = element_str(reply, 5);
    const char *body = element_str(reply, 6);
    a->attempts = (int)element_int(reply, 1);
    a->msg_ts = element_int(reply, 2);
    a->type = type ? strdup(type) : NULL;
    bool usable = status && !strcmp(status, "pending") && url && secret && body &&
                  attempt_target(a, url) == 0;
    if (!usable) {
        a->pending = 1;     /* nothing to deliver: take it off the schedule */
        schedule_cmd(srv, a, "done", time_now_ms(), NULL, on_outcome_written, a);
        return;
    }
    a->secret = strdup(secret);
    a->body = strdup(body);
    intptr_t busy = (intptr_t)dict_get(&w->endpoints, a->endpoint);
    if (!a->secret || !a->body || busy >= srv->cfg.webhook_max_per_endpoint ||
        dict_set(&w->endpoints, a->endpoint, (void *)(busy + 1)) != 0) {
        attempt_finish(a, "busy", NULL);
        return;
    }
    w->inflight++;
    a->error = -1;
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                     .ai_flags = EVUTIL_AI_ADDRCONFIG };
    char port[8];
    snprintf(port, sizeof port, "%d", a->port);
    /* the callback may run before evdns_getaddrinfo returns (literal addresses) */
    evdns_getaddrinfo(w->dns, a->host, port, &hints, on_resolved, a);
}

static void attempt_start(struct server *srv, const char *member)
{
    const char *bar = strchr(member, '|');
    struct attempt *a = calloc(1, sizeof *a);
    if (!bar || !a || (size_t)(bar - member) >= sizeof a->participant ||
        strlen(bar + 1) >= sizeof a->msg_id) {
        free(a);
        return;
    }
    a->srv = srv;
    memcpy(a->participant, member, (size_t)(bar - member));
    snprintf(a->msg_id, sizeof a->msg_id, "%s", bar + 1);
    struct cmd c;
    cmd_init(&c);
    store_key(&srv->store, &c, KEY_PARTICIPANT, a->participant);
    store_key(&srv->store, &c, KEY_MESSAGES, a->participant);
    store_key(&srv->store, &c, KEY_INBOX, a->participant);
    cmd_add(&c, a->msg_id);
    store_fcall(&srv->store, FN_DELIVERY_LOAD, 3, &c, on_loaded, a);
}

/* ---- claiming ---- */

static void on_claimed(void *arg, enum store_status st, redisReply *reply)
{
    struct server *srv = arg;
    srv->webhook.claiming = false;
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            attempt_start(srv, reply->element[i]->str);
    if (reply->elements == CLAIM_BATCH)
        webhook_kick(srv);      /* a full batch: more may be due now */
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    struct webhook *w = &srv->webhook;
    free_spent(w);
    if (w->claiming || srv->stopping || !store_ready(&srv->store) || w->inflight >= MAX_INFLIGHT)
        return;
    w->claiming = true;
    struct cmd c;
    cmd_init(&c);
    store_key(&srv->store, &c, KEY_DUE);
    cmd_addll(&c, time_now_ms());
    cmd_addll(&c, LEASE_MS);
    cmd_addll(&c, MAX_INFLIGHT - w->inflight < CLAIM_BATCH ? MAX_INFLIGHT - w->inflight
                                                             : CLAIM_BATCH);
    store_fcall(&srv->store, FN_DELIVERY_CLAIM, 1, &c, on_claimed, srv);
}

void webhook_kick(struct server *srv)
{
    struct timeval zero = { 0, 0 };
    if (srv->webhook.kick && !evtimer_pending(srv->webhook.kick, NULL))
        evtimer_add(srv->webhook.kick, &zero);
}

int webhook_start(struct server *srv, char *err, size_t errlen)
{
    struct webhook *w = &srv->webhook;
    if (dict_init(&w->endpoints) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->dns = evdns_base_new(srv->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                           EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!w->dns)
        w->dns = evdns_base_new(srv->base, 0);  /* no resolv.conf: literal addresses only */
    w->ssl = SSL_CTX_new(TLS_client_method());
    if (!w->dns || !w->ssl) {
        snprintf(err, errlen, "cannot set up DNS or TLS for webhooks");
        return -1;
    }
    SSL_CTX_set_min_proto_version(w->ssl, TLS1_2_VERSION);
    SSL_CTX_set_verify(w->ssl, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(w->ssl) != 1)
        log_warn("msg=\"no system CA store; https webhooks need webhook_ca_file\"");
    if (srv->cfg.webhook_ca_file[0] &&
        SSL_CTX_load_verify_locations(w->ssl, srv->cfg.webhook_ca_file, NULL) != 1) {
        snprintf(err, errlen, "webhook_ca_file %s: cannot load the certificates",
                 srv->cfg.webhook_ca_file);
        return -1;
    }
    w->timer = event_new(srv->base, -1, EV_PERSIST, on_tick, srv);
    w->kick = evtimer_new(srv->base, on_tick, srv);
    struct timeval tv = { 0, TICK_MS * 1000 };
    if (!w->timer || !w->kick || event_add(w->timer, &tv) != 0) {
        snprintf(err, errlen, "cannot start the webhook timer");
        return -1;
    }
    return 0;
}

void webhook_stop(struct server *srv)
{
    struct webhook *w = &srv->webhook;
    if (w->timer)
        event_free(w->timer);
    if (w->kick)
        event_free(w->kick);
    free_spent(w);
    free(w->spent);
    while (w->active) {             /* requests still out at exit: abandon them */
        struct attempt *a = w->active;
        active_unlink(w, a);
        evhttp_cancel_request(a->req);
        evhttp_connection_free(a->evcon);
        attempt_free(a);
    }
    if (w->dns)
        evdns_base_free(w->dns, 1);
    if (w->ssl)
        SSL_CTX_free(w->ssl);
    dict_free(&w->endpoints, NULL);
    memset(w, 0, sizeof *w);
}
