/* httpc.c — a small HTTP/1.1 client connection (httpc.h).
 *
 * Owns one bufferevent (socket, or OpenSSL over a socket), its deadline timer and the parse
 * state of the answer under way; nothing else. Reading stays enabled for the connection's
 * whole life (so a close by the peer while idle is seen), and on plain TCP writing is only
 * enabled while a request could not be written at once: a request costs one write and the
 * reads of its answer, no event changes. Callbacks run last in every handler, so they may
 * free the connection. The answer parser is a function of its own, fed from the input
 * buffer, so that it can be tested without sockets. */
#include "impactd/httpc.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "impactd/log.h"

struct httpc {
    struct bufferevent *bev;        /* owned; frees the SSL with it */
    struct event *deadline;         /* owned */
    httpc_cb cb;
    void *arg;
    struct httpc_answer answer;
    unsigned answers;
    bool tls;
    bool connected;
    bool busy;                      /* a request is out */
    bool closed;                    /* no further request: the connection is over */
};

/* ---- the answer parser ---- */

enum { A_STATUS, A_HEADERS, A_BODY, A_CHUNK_SIZE, A_CHUNK_DATA, A_CHUNK_END, A_TRAILERS,
       A_UNTIL_CLOSE, A_DONE };

void httpc_answer_init(struct httpc_answer *a)
{
    memset(a, 0, sizeof *a);
    a->state = A_STATUS;
}

/* One line without its end (CRLF or LF) into line[HTTPC_MAX_LINE]: 1, 0 (not yet a whole
 * line), or -1 (too long). */
static int take_line(struct httpc_answer *a, struct evbuffer *in, char *line, size_t *len)
{
    size_t eol = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
    if (p.pos < 0)
        return evbuffer_get_length(in) >= HTTPC_MAX_LINE ? -1 : 0;
    if ((size_t)p.pos >= HTTPC_MAX_LINE)
        return -1;
    if (p.pos > 0 && evbuffer_remove(in, line, (size_t)p.pos) != (int)p.pos)
        return -1;
    line[p.pos] = '\0';
    evbuffer_drain(in, eol);
    *len = (size_t)p.pos;
    a->head += (size_t)p.pos + eol;
    return 1;
}

/* Does the comma-separated list `value` hold `token` (case-insensitive)? */
static bool has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if ((size_t)(last - p) == n && strncasecmp(p, token, n) == 0)
            return true;
        p = end;
    }
    return false;
}

static int parse_status(struct httpc_answer *a, const char *line)
{
    if (strncmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) || line[8] != ' ' ||
        !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
        !isdigit((unsigned char)line[11]) || (line[12] && line[12] != ' '))
        return -1;
    a->minor = line[7] - '0';
    a->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    a->close = a->minor == 0;       /* HTTP/1.0 closes unless it says keep-alive */
    a->chunked = a->has_length = false;
    return a->status >= 100 ? 0 : -1;
}

static int parse_header(struct httpc_answer *a, char *line, enum httpc_error *error)
{
    if (line[0] == ' ' || line[0] == '\t')
        return 0;                   /* an obsolete continuation line: nothing we read */
    char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return -1;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        v[--vl] = '\0';
    if (!strcasecmp(line, "content-length")) {
        int64_t n = 0;
        if (!*v)
            return -1;
        for (const char *p = v; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return -1;
            if (n > (INT64_MAX - 9) / 10) {
                *error = HTTPC_TOO_LARGE;
                return -1;
            }
            n = n * 10 + (*p - '0');
        }
        if (a->has_length && a->length != n)
            return -1;              /* two lengths that disagree */
        a->has_length = true;
        a->length = n;
    } else if (!strcasecmp(line, "transfer-encoding")) {
        a->chunked = has_token(v, "chunked");
        if (!a->chunked)
            a->close = true;        /* another coding: the body ends with the connection */
    } else if (!strcasecmp(line, "connection")) {
        if (has_token(v, "close"))
            a->close = true;
        else if (a->minor == 0 && has_token(v, "keep-alive"))
            a->close = false;
    }
    return 0;
}

/* The head is over: where the body is, if there is one. */
static int head_done(struct httpc_answer *a, enum httpc_error *error)
{
    if (a->status < 200) {
        if (a->status == 101)
            return -1;              /* an upgrade nobody asked for */
        a->state = A_STATUS;        /* an interim answer (100, 103): the real one follows */
        return 0;
    }
    if (a->status == 204 || a->status == 304) {
        a->state = A_DONE;
    } else if (a->chunked) {
        a->state = A_CHUNK_SIZE;
    } else if (a->has_length) {
        if (a->length > HTTPC_MAX_BODY) {
            *error = HTTPC_TOO_LARGE;
            return -1;
        }
        a->left = a->length;
        a->state = a->left ? A_BODY : A_DONE;
    } else {
        a->close = true;
        a->state = A_UNTIL_CLOSE;
    }
    return 0;
}

static int parse_chunk_size(struct httpc_answer *a, const char *line, enum httpc_error *error)
{
    int64_t n = 0;
    const char *p = line;
    if (!isxdigit((unsigned char)*p))
        return -1;
    for (; isxdigit((unsigned char)*p); p++) {
        if (n > (INT64_MAX >> 4)) {
            *error = HTTPC_TOO_LARGE;
            return -1;
        }
        n = n * 16 + (isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10));
    }
    if (*p && *p != ';' && *p != ' ' && *p != '\t')
        return -1;
    if (n == 0) {
        a->state = A_TRAILERS;
        return 0;
    }
    if ((int64_t)a->body + n > HTTPC_MAX_BODY) {
        *error = HTTPC_TOO_LARGE;
        return -1;
    }
    a->left = n;
    a->state = A_CHUNK_DATA;
    return 0;
}

/* Discards up to a->left bytes of body. */
static void skip_body(struct httpc_answer *a, struct evbuffer *in)
{
    size_t have = evbuffer_get_length(in);
    size_t n = (int64_t)have < a->left ? have : (size_t)a->left;
    evbuffer_drain(in, n);
    a->left -= (int64_t)n;
    a->body += n;
}

int httpc_answer_feed(struct httpc_answer *a, struct evbuffer *in, bool at_eof,
                      enum httpc_error *error)
{
    char line[HTTPC_MAX_LINE];
    size_t len;
    *error = HTTPC_INVALID;
    while (a->state != A_DONE) {
        int r;
        switch (a->state) {
        case A_STATUS:
        case A_HEADERS:
        case A_CHUNK_SIZE:
        case A_CHUNK_END:
        case A_TRAILERS:
            r = take_line(a, in, line, &len);
            if (r < 0 || a->head > HTTPC_MAX_HEAD) {
                *error = a->state == A_STATUS || a->state == A_HEADERS ? HTTPC_TOO_LARGE
                                                                        : HTTPC_INVALID;
                return -1;
            }
            if (r == 0)
                goto more;
            if (a->state == A_STATUS) {
                if (len == 0 && a->head <= 2)
                    continue;       /* a stray empty line before the answer */
                if (parse_status(a, line) != 0)
                    return -1;
                a->state = A_HEADERS;
            } else if (a->state == A_HEADERS) {
                if (len == 0) {
                    if (head_done(a, error) != 0)
                        return -1;
                } else if (parse_header(a, line, error) != 0) {
                    return -1;
                }
            } else if (a->state == A_CHUNK_SIZE) {
                if (parse_chunk_size(a, line, error) != 0)
                    return -1;
            } else if (a->state == A_CHUNK_END) {
                if (len != 0)
                    return -1;
                a->state = A_CHUNK_SIZE;
            } else if (len == 0) {
                a->state = A_DONE;  /* the end of the trailers */
            }
            break;
        case A_BODY:
        case A_CHUNK_DATA:
            skip_body(a, in);
            if (a->left > 0)
                goto more;
            a->state = a->state == A_BODY ? A_DONE : A_CHUNK_END;
            break;
        case A_UNTIL_CLOSE:
            a->body += evbuffer_get_length(in);
            evbuffer_drain(in, evbuffer_get_length(in));
            if (a->body > HTTPC_MAX_BODY) {
                *error = HTTPC_TOO_LARGE;
                return -1;
            }
            if (!at_eof)
                return 0;
            a->state = A_DONE;
            break;
        default:
            return -1;
        }
    }
    *error = HTTPC_OK;
    return 1;
more:
    if (at_eof) {
        *error = HTTPC_CLOSED;
        return -1;
    }
    return 0;
}

/* ---- the connection ---- */

/* The connection carries nothing more; the owner frees it. */
static void httpc_close(struct httpc *c)
{
    c->closed = true;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
}

/* Ends the request under way. Last in every handler: the callback may free c. */
static void httpc_finish(struct httpc *c, int status, enum httpc_error error)
{
    event_del(c->deadline);
    c->busy = false;
    if (error != HTTPC_OK || c->answer.close ||
        evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        httpc_close(c);             /* bytes after the answer: nothing we can rely on */
    if (error == HTTPC_OK)
        c->answers++;
    c->cb(c->arg, error == HTTPC_OK ? status : 0, error);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct httpc *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!c->busy) {                 /* bytes while idle: not an answer to anything */
        evbuffer_drain(in, evbuffer_get_length(in));
        httpc_close(c);
        return;
    }
    enum httpc_error error;
    int r = httpc_answer_feed(&c->answer, in, false, &error);
    if (r != 0)
        httpc_finish(c, c->answer.status, r > 0 ? HTTPC_OK : error);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct httpc *c = arg;
    if (!c->tls && c->connected)
        bufferevent_disable(bev, EV_WRITE);     /* the next request is written at once */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct httpc *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = true;
        if (!c->tls && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            bufferevent_disable(bev, EV_WRITE);
        return;
    }
    enum httpc_error error = HTTPC_CLOSED;
    int r = -1;
    if (!c->connected) {
        unsigned long tls_error = c->tls ? bufferevent_get_openssl_error(bev) : 0;
        error = tls_error ? HTTPC_TLS : HTTPC_CONNECT;
        if (tls_error) {
            char text[256];
            ERR_error_string_n(tls_error, text, sizeof text);
            log_debug("msg=\"TLS handshake failed\" error=\"%s\"", text);
        }
    } else if (c->busy && (what & BEV_EVENT_EOF)) {
        r = httpc_answer_feed(&c->answer, bufferevent_get_input(bev), true, &error);
    }
    httpc_close(c);
    if (c->busy)
        httpc_finish(c, r > 0 ? c->answer.status : 0, r > 0 ? HTTPC_OK : error);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct httpc *c = arg;
    httpc_close(c);
    httpc_finish(c, 0, HTTPC_TIMEOUT);
}

struct httpc *httpc_new(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                        struct ssl_st *ssl, httpc_cb cb, void *arg)
{
    struct httpc *c = calloc(1, sizeof *c);
    if (!c) {
        if (ssl)
            SSL_free(ssl);
        return NULL;
    }
    c->cb = cb;
    c->arg = arg;
    c->tls = ssl != NULL;
    if (ssl) {
        c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!c->bev)
            SSL_free(ssl);
        else
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    c->deadline = evtimer_new(base, on_deadline, c);
    if (!c->bev || !c->deadline)
        goto fail;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0 ||
        bufferevent_socket_connect(c->bev, sa, (int)salen) != 0)
        goto fail;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    int one = 1;
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        log_debug("msg=\"TCP_NODELAY not set\" errno=%d", errno);
    return c;
fail:
    if (c->deadline)
        event_free(c->deadline);
    if (c->bev)
        bufferevent_free(c->bev);
    free(c);
    return NULL;
}

int httpc_send(struct httpc *c, const struct iovec *iov, int iovcnt, int64_t timeout_ms)
{
    if (!httpc_reusable(c))
        return -1;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t written = 0;
    if (!c->tls && c->connected && evbuffer_get_length(out) == 0) {
        /* at once; what the socket does not take, and any error, go through the bufferevent */
        struct msghdr msg = { .msg_iov = (struct iovec *)(uintptr_t)iov,
                              .msg_iovlen = (size_t)iovcnt };
        ssize_t n = sendmsg(bufferevent_getfd(c->bev), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            written = (size_t)n;
    }
    size_t skip = written, left = 0;
    for (int i = 0; i < iovcnt; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        if (evbuffer_add(out, (const char *)iov[i].iov_base + skip, len - skip) != 0) {
            httpc_close(c);         /* half a request went out: the connection is spoilt */
            return -1;
        }
        left += len - skip;
        skip = 0;
    }
    if (left && !c->tls && bufferevent_enable(c->bev, EV_WRITE) != 0) {
        httpc_close(c);
        return -1;
    }
    struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000) };
    if (event_add(c->deadline, &tv) != 0) {
        httpc_close(c);
        return -1;
    }
    httpc_answer_init(&c->answer);
    c->busy = true;
    return 0;
}

bool httpc_reusable(const struct httpc *c)
{
    return !c->busy && !c->closed;
}

unsigned httpc_answers(const struct httpc *c)
{
    return c->answers;
}

void httpc_free(struct httpc *c)
{
    if (!c)
        return;
    event_free(c->deadline);
    bufferevent_free(c->bev);
    free(c);
}
