/* bare_evhttp.c — the reference HTTP server of the benchmarks (bench/run, bench/feeds).
 *
 *   bare_evhttp PORT BODY_FILE [STATUS [nodelay]]
 *
 * Answers every request on 127.0.0.1:PORT with STATUS (201 by default),
 * `Content-Type: application/json` and the bytes of BODY_FILE (bench/run passes a real
 * need-post answer of impactd, bench/feeds a real feed answer with status 200, so both
 * servers send the same number of bytes). `nodelay` sets TCP_NODELAY on the listening
 * socket (Linux passes it on to the accepted connections), which src/http.c does not: an
 * answer libevent writes in several pieces (over 16 KiB) then no longer waits for the
 * client's delayed ACK (Nagle's algorithm), some 40 ms on Linux. It sets up libevent exactly as src/http.c does — one
 * thread, its own evconnlistener, the same header/body limits, idle timeout and lingering
 * close — and does nothing else: no routing, no authentication, no JSON, no Redis. What
 * impactd adds to this is the cost of being impactd.
 *
 * Owns nothing beyond its process; SIGTERM or SIGINT leaves the loop and frees everything. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The limits of src/http.c with impactd's default configuration. */
#define MAX_HEADER_SIZE (16 * 1024)
#define MAX_BODY_SIZE   (16 * 64 * 1024)
#define IDLE_TIMEOUT_S  60
#define BACKLOG         1024
#define BODY_MAX        (1024 * 1024)

struct bare {
    char body[BODY_MAX];
    size_t body_len;
    int status;
};

static void on_request(struct evhttp_request *req, void *arg)
{
    const struct bare *b = arg;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", "application/json");
    struct evbuffer *buf = evbuffer_new();
    if (!buf || evbuffer_add(buf, b->body, b->body_len) != 0) {
        evhttp_send_error(req, 500, NULL);
        if (buf)
            evbuffer_free(buf);
        return;
    }
    evhttp_send_reply(req, b->status, b->status == 201 ? "Created" : "OK", buf);
    evbuffer_free(buf);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static int read_body(const char *path, struct bare *b)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    b->body_len = fread(b->body, 1, sizeof b->body, f);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "bare_evhttp: %s: unreadable or over %d bytes\n", path, BODY_MAX);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct bare b;
    if (argc < 3 || argc > 5 || (argc == 5 && strcmp(argv[4], "nodelay") != 0)) {
        fprintf(stderr, "usage: bare_evhttp PORT BODY_FILE [STATUS [nodelay]]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    b.status = argc >= 4 ? atoi(argv[3]) : 201;
    bool nodelay = argc == 5;
    if (port <= 0 || port > 65535 || b.status < 200 || b.status > 299 ||
        read_body(argv[2], &b) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    struct evhttp *evh = NULL;
    struct evconnlistener *lev = NULL;
    struct event *sig_term = NULL, *sig_int = NULL;
    struct event_base *base = event_base_new();
    if (!base)
        goto fail;
    evh = evhttp_new(base);
    if (!evh)
        goto fail;
    evhttp_set_max_headers_size(evh, MAX_HEADER_SIZE);
    evhttp_set_max_body_size(evh, MAX_BODY_SIZE);
    struct timeval idle = { IDLE_TIMEOUT_S, 0 };
    evhttp_set_timeout_tv(evh, &idle);
    evhttp_set_allowed_methods(evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                        EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
    evhttp_set_flags(evh, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(evh, on_request, &b);

    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lev = evconnlistener_new_bind(base, NULL, NULL,
                                  LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                                      LEV_OPT_CLOSE_ON_EXEC,
                                  BACKLOG, (struct sockaddr *)&sin, sizeof sin);
    if (!lev || !evhttp_bind_listener(evh, lev)) {
        fprintf(stderr, "bare_evhttp: cannot listen on 127.0.0.1:%d\n", port);
        if (lev)
            evconnlistener_free(lev);
        goto fail;
    }
    int one = 1;
    if (nodelay && setsockopt(evconnlistener_get_fd(lev), IPPROTO_TCP, TCP_NODELAY, &one,
                              sizeof one) != 0) {
        perror("bare_evhttp: TCP_NODELAY");
        goto fail;
    }
    sig_term = evsignal_new(base, SIGTERM, on_signal, base);
    sig_int = evsignal_new(base, SIGINT, on_signal, base);
    if (!sig_term || !sig_int || evsignal_add(sig_term, NULL) != 0 ||
        evsignal_add(sig_int, NULL) != 0)
        goto fail;
    if (event_base_dispatch(base) == 0)
        status = 0;
fail:
    if (sig_int)
        event_free(sig_int);
    if (sig_term)
        event_free(sig_term);
    if (evh)
        evhttp_free(evh);   /* frees the bound listener too */
    if (base)
        event_base_free(base);
    return status;
}
