/* bare_evhttp.c — reference (a) of the benchmarks (bench/run): bare evhttp answering fixed
 * bytes.
 *
 *   bare_evhttp PORT PATH STATUS FILE [PATH STATUS FILE ...]
 *
 * Answers a request whose URI (path and query, as sent) is PATH with STATUS and the bytes of
 * FILE, whatever the method; any other URI gets 404. bench/run gives it what impactd
 * answered for the same requests — a need-post's answer for POST /v1/needs, a stock feed
 * body for /v1/feeds/stock and /v1/feeds/stock?format=csv — so both servers send the same
 * number of bytes. Content-Type is text/csv for a FILE ending in .csv, else
 * application/json (with charset=utf-8, as impactd sends them). Set up as src/http.c sets
 * up evhttp (bench_http.c), it does nothing else: no authentication, no JSON, no Redis.
 * What impactd adds to this is the cost of being impactd.
 *
 * Owns the bodies and its process; SIGTERM or SIGINT ends the loop and frees everything. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_http.h"

#define MAX_ROUTES 16
#define BODY_MAX (4 * 1024 * 1024)

struct route {
    const char *uri;
    int status;
    const char *type;
    char *body;
    size_t len;
};

struct bare {
    struct route routes[MAX_ROUTES];
    int nroutes;
};

static void on_request(struct evhttp_request *req, void *arg)
{
    const struct bare *b = arg;
    const char *uri = evhttp_request_get_uri(req);
    const struct route *rt = NULL;
    for (int i = 0; i < b->nroutes && !rt; i++)
        if (!strcmp(uri, b->routes[i].uri))
            rt = &b->routes[i];
    if (!rt) {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", rt->type);
    struct evbuffer *buf = evbuffer_new();
    if (!buf || evbuffer_add(buf, rt->body, rt->len) != 0) {
        evhttp_send_error(req, 500, NULL);
        if (buf)
            evbuffer_free(buf);
        return;
    }
    evhttp_send_reply(req, rt->status, rt->status == 201 ? "Created" : "OK", buf);
    evbuffer_free(buf);
}

/* Reads path into a new buffer owned by rt. */
static int read_body(const char *path, struct route *rt)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    rt->body = malloc(BODY_MAX);
    rt->len = rt->body ? fread(rt->body, 1, BODY_MAX, f) : 0;
    int bad = !rt->body || ferror(f) || !feof(f);
    fclose(f);
    if (bad)
        fprintf(stderr, "bare_evhttp: %s: unreadable or over %d bytes\n", path, BODY_MAX);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    static struct bare b;
    int status = 2;
    struct event_base *base = NULL;
    struct evhttp *evh = NULL;
    int port = argc >= 2 ? bench_http_port(argv[1]) : -1;
    if (port < 0 || argc < 5 || (argc - 2) % 3 != 0 || (argc - 2) / 3 > MAX_ROUTES) {
        fprintf(stderr, "usage: bare_evhttp PORT PATH STATUS FILE [PATH STATUS FILE ...]\n");
        return 2;
    }
    for (int i = 2; i < argc; i += 3) {
        struct route *rt = &b.routes[b.nroutes++];
        size_t n = strlen(argv[i + 2]);
        rt->uri = argv[i];
        rt->status = atoi(argv[i + 1]);
        bool csv = n > 4 && !strcmp(argv[i + 2] + n - 4, ".csv");
        rt->type = csv ? "text/csv; charset=utf-8" : "application/json; charset=utf-8";
        if (rt->status < 200 || rt->status > 299 || read_body(argv[i + 2], rt) != 0)
            goto fail;
    }
    status = 1;
    base = event_base_new();
    evh = base ? bench_http_listen(base, port, on_request, &b) : NULL;
    if (evh)
        status = bench_http_run(base);
fail:
    if (evh)
        evhttp_free(evh);
    if (base)
        event_base_free(base);
    for (int i = 0; i < b.nroutes; i++)
        free(b.routes[i].body);
    return status;
}
