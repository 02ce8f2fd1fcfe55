/* bodylimit.c — refuses a request body over the limit before any of it is read.
 *
 * Owns each client connection's socket bufferevent (made here for evhttp, which owns and
 * frees it), the watch on its input buffer, and the table of what each connection's watch
 * knows (bodylimit.h says why it is done this way). The watch follows each request's
 * framing exactly as evhttp 2.1 reads it (http.c of libevent: a request line, header lines
 * up to an empty one, the first Content-Length and the first Transfer-Encoding, chunk-size
 * lines, the trailer), so that it knows where a body starts and ends. It edits only what
 * evhttp has not read yet: the watch runs on every read, before evhttp's read callback.
 *
 * Where it meets framing it does not follow (a folded or very long Content-Length or
 * Transfer-Encoding, an invalid length or chunk size, a header block far over the limit, a
 * Transfer-Encoding other than chunked beside a length over the limit) it stops following
 * that connection: evhttp refuses such a request itself and closes the connection, and
 * evhttp's own body limit (http.c sets it to the same size: a plain 413 at once) is the
 * backstop. So is it for a connection whose slot was taken over by newer ones (more than
 * BODYLIMIT_SLOTS connections reading at once). The state of a connection lives in a fixed
 * table, not in memory of its own, because a plain bufferevent tells no one when it is
 * freed; a slot knows its connection by the address of its input buffer, which no other
 * live connection can have. */
#include "impactd/bodylimit.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_PEEK 256   /* bytes of a line examined; longer framing lines are left to evhttp */
#define SLOT_WAYS 8     /* a connection's slot is one of the 8 of its set */

enum bl_state {
    BL_HEAD,            /* in a header block */
    BL_BODY,            /* in `left` bytes of a Content-Length body */
    BL_CHUNK_SIZE,      /* at a chunk-size line, or the empty line that ends a chunk */
    BL_CHUNK_DATA,      /* in `left` bytes of a chunk */
    BL_TRAILER,         /* in trailer lines up to the empty one */
    BL_PASS,            /* framing not followed: evhttp judges */
    BL_DISCARD,         /* a body was refused: what the client sends after is dropped */
};

struct bl_slot {
    struct bodylimit *owner;
    const struct evbuffer *input;   /* the connection's; NULL: free */
    uint64_t used;                  /* owner->clock at the last read */
    size_t scanned;                 /* bytes at the front of input already followed */
    size_t block;                   /* bytes of the header block so far */
    enum bl_state state;
    bool busy;                      /* editing input: its callbacks are ours */
    bool first_line_seen, may_have_body, seen_length, bad_length, seen_te, chunked;
    bool last_framing;              /* the last header line was a framing one */
    int64_t length;                 /* the first Content-Length */
    int64_t left;                   /* BL_BODY, BL_CHUNK_DATA */
    int64_t total;                  /* chunked: body bytes so far */
};

enum step { STEP_ON, STEP_WAIT };

static void slot_block_reset(struct bl_slot *s)
{
    s->block = 0;
    s->first_line_seen = s->may_have_body = s->seen_length = s->bad_length = false;
    s->seen_te = s->chunked = s->last_framing = false;
    s->length = 0;
}

/* The line at s->scanned: its length without its end, and the end's length (LF or CRLF,
 * as evhttp's EVBUFFER_EOL_CRLF); the first bytes of it in out. False when incomplete. */
static bool line_at(struct evbuffer *in, size_t from, size_t *len, size_t *eol,
                    char out[LINE_PEEK])
{
    struct evbuffer_ptr start;
    if (evbuffer_ptr_set(in, &start, from, EVBUFFER_PTR_SET) != 0)
        return false;
    struct evbuffer_ptr p = evbuffer_search_eol(in, &start, eol, EVBUFFER_EOL_CRLF);
    if (p.pos < 0)
        return false;
    *len = (size_t)p.pos - from;
    size_t n = *len < LINE_PEEK - 1 ? *len : LINE_PEEK - 1;
    ev_ssize_t got = evbuffer_copyout_from(in, &start, out, n);
    out[got > 0 ? (size_t)got : 0] = '\0';    /* evhttp's parser stops at a NUL too */
    return true;
}

/* evhttp_method_may_have_body: the methods evhttp reads a body for (case-sensitive). */
static bool method_may_have_body(const char *line)
{
    static const char *const with_body[] = { "POST", "PUT", "PATCH", "GET", "DELETE",
                                             "OPTIONS", "CONNECT" };
    size_t n = strcspn(line, " ");
    for (size_t i = 0; i < sizeof with_body / sizeof with_body[0]; i++)
        if (strlen(with_body[i]) == n && memcmp(line, with_body[i], n) == 0)
            return true;
    return false;
}

/* Whether line is header `name` (the key is what precedes the first ':', as in evhttp);
 * *value: after the spaces that follow the colon, trailing blanks cut off. */
static bool header_is(char *line, const char *name, char **value)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    char *v = line + n + 1;
    v += strspn(v, " ");
    size_t k = strlen(v);
    while (k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'))
        v[--k] = '\0';
    *value = v;
    return true;
}

/* Drops everything in `in` from byte `at` on, without touching the end of the buffer
 * (bufferevent keeps it frozen between reads). */
static int cut_from(struct evbuffer *in, size_t at)
{
    struct evbuffer *front = evbuffer_new();
    if (!front)
        return -1;
    int rc = evbuffer_remove_buffer(in, front, at) == (int)at ? 0 : -1;
    evbuffer_drain(in, evbuffer_get_length(in));
    if (evbuffer_prepend_buffer(in, front) != 0)
        rc = -1;
    evbuffer_free(front);
    return rc;
}

/* Refused: from s->scanned on, evhttp reads `tail` in place of what the client sent. */
static enum step refuse(struct bl_slot *s, struct evbuffer *in, const char *tail)
{
    s->busy = true;
    if (cut_from(in, s->scanned) != 0 || evbuffer_add(in, tail, strlen(tail)) != 0)
        s->state = BL_PASS;     /* evhttp's own limit answers */
    else
        s->state = BL_DISCARD;
    s->busy = false;
    s->scanned = evbuffer_get_length(in);
    return STEP_ON;
}

/* The empty line that ends a header block (at s->scanned, eol bytes long). */
static enum step head_end(struct bl_slot *s, size_t eol)
{
    enum bl_state next = BL_HEAD;
    if (s->may_have_body && s->chunked) {
        next = BL_CHUNK_SIZE;
        s->total = 0;
    } else if (s->may_have_body && s->seen_length) {
        if (s->bad_length || s->seen_te) {
            next = BL_PASS;     /* evhttp answers 400, or reads a body we cannot end */
        } else if (s->length > 0) {
            next = BL_BODY;
            s->left = s->length;
        }
    }
    slot_block_reset(s);
    s->state = next;
    s->scanned += eol;
    return STEP_ON;
}

/* A first Content-Length over the limit (at s->scanned): the header block ends there, with
 * no body (Debian's evhttp refuses a Transfer-Encoding beside a Content-Length, so the
 * length itself is replaced; the headers after it are of no use to a 413). */
static enum step refuse_length(struct bl_slot *s, struct evbuffer *in, long long length)
{
    char tail[160];
    snprintf(tail, sizeof tail, "Content-Length: 0\r\n" BODYLIMIT_HEADER ": %s length %lld\r\n\r\n",
             s->owner->mark, length);
    slot_block_reset(s);
    return refuse(s, in, tail);
}

static enum step head_step(struct bl_slot *s, struct evbuffer *in)
{
    size_t len, eol, most = 2 * s->owner->max_header;  /* evhttp refuses well before */
    char line[LINE_PEEK], *value;
    if (!line_at(in, s->scanned, &len, &eol, line)) {
        if (s->block + evbuffer_get_length(in) - s->scanned > most)
            s->state = BL_PASS;
        return s->state == BL_PASS ? STEP_ON : STEP_WAIT;
    }
    s->block += len + eol;
    if (s->block > most) {
        s->state = BL_PASS;
        return STEP_ON;
    }
    if (!s->first_line_seen) {
        s->first_line_seen = true;
        s->may_have_body = method_may_have_body(line);
    } else if (len == 0) {
        return head_end(s, eol);
    } else if (line[0] == ' ' || line[0] == '\t') {     /* folded onto the line before */
        if (s->last_framing) {
            s->state = BL_PASS;
            return STEP_ON;
        }
    } else if (header_is(line, "Content-Length", &value)) {
        s->last_framing = true;
        if (len >= LINE_PEEK - 1) {
            s->state = BL_PASS;
            return STEP_ON;
        }
        if (!s->seen_length) {
            char *end;
            long long n = strtoll(value, &end, 10);
            s->seen_length = true;
            s->bad_length = !*value || *end || n < 0;
            s->length = n;
            if (s->may_have_body && !s->bad_length && n > s->owner->max_body)
                return refuse_length(s, in, n);
        }
    } else if (header_is(line, "Transfer-Encoding", &value)) {
        s->last_framing = true;
        if (len >= LINE_PEEK - 1) {
            s->state = BL_PASS;
            return STEP_ON;
        }
        if (!s->seen_te) {
            s->seen_te = true;
            s->chunked = strcasecmp(value, "chunked") == 0;
        }
    } else {
        s->last_framing = false;
    }
    s->scanned += len + eol;
    return STEP_ON;
}

static enum step skip_bytes(struct bl_slot *s, struct evbuffer *in)
{
    size_t have = evbuffer_get_length(in) - s->scanned;
    size_t n = (uint64_t)s->left < have ? (size_t)s->left : have;
    s->scanned += n;
    s->left -= (int64_t)n;
    if (s->left == 0)
        s->state = s->state == BL_BODY ? BL_HEAD : BL_CHUNK_SIZE;
    return n ? STEP_ON : STEP_WAIT;
}

static enum step chunk_size_step(struct bl_slot *s, struct evbuffer *in)
{
    size_t len, eol;
    char line[LINE_PEEK], *end;
    if (!line_at(in, s->scanned, &len, &eol, line)) {
        if (evbuffer_get_length(in) - s->scanned < LINE_PEEK)
            return STEP_WAIT;
        s->state = BL_PASS;
        return STEP_ON;
    }
    if (len > 0) {
        long long n = strtoll(line, &end, 16);
        if (len >= LINE_PEEK - 1 || !*line || (*end && *end != ' ') || n < 0) {
            s->state = BL_PASS;     /* evhttp closes the connection */
            return STEP_ON;
        }
        if (n > s->owner->max_body - s->total) {
            char mark[BODYLIMIT_TAIL + 1], tail[160];
            long long passed = n > INT64_MAX - s->total ? INT64_MAX : s->total + n;
            snprintf(mark, sizeof mark, "%s chunked %020lld", s->owner->mark, passed);
            snprintf(tail, sizeof tail, "%x\r\n%s\r\n0\r\n\r\n", BODYLIMIT_TAIL, mark);
            return refuse(s, in, tail);
        }
        s->total += n;
        s->left = n;
        s->state = n ? BL_CHUNK_DATA : BL_TRAILER;
    }   /* else: the line end after a chunk's data */
    s->scanned += len + eol;
    return STEP_ON;
}

static enum step trailer_step(struct bl_slot *s, struct evbuffer *in)
{
    size_t len, eol;
    char line[LINE_PEEK];
    if (!line_at(in, s->scanned, &len, &eol, line)) {
        if (evbuffer_get_length(in) - s->scanned <= 2 * s->owner->max_header)
            return STEP_WAIT;
        s->state = BL_PASS;
        return STEP_ON;
    }
    if (len == 0)
        s->state = BL_HEAD;
    s->scanned += len + eol;
    return STEP_ON;
}

/* The slot of connection `input`, or NULL when newer connections took it over. */
static struct bl_slot *slot_of(struct bl_slot *hint, const struct evbuffer *input)
{
    return hint->input == input ? hint : NULL;
}

static void on_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    struct bl_slot *s = slot_of(arg, in);
    if (!s || s->busy)
        return;
    s->scanned -= info->n_deleted < s->scanned ? info->n_deleted : s->scanned;
    if (!info->n_added)
        return;
    s->used = ++s->owner->clock;
    enum step st = STEP_ON;
    while (st == STEP_ON && s->scanned < evbuffer_get_length(in)) {
        switch (s->state) {
        case BL_HEAD: st = head_step(s, in); break;
        case BL_BODY:
        case BL_CHUNK_DATA: st = skip_bytes(s, in); break;
        case BL_CHUNK_SIZE: st = chunk_size_step(s, in); break;
        case BL_TRAILER: st = trailer_step(s, in); break;
        case BL_PASS:
            s->scanned = evbuffer_get_length(in);
            break;
        case BL_DISCARD:
            s->busy = true;
            if (cut_from(in, s->scanned) != 0)
                s->state = BL_PASS;
            s->busy = false;
            s->scanned = evbuffer_get_length(in);
            break;
        }
    }
}

/* A slot for a new connection: a free one of its set, else the one used least recently. */
static struct bl_slot *slot_take(struct bodylimit *bl)
{
    uint64_t n = ++bl->clock;
    struct bl_slot *set = bl->slots + (n % (BODYLIMIT_SLOTS / SLOT_WAYS)) * SLOT_WAYS;
    struct bl_slot *best = set;
    for (size_t i = 0; i < SLOT_WAYS; i++) {
        if (!set[i].input) {
            best = &set[i];
            break;
        }
        if (set[i].used < best->used)
            best = &set[i];
    }
    memset(best, 0, sizeof *best);
    best->owner = bl;
    best->used = n;
    return best;
}

struct bufferevent *bodylimit_bev_new(struct event_base *base, void *arg)
{
    struct bodylimit *bl = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct bl_slot *s = slot_take(bl);
    if (!evbuffer_add_cb(in, on_input, s)) {
        bufferevent_free(bev);
        return NULL;
    }
    s->input = in;
    return bev;
}

/* ---- lingering close ---- */

struct bl_linger {
    struct bodylimit *owner;
    evutil_socket_t fd;             /* a duplicate: evhttp closes its own */
    struct event *ev;
    size_t drained;
    struct bl_linger *prev, *next;
};

static void linger_end(struct bl_linger *g)
{
    struct bodylimit *bl = g->owner;
    if (g->prev)
        g->prev->next = g->next;
    else
        bl->lingering = g->next;
    if (g->next)
        g->next->prev = g->prev;
    bl->nlingering--;
    if (g->ev)
        event_free(g->ev);
    evutil_closesocket(g->fd);
    free(g);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    struct bl_linger *g = arg;
    char buf[16384];
    if (what & EV_READ) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0 && (g->drained += (size_t)n) < BODYLIMIT_LINGER_BYTES)
            return;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
    }
    linger_end(g);  /* the client closed, or sent too much, or nothing for a while */
}

/* evhttp has written the answer and is about to close its descriptor. */
static void on_answer_written(struct evhttp_request *req, void *arg)
{
    struct bodylimit *bl = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0 || bl->nlingering >= BODYLIMIT_LINGER_MAX)
        return;
    struct bl_linger *g = calloc(1, sizeof *g);
    if (!g)
        return;
    g->owner = bl;
    g->fd = dup(fd);
    g->ev = g->fd >= 0 ? event_new(bl->base, g->fd, EV_READ | EV_PERSIST, on_linger, g) : NULL;
    struct timeval tv = { BODYLIMIT_LINGER_MS / 1000, (BODYLIMIT_LINGER_MS % 1000) * 1000 };
    g->next = bl->lingering;
    if (g->next)
        g->next->prev = g;
    bl->lingering = g;
    bl->nlingering++;
    if (g->fd < 0 || !g->ev || shutdown(g->fd, SHUT_WR) != 0 || event_add(g->ev, &tv) != 0)
        linger_end(g);
}

void bodylimit_linger(struct bodylimit *bl, struct evhttp_request *req)
{
    evhttp_request_set_on_complete_cb(req, on_answer_written, bl);
}

int bodylimit_init(struct bodylimit *bl, struct event_base *base, int64_t max_body,
                   size_t max_header)
{
    memset(bl, 0, sizeof *bl);
    bl->base = base;
    bl->max_body = max_body;
    bl->max_header = max_header;
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(bl->mark, sizeof bl->mark, raw, sizeof raw);
    bl->slots = calloc(BODYLIMIT_SLOTS, sizeof *bl->slots);
    return bl->slots ? 0 : -1;
}

void bodylimit_free(struct bodylimit *bl)
{
    while (bl->lingering)
        linger_end(bl->lingering);
    free(bl->slots);
    bl->slots = NULL;
}

/* The value after the mark: "length N" or "chunked N". */
static bool refusal_parse(const char *mark, const char *v, bool *chunked, int64_t *bytes)
{
    size_t n = strlen(mark);
    char kind[8];
    long long b;
    if (strncmp(v, mark, n) != 0 || v[n] != ' ' || sscanf(v + n + 1, "%7s %lld", kind, &b) != 2 ||
        b < 0 || (strcmp(kind, "length") && strcmp(kind, "chunked")))
        return false;
    *chunked = kind[0] == 'c';
    *bytes = b;
    return true;
}

bool bodylimit_refused(const struct bodylimit *bl, struct evhttp_request *req, bool *chunked,
                       int64_t *bytes)
{
    const struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    for (const struct evkeyval *h = headers->tqh_first; h; h = h->next.tqe_next)
        if (strcasecmp(h->key, BODYLIMIT_HEADER) == 0 &&
            refusal_parse(bl->mark, h->value, chunked, bytes))
            return true;
    /* a chunked body was cut with a last chunk of BODYLIMIT_TAIL bytes (evhttp 2.1 keeps no
     * trailer headers) */
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    char tail[BODYLIMIT_TAIL + 1];
    struct evbuffer_ptr at;
    if (len < BODYLIMIT_TAIL ||
        evbuffer_ptr_set(body, &at, len - BODYLIMIT_TAIL, EVBUFFER_PTR_SET) != 0 ||
        evbuffer_copyout_from(body, &at, tail, BODYLIMIT_TAIL) != BODYLIMIT_TAIL)
        return false;
    tail[BODYLIMIT_TAIL] = '\0';
    return refusal_parse(bl->mark, tail, chunked, bytes) && *chunked;
}
