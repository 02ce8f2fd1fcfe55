/* receiver.c — the webhook receiver of the notification benchmark (bench/notify).
 *
 *   receiver OUT_FILE PORT [PORT...]
 *
 * Listens on 127.0.0.1:PORT for each PORT (one evhttp, one thread) and answers every POST
 * with 200 and an empty body at once: no signature check, no storage beyond one buffered
 * line of OUT_FILE per request,
 *     <arrival µs> <port> <webhook-id> <payload type> <payload data.id> <body bytes>
 * (the port of the Host header: which endpoint it was sent to; `-` for a field that is
 * missing). Arrival times are CLOCK_MONOTONIC µs, taken when the request has been read: the
 * clock bench/pace stamps its sends with, so the two files can be joined. `GET /stats` answers
 * "<POSTs received> <first arrival µs> <last arrival µs>" (0 0 0 before the first) and
 * flushes OUT_FILE, so what bench/notify reads after asking is complete.
 *
 * Owns OUT_FILE and its process; SIGTERM or SIGINT flushes the file and ends the loop. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PORTS 16
#define MAX_BODY_SIZE (1024 * 1024)
#define IDLE_TIMEOUT_S 30
#define FIELD_MAX 64

struct receiver {
    FILE *out;
    unsigned long long count;
    long long first_us, last_us;
};

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Copies s into out (at most FIELD_MAX - 1 bytes, spaces and newlines replaced), or "-". */
static void field(char out[FIELD_MAX], const char *s)
{
    if (!s || !*s) {
        strcpy(out, "-");
        return;
    }
    size_t i = 0;
    for (; s[i] && i < FIELD_MAX - 1; i++)
        out[i] = (s[i] == ' ' || s[i] == '\n' || s[i] == '\r') ? '_' : s[i];
    out[i] = '\0';
}

static void on_post(struct evhttp_request *req, struct receiver *r, long long t)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    json_t *payload = body ? json_loadb(body, len, 0, NULL) : NULL;
    char id[FIELD_MAX], type[FIELD_MAX], data_id[FIELD_MAX];
    field(id, evhttp_find_header(evhttp_request_get_input_headers(req), "webhook-id"));
    field(type, json_string_value(json_object_get(payload, "type")));
    field(data_id, json_string_value(json_object_get(json_object_get(payload, "data"), "id")));
    json_decref(payload);

    /* the port of the Host header: which endpoint this was sent to */
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    const char *colon = h ? strrchr(h, ':') : NULL;
    fprintf(r->out, "%lld %s %s %s %s %zu\n", t, colon ? colon + 1 : "-", id, type, data_id, len);
    if (r->count++ == 0)
        r->first_us = t;
    r->last_us = t;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct receiver *r = arg;
    long long t = mono_us();
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_POST) {
        on_post(req, r, t);     /* a few µs: the body is freed with the request */
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    if (cmd == EVHTTP_REQ_GET && !strcmp(evhttp_request_get_uri(req), "/stats")) {
        fflush(r->out);
        struct evbuffer *buf = evbuffer_new();
        if (!buf || evbuffer_add_printf(buf, "%llu %lld %lld\n", r->count, r->first_us,
                                        r->last_us) < 0) {
            evhttp_send_error(req, 500, NULL);
        } else {
            evhttp_send_reply(req, 200, "OK", buf);
        }
        if (buf)
            evbuffer_free(buf);
        return;
    }
    evhttp_send_error(req, 404, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    static struct receiver r;
    if (argc < 3 || argc - 2 > MAX_PORTS) {
        fprintf(stderr, "usage: receiver OUT_FILE PORT [PORT...] (at most %d ports)\n", MAX_PORTS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int status = 1;
    struct evhttp *evh = NULL;
    struct event *sig_term = NULL, *sig_int = NULL;
    struct event_base *base = NULL;
    r.out = fopen(argv[1], "w");
    if (!r.out) {
        perror(argv[1]);
        return 2;
    }
    static char outbuf[1 << 20];
    setvbuf(r.out, outbuf, _IOFBF, sizeof outbuf);
    base = event_base_new();
    evh = base ? evhttp_new(base) : NULL;
    if (!evh)
        goto fail;
    evhttp_set_max_body_size(evh, MAX_BODY_SIZE);
    evhttp_set_timeout(evh, IDLE_TIMEOUT_S);
    evhttp_set_allowed_methods(evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(evh, on_request, &r);
    for (int i = 2; i < argc; i++) {
        int port = atoi(argv[i]);
        if (port <= 0 || port > 65535 || evhttp_bind_socket(evh, "127.0.0.1", (ev_uint16_t)port) != 0) {
            fprintf(stderr, "receiver: cannot listen on 127.0.0.1:%s\n", argv[i]);
            goto fail;
        }
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
        evhttp_free(evh);
    if (base)
        event_base_free(base);
    if (fclose(r.out) != 0)
        status = 1;
    return status;
}
