/* test_httpc.c — the HTTP/1.1 client: its answer parser (lengths, chunks, interim answers,
 * keep-alive rules, limits, answers cut short, fed whole or byte by byte), and a connection
 * to a loopback server: two requests on one connection, an answer that never comes, a port
 * nobody listens on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "impactd/httpc.h"

/* Feeds text whole (or byte by byte) to a fresh parser; returns its last answer. */
static int feed(const char *text, bool bytewise, bool eof, struct httpc_answer *a,
                enum httpc_error *error, size_t *left)
{
    struct evbuffer *in = evbuffer_new();
    assert_non_null(in);
    httpc_answer_init(a);
    size_t n = strlen(text);
    int r = 0;
    if (bytewise) {
        for (size_t i = 0; i < n && r == 0; i++) {
            assert_int_equal(evbuffer_add(in, text + i, 1), 0);
            r = httpc_answer_feed(a, in, false, error);
        }
    } else {
        assert_int_equal(evbuffer_add(in, text, n), 0);
        r = httpc_answer_feed(a, in, false, error);
    }
    if (r == 0 && eof)
        r = httpc_answer_feed(a, in, true, error);
    if (left)
        *left = evbuffer_get_length(in);
    evbuffer_free(in);
    return r;
}

static void both_ways(const char *text, int want, int status, bool close, size_t body)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct httpc_answer a;
        enum httpc_error error;
        assert_int_equal(feed(text, bytewise, false, &a, &error, NULL), want);
        if (want == 1) {
            assert_int_equal(error, HTTPC_OK);
            assert_int_equal(a.status, status);
            assert_int_equal(a.close, close);
            assert_int_equal(a.body, body);
        }
    }
}

static void test_content_length_keep_alive(void **state)
{
    (void)state;
    both_ways("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n"
              "hello", 1, 200, false, 5);
    both_ways("HTTP/1.1 204 No Content\r\n\r\n", 1, 204, false, 0);
    both_ways("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n", 1, 500, false, 0);
    /* a redirect is an answer like any other */
    both_ways("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://x/\r\nContent-Length: 0\r\n\r\n",
              1, 307, false, 0);
}

static void test_connection_rules(void **state)
{
    (void)state;
    both_ways("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 1, 200, true, 0);
    both_ways("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n", 1,
              200, true, 0);
    both_ways("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 1, 200, true, 2);
    both_ways("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 1, 200,
              false, 2);
    /* LF-only line ends are read too */
    both_ways("HTTP/1.1 202 Accepted\nContent-Length: 1\n\nx", 1, 202, false, 1);
}

static void test_chunked_with_extensions_and_trailers(void **state)
{
    (void)state;
    both_ways("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              "4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n"
              "Expires: never\r\n\r\n", 1, 200, false, 23);
    both_ways("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1, 200, false, 0);
    /* a chunk without its CRLF after the data */
    both_ways("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n", -1, 0,
              false, 0);
}

static void test_interim_answers_are_skipped(void **state)
{
    (void)state;
    both_ways("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
              "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 1, 201, false, 0);
    both_ways("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", -1, 0, false, 0);
}

static void test_body_until_close(void **state)
{
    (void)state;
    struct httpc_answer a;
    enum httpc_error error;
    const char *text = "HTTP/1.1 200 OK\r\n\r\nsome body";
    assert_int_equal(feed(text, false, false, &a, &error, NULL), 0);
    assert_int_equal(feed(text, true, true, &a, &error, NULL), 1);
    assert_int_equal(a.status, 200);
    assert_true(a.close);
    assert_int_equal(a.body, 9);
}

static void test_cut_short_and_invalid(void **state)
{
    (void)state;
    struct httpc_answer a;
    enum httpc_error error;
    assert_int_equal(feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", false, true, &a,
                          &error, NULL), -1);
    assert_int_equal(error, HTTPC_CLOSED);
    assert_int_equal(feed("HTTP/1.1 200 OK\r\nContent-Le", false, true, &a, &error, NULL), -1);
    assert_int_equal(error, HTTPC_CLOSED);
    const char *invalid[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "SSH-2.0-OpenSSH_9.2\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        assert_int_equal(feed(invalid[i], false, false, &a, &error, NULL), -1);
        assert_int_equal(error, HTTPC_INVALID);
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct httpc_answer a;
    enum httpc_error error;
    char text[256];
    snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", HTTPC_MAX_BODY + 1);
    assert_int_equal(feed(text, false, false, &a, &error, NULL), -1);
    assert_int_equal(error, HTTPC_TOO_LARGE);
    static char big[HTTPC_MAX_LINE + 64];
    memset(big, 'a', sizeof big - 1);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    big[sizeof big - 1] = '\0';
    assert_int_equal(feed(big, false, false, &a, &error, NULL), -1);
    assert_int_equal(error, HTTPC_TOO_LARGE);
}

static void test_bytes_after_the_answer_stay(void **state)
{
    (void)state;
    struct httpc_answer a;
    enum httpc_error error;
    size_t left = 0;
    assert_int_equal(feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1", false, false,
                          &a, &error, &left), 1);
    assert_int_equal(left, 8);
}

/* ---- a connection to a loopback server ---- */

/* Answers each request it reads (a blank line ends it: the test's requests have no body)
 * with the next canned answer; NULL: never answers. */
struct server {
    struct event_base *base;
    struct evconnlistener *listener;
    const char *answers[4];
    int next;
    int accepted;
    int requests;
};

static void server_read(struct bufferevent *bev, void *arg)
{
    struct server *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end;
    while ((end = evbuffer_search(in, "\r\n\r\n", 4, NULL)).pos >= 0) {
        evbuffer_drain(in, (size_t)end.pos + 4);
        s->requests++;
        const char *answer = s->answers[s->next++];
        if (answer)
            bufferevent_write(bev, answer, strlen(answer));
    }
}

static void server_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    (void)arg;
    bufferevent_free(bev);
}

static void server_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int len, void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct server *s = arg;
    struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(bev);
    s->accepted++;
    bufferevent_setcb(bev, server_read, NULL, server_event, s);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct client {
    struct event_base *base;
    int status;
    enum httpc_error error;
    int calls;
};

static void client_cb(void *arg, int status, enum httpc_error error)
{
    struct client *c = arg;
    c->status = status;
    c->error = error;
    c->calls++;
    event_base_loopbreak(c->base);
}

static char GET[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
static const struct iovec REQUEST[1] = { { GET, sizeof GET - 1 } };

static void run_for(struct event_base *base, long ms)
{
    struct timeval limit = { ms / 1000, (ms % 1000) * 1000 };
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
}

/* Until the client's callback (it breaks the loop), or 5 s: a hung test fails below. */
static void run(struct client *cl)
{
    run_for(cl->base, 5000);
}

static struct sockaddr_in listen_on(struct server *s)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    s->listener = evconnlistener_new_bind(s->base, server_accept, s, LEV_OPT_CLOSE_ON_FREE |
                                          LEV_OPT_REUSEABLE, 16, (struct sockaddr *)&sin,
                                          sizeof sin);
    assert_non_null(s->listener);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&sin,
                                 &len), 0);
    return sin;
}

static void test_two_requests_on_one_connection_then_a_timeout(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct server s = { .base = base,
                        .answers = { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                                     "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "3\r\nbad\r\n0\r\n\r\n",
                                     NULL } };
    struct sockaddr_in sin = listen_on(&s);
    struct client cl = { .base = base };
    struct httpc *c = httpc_new(base, (struct sockaddr *)&sin, sizeof sin, NULL, client_cb, &cl);
    assert_non_null(c);
    assert_true(httpc_reusable(c));
    assert_int_equal(httpc_send(c, REQUEST, 1, 2000), 0);
    assert_false(httpc_reusable(c));
    assert_int_equal(httpc_send(c, REQUEST, 1, 2000), -1);     /* one at a time */
    run(&cl);
    assert_int_equal(cl.calls, 1);
    assert_int_equal(cl.status, 200);
    assert_int_equal(cl.error, HTTPC_OK);
    assert_true(httpc_reusable(c));
    assert_int_equal(httpc_answers(c), 1);

    assert_int_equal(httpc_send(c, REQUEST, 1, 2000), 0);      /* written at once this time */
    run(&cl);
    assert_int_equal(cl.calls, 2);
    assert_int_equal(cl.status, 503);
    assert_int_equal(httpc_answers(c), 2);
    assert_true(httpc_reusable(c));

    assert_int_equal(httpc_send(c, REQUEST, 1, 100), 0);       /* never answered */
    run(&cl);
    assert_int_equal(cl.calls, 3);
    assert_int_equal(cl.status, 0);
    assert_int_equal(cl.error, HTTPC_TIMEOUT);
    assert_false(httpc_reusable(c));
    assert_int_equal(httpc_send(c, REQUEST, 1, 100), -1);
    assert_int_equal(s.accepted, 1);
    assert_int_equal(s.requests, 3);
    httpc_free(c);
    run_for(base, 100);                             /* the server sees the close */
    evconnlistener_free(s.listener);
    event_base_free(base);
}

static void test_nobody_listening(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct server s = { .base = base };
    struct sockaddr_in sin = listen_on(&s);
    evconnlistener_free(s.listener);                /* the port is free again: refused */
    struct client cl = { .base = base };
    struct httpc *c = httpc_new(base, (struct sockaddr *)&sin, sizeof sin, NULL, client_cb, &cl);
    assert_non_null(c);
    assert_int_equal(httpc_send(c, REQUEST, 1, 2000), 0);
    run(&cl);
    assert_int_equal(cl.calls, 1);
    assert_int_equal(cl.status, 0);
    assert_int_equal(cl.error, HTTPC_CONNECT);
    assert_false(httpc_reusable(c));
    httpc_free(c);
    event_base_free(base);
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_keep_alive),
        cmocka_unit_test(test_connection_rules),
        cmocka_unit_test(test_chunked_with_extensions_and_trailers),
        cmocka_unit_test(test_interim_answers_are_skipped),
        cmocka_unit_test(test_body_until_close),
        cmocka_unit_test(test_cut_short_and_invalid),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_bytes_after_the_answer_stay),
        cmocka_unit_test(test_two_requests_on_one_connection_then_a_timeout),
        cmocka_unit_test(test_nobody_listening),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
