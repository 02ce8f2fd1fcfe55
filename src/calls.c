/* calls.c — a handler's state, store calls on behalf of its request, and fan-outs
 * (calls.h). Sits above request.c (the request's life) and reply.c (what a failure answers). */
#include "impactd/calls.h"

#include <stdlib.h>

#include "impactd/log.h"
#include "impactd/reply.h"
#include "impactd/server.h"

void *req_state(struct req *r, const struct req_state_type *t)
{
    if (r->state) {
        if (r->state_type != t) {
            log_error("msg=\"request state of another type\" req=%s have=%s want=%s", r->id,
                      r->state_type->name, t->name);
            abort();    /* a programming error: two handlers share a request */
        }
        return r->state;
    }
    r->state = calloc(1, t->size);
    if (!r->state) {
        reply_problem(r, 500, NULL, "out of memory");
        return NULL;
    }
    r->state_type = t;
    return r->state;
}

/* ---- store calls ---- */

struct req_call {
    struct req *r;
    req_store_cb cb;
    struct fanout *fan;
    size_t part;
};

static void fanout_settle(struct req *r, struct fanout *f)
{
    if (f->waiting || f->open || r->replied)
        return;
    if (f->failed)
        reply_store_failure(r, f->status, NULL);
    else
        f->done(r);
}

static void on_req_store(void *arg, enum store_status status, redisReply *reply)
{
    struct req_call *rc = arg;
    struct req *r = rc->r;
    struct fanout *f = rc->fan;
    if (f) {
        f->waiting--;
        if (!r->replied && !f->failed) {
            if (status != STORE_OK || store_reply_error(reply, NULL)) {
                f->failed = true;
                f->status = status;
                if (status == STORE_OK)
                    log_error("msg=\"store error in a fan-out\" req=%s part=%zu error=\"%s\"",
                              r->id, rc->part, reply->str);
            } else {
                f->part(r, rc->part, reply);
            }
        }
        fanout_settle(r, f);
    } else if (!r->replied) {
        rc->cb(r, status, reply);   /* may answer: the hold keeps r alive meanwhile */
    }
    free(rc);
    req_release(r);
}

static struct req_call *req_call_new(struct req *r, req_store_cb cb, struct fanout *f,
                                     size_t part)
{
    struct req_call *rc = malloc(sizeof *rc);
    if (!rc) {
        log_error("msg=\"out of memory for a store call\" req=%s", r->id);
        abort();
    }
    *rc = (struct req_call){ r, cb, f, part };
    req_hold(r);
    return rc;
}

void req_send(struct req *r, struct cmd *c, req_store_cb cb)
{
    store_send(&r->srv->store, c, on_req_store, req_call_new(r, cb, NULL, 0));
}

void req_fcall(struct req *r, enum store_fn fn, int nkeys, struct cmd *c, req_store_cb cb)
{
    store_fcall(&r->srv->store, fn, nkeys, c, on_req_store, req_call_new(r, cb, NULL, 0));
}

/* ---- fan-outs ---- */

void fanout_begin(struct fanout *f, fanout_part_cb part, fanout_done_cb done)
{
    *f = (struct fanout){ .open = true, .part = part, .done = done };
}

void fanout_send(struct req *r, struct fanout *f, size_t part, struct cmd *c)
{
    f->waiting++;
    store_send(&r->srv->store, c, on_req_store, req_call_new(r, NULL, f, part));
}

void fanout_fcall(struct req *r, struct fanout *f, size_t part, enum store_fn fn, int nkeys,
                  struct cmd *c)
{
    f->waiting++;
    store_fcall(&r->srv->store, fn, nkeys, c, on_req_store, req_call_new(r, NULL, f, part));
}

void fanout_end(struct req *r, struct fanout *f)
{
    f->open = false;
    fanout_settle(r, f);
}
