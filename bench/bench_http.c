/* bench_http.c — the evhttp set-up of the reference servers (bench_http.h): what they share
 * with impactd's src/http.c, so that a reference differs from impactd only in what it does
 * per request. Owns the listener until evhttp_free and the signal events of one run. */
#include "bench_http.h"

#include <arpa/inet.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

/* The limits of src/http.c with impactd's default configuration. */
#define MAX_HEADER_SIZE (16 * 1024)
#define MAX_BODY_SIZE   (16 * 64 * 1024)
#define IDLE_TIMEOUT_S  60
#define BACKLOG         1024

struct evhttp *bench_http_listen(struct event_base *base, int port,
                                 void (*cb)(struct evhttp_request *, void *), void *arg)
{
    struct evhttp *evh = evhttp_new(base);
    if (!evh)
        return NULL;
    evhttp_set_max_headers_size(evh, MAX_HEADER_SIZE);
    evhttp_set_max_body_size(evh, MAX_BODY_SIZE);
    struct timeval idle = { IDLE_TIMEOUT_S, 0 };
    evhttp_set_timeout_tv(evh, &idle);
    evhttp_set_allowed_methods(evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                        EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
    evhttp_set_flags(evh, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(evh, cb, arg);

    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *lev = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        BACKLOG, (struct sockaddr *)&sin, sizeof sin);
    if (!lev || !evhttp_bind_listener(evh, lev)) {
        fprintf(stderr, "bench: cannot listen on 127.0.0.1:%d\n", port);
        if (lev)
            evconnlistener_free(lev);
        evhttp_free(evh);
        return NULL;
    }
    int one = 1;
    if (setsockopt(evconnlistener_get_fd(lev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        perror("bench: TCP_NODELAY");
        evhttp_free(evh);
        return NULL;
    }
    return evh;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int bench_http_run(struct event_base *base)
{
    int status = 1;
    signal(SIGPIPE, SIG_IGN);
    struct event *sig_term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sig_int = evsignal_new(base, SIGINT, on_signal, base);
    if (sig_term && sig_int && evsignal_add(sig_term, NULL) == 0 &&
        evsignal_add(sig_int, NULL) == 0 && event_base_dispatch(base) == 0)
        status = 0;
    if (sig_int)
        event_free(sig_int);
    if (sig_term)
        event_free(sig_term);
    return status;
}

int bench_http_port(const char *arg)
{
    char *end;
    long port = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || port <= 0 || port > 65535) {
        fprintf(stderr, "bench: %s is not a port\n", arg);
        return -1;
    }
    return (int)port;
}
