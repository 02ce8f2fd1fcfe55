/* bench_http.h — the evhttp server set-up the reference servers of the benchmarks share
 * (bare_evhttp, evhttp_evalsha): one thread, impactd's own limits, TCP_NODELAY, and a loop
 * that SIGTERM or SIGINT ends. Owns nothing after bench_http_run returns. */
#ifndef BENCH_HTTP_H
#define BENCH_HTTP_H

#include <event2/event.h>
#include <event2/http.h>

/* The evhttp of a reference server on 127.0.0.1:port, set up as src/http.c sets up
 * impactd's with its default configuration (own evconnlistener with its backlog, header and
 * body limits, idle timeout, lingering close, TCP_NODELAY on the listener, which Linux
 * passes on to accepted connections); every request goes to cb(req, arg). NULL (after a
 * message on stderr) when it cannot listen. The caller frees it with evhttp_free, which
 * frees the listener too. */
struct evhttp *bench_http_listen(struct event_base *base, int port,
                                 void (*cb)(struct evhttp_request *, void *), void *arg);

/* Runs base until SIGTERM or SIGINT; 0 when it ended that way. */
int bench_http_run(struct event_base *base);

/* The port argument of a reference server, or -1 (after a message) when it is not one. */
int bench_http_port(const char *arg);

#endif
