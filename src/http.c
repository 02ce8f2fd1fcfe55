/* http.c — the evhttp server and the pipeline every request follows.
 *
 * Owns: the listening socket (our own evconnlistener, so accept errors such as EMFILE back
 * off instead of spinning), evhttp's limits (header size, body size, idle timeout; a body
 * over the limit is cut off before it is read by bodylimit.c, and answered here), and the
 * pipeline:
 *
 *   evhttp callback → a body refused early (413) → route match (404/405/OPTIONS) → query
 *   parse → authentication and the route's roles (401/403/429/503) → body checks
 *   (413/415/400/422) → Idempotency-Key → handler.
 *
 * It hands each stage's refusal to reply.c and the request itself to request.c; handlers
 * never touch evhttp directly. */
#include "impactd/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "impactd/bodylimit.h"
#include "impactd/idempotency.h"
#include "impactd/log.h"
#include "impactd/problem.h"
#include "impactd/reply.h"
#include "impactd/request.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"

/* ---- the pipeline ---- */

static unsigned method_bit(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return M_GET;
    case EVHTTP_REQ_HEAD: return M_HEAD;
    case EVHTTP_REQ_POST: return M_POST;
    case EVHTTP_REQ_PUT: return M_PUT;
    case EVHTTP_REQ_PATCH: return M_PATCH;
    case EVHTTP_REQ_DELETE: return M_DELETE;
    case EVHTTP_REQ_OPTIONS: return M_OPTIONS;
    default: return 0;
    }
}

static bool request_id_sane(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n >= 1 && n <= 64;
}

static bool content_type_is_json(const char *ct)
{
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return false;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Body checks and parse. Returns 0 to go on, -1 when answered. */
static int req_read_body(struct req *r)
{
    unsigned flags = r->route->flags;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t len = evbuffer_get_length(in);
    r->raw_body_len = len;
    r->raw_body = len ? evbuffer_pullup(in, -1) : (const unsigned char *)"";
    if (!(flags & (ROUTE_BODY | ROUTE_BODY_OPTIONAL)))
        return 0;
    if ((int64_t)len > r->srv->cfg.max_body_size) {
        reply_problemf(r, 413, NULL, "the body is %zu bytes; at most %lld are accepted", len,
                            (long long)r->srv->cfg.max_body_size);
        return -1;
    }
    if (len == 0 && (flags & ROUTE_BODY_OPTIONAL))
        return 0;
    const char *ct = req_header(r, "Content-Type");
    if (ct && !content_type_is_json(ct)) {
        reply_problem(r, 415, NULL, "send the body as application/json");
        return -1;
    }
    if (len == 0) {
        reply_problem(r, 400, "malformed-json", "a JSON object body is required");
        return -1;
    }
    json_error_t je;
    r->body = json_loadb((const char *)r->raw_body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!r->body) {
        reply_problemf(r, 400, "malformed-json", "invalid JSON at line %d, column %d: %s",
                            je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(r->body)) {
        json_t *errors = problem_errors_new();
        problem_errors_add(errors, "", "the body must be a JSON object");
        reply_invalid(r, errors);
        return -1;
    }
    return 0;
}

static void run_handler(struct req *r) { r->route->handler(r); }

static void req_proceed(struct req *r)
{
    if (req_read_body(r) != 0)
        return;
    if (r->route->roles)
        idem_begin(r, run_handler);
    else
        run_handler(r);
}

static void on_auth(void *arg, enum auth_result result, const struct principal *who,
                    int retry_after_s)
{
    struct req *r = arg;
    char ra[16];
    switch (result) {
    case AUTH_OK:
        principal_copy(&r->who, who);
        break;
    case AUTH_MISSING:
    case AUTH_UNKNOWN:
        req_set_header(r, "WWW-Authenticate", "Bearer realm=\"impactd\"");
        reply_problem(r, 401, NULL, result == AUTH_MISSING
                                        ? "send Authorization: Bearer <token>"
                                        : "the token is unknown or revoked");
        break;
    case AUTH_RATE_LIMITED:
        r->srv->metrics.rate_limited++;
        snprintf(ra, sizeof ra, "%d", retry_after_s > 0 ? retry_after_s : 1);
        req_set_header(r, "Retry-After", ra);
        reply_problem(r, 429, NULL, "too many requests for this token; slow down");
        break;
    case AUTH_THROTTLED:
        snprintf(ra, sizeof ra, "%d", retry_after_s > 0 ? retry_after_s : 1);
        req_set_header(r, "Retry-After", ra);
        reply_problem(r, 429, NULL, "too many failed authentications from this address; "
                                    "retry later");
        break;
    case AUTH_STORE_DOWN:
        reply_store_failure(r, STORE_DOWN, NULL);
        break;
    }
    if (!r->replied && !(r->route->roles & r->who.role))
        reply_problemf(r, 403, NULL, "the %s role may not use %s %s", role_name(r->who.role),
                       router_method_name(r->route->method), r->route->pattern);
    else if (!r->replied)
        req_proceed(r);
    req_release(r);
}

/* A decoded query value ends at a NUL (%00): what follows would be silently dropped, so a
 * query holding one is refused, naming the parameter (422). Returns true when answered. */
static bool query_nul_rejected(struct req *r, const char *q)
{
    const char *nul = strstr(q, "%00");
    if (!nul)
        return false;
    const char *start = nul;
    while (start > q && start[-1] != '&')
        start--;
    const char *eq = memchr(start, '=', (size_t)(nul - start));
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)((eq ? eq : nul) - start), start);
    json_t *errors = problem_errors_new();
    problem_errors_add(errors, name, "must not contain a NUL character (%%00)");
    reply_invalid(r, errors);
    return true;
}

/* A request whose body bodylimit.c refused: 413 at once, and the connection closes, since
 * the client may still be sending the body. */
static bool req_refused_body(struct req *r)
{
    bool chunked;
    int64_t bytes;
    if (!r->ev || !bodylimit_refused(&r->srv->http.bodylimit, r->ev, &chunked, &bytes))
        return false;
    req_set_header(r, "Connection", "close");
    bodylimit_linger(&r->srv->http.bodylimit, r->ev);
    long long most = (long long)r->srv->cfg.max_body_size;
    if (chunked)
        reply_problemf(r, 413, NULL, "the chunked body passed %lld bytes; at most %lld are "
                       "accepted", (long long)bytes, most);
    else
        reply_problemf(r, 413, NULL, "the body is declared as %lld bytes; at most %lld are "
                       "accepted", (long long)bytes, most);
    return true;
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct server *srv = arg;
    struct req *r = req_new(srv, ev);
    if (!r) {
        evhttp_send_error(ev, 500, "out of memory");
        return;
    }
    r->method = method_bit(evhttp_request_get_command(ev));
    const char *rid = req_header(r, "X-Request-Id");
    if (rid && request_id_sane(rid))
        snprintf(r->id, sizeof r->id, "%s", rid);
    else
        id_new("req_", time_now_ms(), r->id);

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    r->path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!r->path || !*r->path)
        r->path = "/";

    if (srv->stopping)
        req_set_header(r, "Connection", "close");
    if (req_refused_body(r))
        return;
    router_match(srv->routes, srv->nroutes, r->method, r->path, &r->match);
    if (r->match.index < 0) {
        char allow[64];
        if (!r->match.allow) {
            reply_problemf(r, 404, NULL, "no resource at this path");
            return;
        }
        router_allow_header(r->match.allow, allow, sizeof allow);
        req_set_header(r, "Allow", allow);
        if (r->method == M_OPTIONS)
            reply_empty(r, 204);
        else
            reply_problemf(r, 405, NULL, "this path accepts %s", allow);
        return;
    }
    r->route = &srv->routes[r->match.index];
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (q && evhttp_parse_query_str(q, &r->query) != 0) {
        reply_problem(r, 400, "bad-request", "the query string is malformed");
        return;
    }
    if (q && query_nul_rejected(r, q))
        return;
    if (r->route->roles == ROLE_PUBLIC) {
        req_proceed(r);
        return;
    }
    req_hold(r);    /* released in on_auth */
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    auth_check(&srv->auth, req_header(r, "Authorization"),
               evcon ? evhttp_connection_get_addr(evcon) : NULL, on_auth, r);
}

/* ---- listening ---- */

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    if (srv->http.listener && !srv->stopping)
        evconnlistener_enable(srv->http.listener);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct server *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_error("msg=\"accept failed; pausing 100ms\" error=\"%s\"",
              evutil_socket_error_to_string(err));
    evconnlistener_disable(lev);
    struct timeval tv = { 0, 100000 };
    evtimer_add(srv->http.accept_retry, &tv);
}

int http_start(struct server *srv)
{
    const struct config *cfg = &srv->cfg;
    struct http *h = &srv->http;
    h->evh = evhttp_new(srv->base);
    h->accept_retry = evtimer_new(srv->base, on_accept_retry, srv);
    if (!h->evh || !h->accept_retry) {
        log_error("msg=\"cannot create the HTTP server\"");
        return -1;
    }
    evhttp_set_max_headers_size(h->evh, (ev_ssize_t)cfg->max_header_size);
    /* bodylimit.c refuses a larger body before reading it; evhttp's own limit (a plain 413
     * at once; room for the mark that ends a cut chunked body) is the backstop for framing
     * bodylimit.c leaves to evhttp, and req_read_body the one for what is between */
    if (bodylimit_init(&h->bodylimit, srv->base, cfg->max_body_size,
                       (size_t)cfg->max_header_size) != 0) {
        log_error("msg=\"cannot create the HTTP server\"");
        return -1;
    }
    evhttp_set_bevcb(h->evh, bodylimit_bev_new, &h->bodylimit);
    evhttp_set_max_body_size(h->evh, (ev_ssize_t)(cfg->max_body_size + BODYLIMIT_TAIL));
    struct timeval idle = { (time_t)(cfg->idle_timeout_ms / 1000),
                            (suseconds_t)((cfg->idle_timeout_ms % 1000) * 1000) };
    evhttp_set_timeout_tv(h->evh, &idle);
    evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                           EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
                                           EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                           EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
    evhttp_set_gencb(h->evh, on_request, srv);

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    int gai = getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (gai != 0) {
        log_error("msg=\"cannot resolve listen address\" listen=%s:%d error=\"%s\"",
                  cfg->listen_host, cfg->listen_port, gai_strerror(gai));
        return -1;
    }
    h->listener = evconnlistener_new_bind(srv->base, NULL, NULL,
                                          LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                                              LEV_OPT_CLOSE_ON_EXEC,
                                          (int)cfg->backlog, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (!h->listener) {
        log_error("msg=\"cannot listen\" listen=%s:%d error=\"%s\"", cfg->listen_host,
                  cfg->listen_port, strerror(errno));
        return -1;
    }
    h->bound = evhttp_bind_listener(h->evh, h->listener);
    if (!h->bound) {
        evconnlistener_free(h->listener);
        h->listener = NULL;
        log_error("msg=\"cannot bind the HTTP server\"");
        return -1;
    }
    evconnlistener_set_error_cb(h->listener, on_accept_error);
    /* answers go out at once: without this, Nagle's algorithm holds the tail of a body
     * written in two segments for the client's delayed ACK (~40 ms); Linux passes the
     * option on to accepted sockets */
    int one = 1;
    if (setsockopt(evconnlistener_get_fd(h->listener), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof one) != 0)
        log_warn("msg=\"cannot set TCP_NODELAY\" error=\"%s\"", strerror(errno));
    log_info("msg=\"listening\" listen=%s:%d", cfg->listen_host, cfg->listen_port);
    return 0;
}

void http_stop_accepting(struct server *srv)
{
    struct http *h = &srv->http;
    if (h->bound) {
        evhttp_del_accept_socket(h->evh, h->bound);     /* frees the listener */
        h->bound = NULL;
        h->listener = NULL;
    }
}

void http_free(struct server *srv)
{
    struct http *h = &srv->http;
    http_stop_accepting(srv);
    if (h->evh)
        evhttp_free(h->evh);
    if (h->accept_retry)
        event_free(h->accept_retry);
    bodylimit_free(&h->bodylimit);     /* after evhttp: no connection reads any more */
    memset(h, 0, sizeof *h);
}
