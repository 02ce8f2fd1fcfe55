/* http.c — the evhttp server and the life of one request.
 *
 * Owns: the listening socket (our own evconnlistener, so accept errors such as EMFILE back
 * off instead of spinning), evhttp's limits (header size, body size, idle timeout), and the
 * request pipeline:
 *
 *   evhttp callback → route match (404/405/OPTIONS) → query parse → authentication and the
 *   route's roles (401/403/429/503) → body checks (413/415/400/422) → Idempotency-Key
 *   replay → handler → exactly one reply → log line + metrics → free when no store call
 *   still refers to the request.
 *
 * Handlers never touch evhttp directly. A client that leaves early does not free the
 * request under us: libevent 2.1 detaches an unanswered request from its dead connection and
 * frees it when we answer, so every path still answers exactly once. */
#include "impactd/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netdb.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/problem.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"
#include "impactd/validate.h"

#define IDEM_PENDING_TTL_S 60
#define IDEM_TTL_S 86400
#define HARD_BODY_FACTOR 16     /* evhttp refuses bodies over 16 × max_body_size itself */

/* Idempotency-Key bookkeeping for one POST. */
struct idem_state {
    struct cmd key;             /* the Redis key, one argument (reused for each call) */
    char body_hash[65];
    bool recording;             /* we own the key: store our answer in it */
    /* the answer waiting for its record to be stored */
    int status;
    char *content_type;
    char *location;
    char *body;
    size_t body_len;
};

static void req_proceed(struct req *r);

/* ---- request life cycle ---- */

static void idem_free(struct idem_state *is)
{
    if (!is)
        return;
    cmd_free(&is->key);
    free(is->content_type);
    free(is->location);
    free(is->body);
    free(is);
}

static void req_maybe_free(struct req *r)
{
    if (!r->replied || r->pending)
        return;
    struct server *srv = r->srv;
    evhttp_clear_headers(&r->query);
    json_decref(r->body);
    principal_clear(&r->who);
    idem_free(r->idem);
    if (r->ctx)
        (r->ctx_free ? r->ctx_free : free)(r->ctx);
    free(r);
    srv->http.inflight--;
    srv->metrics.inflight--;
    server_request_done(srv);
}

static void log_path(const char *path, char *out, size_t outlen)
{
    size_t k = 0;
    for (const char *p = path; *p && k + 5 < outlen; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            k += (size_t)snprintf(out + k, outlen - k, "\\x%02x", c);
        else
            out[k++] = (char)c;
    }
    out[k] = '\0';
}

static void req_log(const struct req *r, double seconds)
{
    char path[256];
    log_path(r->path ? r->path : "?", path, sizeof path);
    enum log_level level = r->status >= 500 ? LOG_WARN : LOG_INFO;
    if (!log_enabled(level))
        return;
    const char *peer = "?";
    ev_uint16_t port = 0;
    char *peer_host = NULL;
    struct evhttp_connection *evcon = r->ev ? evhttp_request_get_connection(r->ev) : NULL;
    if (evcon) {
        evhttp_connection_get_peer(evcon, &peer_host, &port);
        if (peer_host)
            peer = peer_host;
    }
    log_msg(level, "req=%s method=%s path=\"%s\" route=\"%s\" status=%d dur_ms=%.3f prt=%s "
            "peer=%s", r->id, router_method_name(r->method), path,
            r->route ? r->route->pattern : "-", r->status, seconds * 1000.0,
            r->who.participant_id[0] ? r->who.participant_id : "-", peer);
}

/* Sends the answer to evhttp; after this r->ev is gone. */
static void req_transmit(struct req *r, int status, const char *ctype, const char *body,
                         size_t len)
{
    struct evhttp_request *ev = r->ev;
    struct evkeyvalq *h = evhttp_request_get_output_headers(ev);
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (!evhttp_find_header(h, "Cache-Control"))
        evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (ctype && status != 204)
        evhttp_add_header(h, "Content-Type", ctype);
    struct evbuffer *buf = evbuffer_new();
    if (buf && status != 204 && len && r->method != M_HEAD)
        evbuffer_add(buf, body, len);
    if (r->method == M_HEAD && status != 204) {
        char cl[24];
        snprintf(cl, sizeof cl, "%zu", len);
        evhttp_add_header(h, "Content-Length", cl);
    }
    r->status = status;
    double secs = (double)(time_mono_us() - r->start_us) / 1e6;
    req_log(r, secs);
    metrics_request(&r->srv->metrics, r->route_index, status, secs);
    evhttp_send_reply(ev, status, NULL, buf);   /* NULL: libevent's standard phrase */
    if (buf)
        evbuffer_free(buf);
    r->ev = NULL;
}

/* ---- Idempotency-Key ---- */

static void idem_on_stored(struct req *r, enum store_status st, redisReply *reply)
{
    (void)st;
    (void)reply;    /* a record we could not store only costs the client a replay */
    struct idem_state *is = r->idem;
    if (is->location)
        evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Location", is->location);
    req_transmit(r, is->status, is->content_type, is->body, is->body_len);
    r->replied = true;
}

static void idem_ignore(struct req *r, enum store_status st, redisReply *reply)
{
    (void)r;
    (void)st;
    (void)reply;
}

static void req_store_call(struct req *r, struct cmd *c, req_store_cb cb, int script, int nkeys);

/* Stores the answer under the key before sending it (or forgets the key on 5xx/429, so the
 * client may try again). Returns true when the answer will be sent later. */
static bool idem_record(struct req *r, int status, const char *ctype, const char *body,
                        size_t len)
{
    struct idem_state *is = r->idem;
    if (!is || !is->recording)
        return false;
    is->recording = false;
    struct cmd c;
    cmd_init(&c);
    if (status >= 500 || status == 429) {
        cmd_add(&c, "DEL");
        cmd_addn(&c, is->key.argv[0], is->key.len[0]);
        req_store_call(r, &c, idem_ignore, -1, 0);
        return false;
    }
    const char *loc = evhttp_find_header(evhttp_request_get_output_headers(r->ev), "Location");
    json_t *rec = json_pack("{s:i, s:s, s:s, s:s%, s:s}", "s", status, "t", ctype ? ctype : "",
                            "h", is->body_hash, "b", body ? body : "", len, "l", loc ? loc : "");
    char *text = rec ? json_dump_compact(rec) : NULL;
    json_decref(rec);
    is->status = status;
    is->content_type = ctype ? strdup(ctype) : NULL;
    is->location = loc ? strdup(loc) : NULL;
    is->body = malloc(len + 1);
    if (!text || (ctype && !is->content_type) || (loc && !is->location) || !is->body) {
        free(text);
        return false;   /* answer now, unrecorded: a retry runs the request again */
    }
    if (len)
        memcpy(is->body, body, len);
    is->body_len = len;
    if (loc)
        evhttp_remove_header(evhttp_request_get_output_headers(r->ev), "Location");
    cmd_add(&c, "SET");
    cmd_addn(&c, is->key.argv[0], is->key.len[0]);
    cmd_add(&c, text);
    cmd_add(&c, "XX");
    cmd_add(&c, "EX");
    cmd_addll(&c, IDEM_TTL_S);
    free(text);
    req_store_call(r, &c, idem_on_stored, -1, 0);
    return true;
}

static void idem_on_claim(struct req *r, enum store_status st, redisReply *reply)
{
    struct idem_state *is = r->idem;
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {   /* ours: run the request */
        is->recording = true;
        r->route->handler(r);
        return;
    }
    json_t *rec = reply->type == REDIS_REPLY_STRING ? json_loads(reply->str, 0, NULL) : NULL;
    const char *hash = json_string_value(json_object_get(rec, "h"));
    if (!rec || !hash) {
        json_decref(rec);
        http_reply_problem(r, 500, NULL, "unreadable idempotency record");
        return;
    }
    if (strcmp(hash, is->body_hash) != 0) {
        json_decref(rec);
        http_reply_problem(r, 422, "idempotency-key-reuse",
                           "this Idempotency-Key was already used with a different request body");
        return;
    }
    if (json_object_get(rec, "p")) {
        json_decref(rec);
        http_set_header(r, "Retry-After", "1");
        http_reply_problem(r, 409, "conflict",
                           "a request with this Idempotency-Key is still being processed");
        return;
    }
    const char *loc = json_string_value(json_object_get(rec, "l"));
    if (loc && *loc)
        http_set_header(r, "Location", loc);
    http_set_header(r, "Idempotent-Replayed", "true");
    json_t *b = json_object_get(rec, "b");
    const char *ctype = json_string_value(json_object_get(rec, "t"));
    req_transmit(r, (int)json_integer_value(json_object_get(rec, "s")),
                 ctype && *ctype ? ctype : NULL, json_string_value(b), json_string_length(b));
    r->replied = true;
    json_decref(rec);
}

/* Returns 0 when the request goes on (maybe later), -1 when it was answered. */
static int idem_begin(struct req *r)
{
    const char *key = http_header(r, "Idempotency-Key");
    if (!key || r->method != M_POST)
        return 0;
    size_t klen = strlen(key);
    bool ok = klen >= 1 && klen <= 255;
    for (const char *p = key; ok && *p; p++)
        ok = *p >= 0x21 && *p <= 0x7e;
    if (!ok) {
        http_reply_problem(r, 400, "bad-request",
                           "Idempotency-Key must be 1-255 visible ASCII characters");
        return -1;
    }
    struct idem_state *is = calloc(1, sizeof *is);
    if (!is) {
        http_reply_problem(r, 500, NULL, "out of memory");
        return -1;
    }
    r->idem = is;
    unsigned char d[16];
    char dhex[33];
    crypto_generichash_state gs;
    crypto_generichash_init(&gs, NULL, 0, sizeof d);
    crypto_generichash_update(&gs, (const unsigned char *)r->path, strlen(r->path) + 1);
    crypto_generichash_update(&gs, (const unsigned char *)key, klen);
    crypto_generichash_final(&gs, d, sizeof d);
    sodium_bin2hex(dhex, sizeof dhex, d, sizeof d);
    unsigned char bh[32];
    crypto_generichash(bh, sizeof bh, r->raw_body, r->raw_body_len, NULL, 0);
    sodium_bin2hex(is->body_hash, sizeof is->body_hash, bh, sizeof bh);
    cmd_init(&is->key);
    store_key(&r->srv->store, &is->key, KEY_IDEMPOTENCY, r->who.participant_id, dhex);

    struct cmd c;
    cmd_init(&c);
    char pending[100];
    snprintf(pending, sizeof pending, "{\"p\":1,\"h\":\"%s\"}", is->body_hash);
    cmd_add(&c, "SET");
    if (!is->key.failed)
        cmd_addn(&c, is->key.argv[0], is->key.len[0]);
    cmd_add(&c, pending);
    cmd_add(&c, "NX");
    cmd_add(&c, "GET");
    cmd_add(&c, "EX");
    cmd_addll(&c, IDEM_PENDING_TTL_S);
    if (is->key.failed)
        c.failed = true;
    req_store_call(r, &c, idem_on_claim, -1, 0);
    return -1;
}

/* ---- answers ---- */

static const char OOM_PROBLEM[] = "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\","
                                  "\"status\":500,\"detail\":\"out of memory\"}";

void http_reply_raw(struct req *r, int status, const char *content_type, const char *body,
                    size_t len)
{
    if (r->replied || r->answering) {
        log_error("msg=\"second reply ignored\" req=%s status=%d", r->id, status);
        return;
    }
    r->answering = true;
    if (idem_record(r, status, content_type, body, len))
        return;     /* sent by idem_on_stored once the record is stored */
    req_transmit(r, status, content_type, body, len);
    r->replied = true;
    req_maybe_free(r);
}

void http_reply_json(struct req *r, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(body);
    if (!text) {
        http_reply_raw(r, 500, "application/problem+json", OOM_PROBLEM, sizeof OOM_PROBLEM - 1);
        return;
    }
    http_reply_raw(r, status, "application/json; charset=utf-8", text, strlen(text));
    free(text);
}

static void reply_problem_doc(struct req *r, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        http_reply_raw(r, 500, "application/problem+json", OOM_PROBLEM, sizeof OOM_PROBLEM - 1);
        return;
    }
    http_reply_raw(r, status, "application/problem+json", text, strlen(text));
    free(text);
}

void http_reply_problem(struct req *r, int status, const char *slug, const char *detail)
{
    const char *title = NULL;
    if (slug && strcmp(slug, "validation") == 0)
        title = "Validation failed";
    else if (slug && strcmp(slug, "malformed-json") == 0)
        title = "Malformed JSON";
    reply_problem_doc(r, status, problem_new(status, slug, title, detail, NULL));
}

void http_reply_problemf(struct req *r, int status, const char *slug, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    http_reply_problem(r, status, slug, detail);
}

void http_reply_invalid(struct req *r, json_t *errors)
{
    size_t n = json_array_size(errors);
    char detail[300];
    const char *first = json_string_value(json_object_get(json_array_get(errors, 0), "field"));
    const char *msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    if (n == 1 && first && msg)
        snprintf(detail, sizeof detail, "%s%s%s", first, *first ? " " : "", msg);
    else
        snprintf(detail, sizeof detail, "%zu fields are invalid; see errors", n);
    reply_problem_doc(r, 422, problem_new(422, "validation", "Validation failed", detail, errors));
}

void http_reply_empty(struct req *r, int status) { http_reply_raw(r, status, NULL, NULL, 0); }

void http_reply_store_failure(struct req *r, enum store_status status, const redisReply *reply)
{
    if (status == STORE_OK) {
        log_error("msg=\"unexpected redis reply\" req=%s reply=\"%s\"", r->id,
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected type");
        http_reply_problem(r, 500, NULL, "the store answered unexpectedly; the error is logged");
        return;
    }
    http_set_header(r, "Retry-After", "1");
    http_reply_problem(r, 503, NULL, status == STORE_TIMEOUT
                                         ? "the store did not answer in time; try again"
                                         : "the store is unavailable; try again shortly");
}

/* ---- streams ---- */

static void on_stream_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct req *r = arg;
    if (!r->streaming || r->client_gone)
        return;
    r->client_gone = true;
    if (r->on_closed)
        r->on_closed(r);
}

int http_stream_start(struct req *r, const char *content_type, http_stream_closed_cb on_closed)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "X-Request-Id", r->id);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    if (!evcon) {
        http_reply_problem(r, 500, NULL, "the connection is gone");
        return -1;
    }
    r->streaming = true;
    r->answering = true;
    r->on_closed = on_closed;
    r->status = 200;
    evhttp_connection_set_closecb(evcon, on_stream_conn_closed, r);
    evhttp_send_reply_start(r->ev, 200, NULL);
    req_log(r, (double)(time_mono_us() - r->start_us) / 1e6);
    metrics_request(&r->srv->metrics, r->route_index, 200,
                    (double)(time_mono_us() - r->start_us) / 1e6);
    return 0;
}

void http_stream_write(struct req *r, const char *data, size_t len)
{
    if (!r->streaming || r->client_gone || !r->ev)
        return;
    struct evbuffer *buf = evbuffer_new();
    if (!buf)
        return;
    evbuffer_add(buf, data, len);
    evhttp_send_reply_chunk(r->ev, buf);
    evbuffer_free(buf);
}

void http_stream_end(struct req *r)
{
    if (!r->streaming)
        return;
    r->streaming = false;
    if (r->ev) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
        if (evcon)
            evhttp_connection_set_closecb(evcon, NULL, NULL);
        evhttp_send_reply_end(r->ev);     /* frees a request whose connection is gone */
        r->ev = NULL;
    }
    r->replied = true;
    req_maybe_free(r);
}

/* ---- accessors ---- */

const char *http_param(const struct req *r, size_t i)
{
    return i < r->match.nparams ? r->match.params[i] : "";
}

const char *http_query(const struct req *r, const char *name)
{
    return evhttp_find_header(&r->query, name);
}

const char *http_header(const struct req *r, const char *name)
{
    return r->ev ? evhttp_find_header(evhttp_request_get_input_headers(r->ev), name) : NULL;
}

void http_set_header(struct req *r, const char *name, const char *value)
{
    if (!r->ev)
        return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_remove_header(h, name);
    evhttp_add_header(h, name, value);
}

int http_page_params(struct req *r, int64_t *limit, int64_t *offset)
{
    json_t *errors = problem_errors_new();
    if (validate_query_int(http_query(r, "limit"), 1, 500, 50, limit) != 0)
        problem_errors_add(errors, "limit", "must be an integer between 1 and 500");
    if (validate_query_int(http_query(r, "cursor"), 0, 1000000000, 0, offset) != 0)
        problem_errors_add(errors, "cursor", "is not a cursor this server issued");
    if (json_array_size(errors)) {
        http_reply_invalid(r, errors);
        return -1;
    }
    json_decref(errors);
    return 0;
}

/* ---- store calls for a request ---- */

struct req_call {
    struct req *r;
    req_store_cb cb;
};

static void on_req_store(void *arg, enum store_status status, redisReply *reply)
{
    struct req_call *rc = arg;
    struct req *r = rc->r;
    req_store_cb cb = rc->cb;
    free(rc);
    if (!r->replied)
        cb(r, status, reply);   /* may answer: the pending count keeps r alive meanwhile */
    r->pending--;
    req_maybe_free(r);
}

static void req_store_call(struct req *r, struct cmd *c, req_store_cb cb, int script, int nkeys)
{
    struct req_call *rc = malloc(sizeof *rc);
    if (!rc) {
        log_error("msg=\"out of memory for a store call\" req=%s", r->id);
        abort();
    }
    rc->r = r;
    rc->cb = cb;
    r->pending++;
    if (script >= 0)
        store_eval(&r->srv->store, (enum script_id)script, nkeys, c, on_req_store, rc);
    else
        store_send(&r->srv->store, c, on_req_store, rc);
}

void http_store_send(struct req *r, struct cmd *c, req_store_cb cb)
{
    req_store_call(r, c, cb, -1, 0);
}

void http_store_eval(struct req *r, enum script_id script, int nkeys, struct cmd *c,
                     req_store_cb cb)
{
    req_store_call(r, c, cb, (int)script, nkeys);
}

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
        http_reply_problemf(r, 413, NULL, "the body is %zu bytes; at most %lld are accepted", len,
                            (long long)r->srv->cfg.max_body_size);
        return -1;
    }
    if (len == 0 && (flags & ROUTE_BODY_OPTIONAL))
        return 0;
    const char *ct = http_header(r, "Content-Type");
    if (ct && !content_type_is_json(ct)) {
        http_reply_problem(r, 415, NULL, "send the body as application/json");
        return -1;
    }
    if (len == 0) {
        http_reply_problem(r, 400, "malformed-json", "a JSON object body is required");
        return -1;
    }
    json_error_t je;
    r->body = json_loadb((const char *)r->raw_body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!r->body) {
        http_reply_problemf(r, 400, "malformed-json", "invalid JSON at line %d, column %d: %s",
                            je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(r->body)) {
        json_t *errors = problem_errors_new();
        problem_errors_add(errors, "", "the body must be a JSON object");
        http_reply_invalid(r, errors);
        return -1;
    }
    return 0;
}

static void req_proceed(struct req *r)
{
    if (req_read_body(r) != 0)
        return;
    if (r->route->roles && idem_begin(r) != 0)
        return;
    r->route->handler(r);
}

static void on_auth_done(struct req *r, enum auth_result result, int retry_after_s)
{
    char ra[16];
    switch (result) {
    case AUTH_OK:
        break;
    case AUTH_MISSING:
    case AUTH_UNKNOWN:
        http_set_header(r, "WWW-Authenticate", "Bearer realm=\"impactd\"");
        http_reply_problem(r, 401, NULL, result == AUTH_MISSING
                                             ? "send Authorization: Bearer <token>"
                                             : "the token is unknown or revoked");
        return;
    case AUTH_RATE_LIMITED:
        r->srv->metrics.rate_limited++;
        snprintf(ra, sizeof ra, "%d", retry_after_s > 0 ? retry_after_s : 1);
        http_set_header(r, "Retry-After", ra);
        http_reply_problem(r, 429, NULL, "too many requests for this token; slow down");
        return;
    case AUTH_STORE_DOWN:
        http_reply_store_failure(r, STORE_DOWN, NULL);
        return;
    }
    if (!(r->route->roles & r->who.role)) {
        http_reply_problemf(r, 403, NULL, "the %s role may not use %s %s",
                            role_name(r->who.role), router_method_name(r->route->method),
                            r->route->pattern);
        return;
    }
    req_proceed(r);
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct server *srv = arg;
    struct req *r = calloc(1, sizeof *r);
    if (!r) {
        evhttp_send_error(ev, 500, "out of memory");
        return;
    }
    r->srv = srv;
    r->ev = ev;
    r->start_us = time_mono_us();
    r->route_index = srv->nroutes;
    r->query.tqh_first = NULL;     /* TAILQ_INIT, without sys/queue.h */
    r->query.tqh_last = &r->query.tqh_first;
    srv->http.inflight++;
    srv->metrics.inflight++;
    r->method = method_bit(evhttp_request_get_command(ev));
    const char *rid = http_header(r, "X-Request-Id");
    if (rid && request_id_sane(rid))
        snprintf(r->id, sizeof r->id, "%s", rid);
    else
        id_new("req_", time_now_ms(), r->id);

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    r->path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!r->path || !*r->path)
        r->path = "/";

    if (srv->stopping)
        http_set_header(r, "Connection", "close");
    router_match(srv->routes, srv->nroutes, r->method, r->path, &r->match);
    if (r->match.index < 0) {
        char allow[64];
        if (!r->match.allow) {
            http_reply_problemf(r, 404, NULL, "no resource at this path");
            return;
        }
        router_allow_header(r->match.allow, allow, sizeof allow);
        http_set_header(r, "Allow", allow);
        if (r->method == M_OPTIONS)
            http_reply_empty(r, 204);
        else
            http_reply_problemf(r, 405, NULL, "this path accepts %s", allow);
        return;
    }
    r->route = &srv->routes[r->match.index];
    r->route_index = (size_t)r->match.index;
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (q && evhttp_parse_query_str(q, &r->query) != 0) {
        http_reply_problem(r, 400, "bad-request", "the query string is malformed");
        return;
    }
    if (r->route->roles == ROLE_PUBLIC) {
        req_proceed(r);
        return;
    }
    auth_authenticate(r, http_header(r, "Authorization"), on_auth_done);
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
    evhttp_set_max_body_size(h->evh, (ev_ssize_t)(cfg->max_body_size * HARD_BODY_FACTOR));
    struct timeval idle = { (time_t)(cfg->idle_timeout_ms / 1000),
                            (suseconds_t)((cfg->idle_timeout_ms % 1000) * 1000) };
    evhttp_set_timeout_tv(h->evh, &idle);
    evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                           EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
                                           EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                           EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
    evhttp_set_flags(h->evh, EVHTTP_SERVER_LINGERING_CLOSE);
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
    memset(h, 0, sizeof *h);
}
