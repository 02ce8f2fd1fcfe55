/* calls.h — what a handler uses across its store calls: the state it keeps, store calls
 * made on behalf of its request, and fan-outs (N store calls, one answer).
 *
 * A call made through here runs its callback only while the request is unanswered, and the
 * request stays allocated until every call has come back. A fan-out answers its first
 * failure itself (503, or 500 for a Redis error reply). */
#ifndef IMPACTD_CALLS_H
#define IMPACTD_CALLS_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"
#include "store.h"

typedef void (*req_store_cb)(struct req *r, enum store_status status, redisReply *reply);

/* The handler's state of type t: zeroed on first use, the same object afterwards. Returns
 * NULL (after answering 500) when memory runs out. */
void *req_state(struct req *r, const struct req_state_type *t);

void req_send(struct req *r, struct cmd *c, req_store_cb cb);
void req_fcall(struct req *r, enum store_fn fn, int nkeys, struct cmd *c, req_store_cb cb);

/* A fan-out: parts sent one by one (each its own store call), answered once. `part` runs for
 * each successful reply, in any order (it may set failed); `done` once all parts are back and
 * none failed. The first failure is answered instead, and later parts are ignored. */
typedef void (*fanout_part_cb)(struct req *r, size_t part, redisReply *reply);
typedef void (*fanout_done_cb)(struct req *r);
struct fanout {
    size_t waiting;
    bool open;                      /* parts may still be added */
    bool failed;
    enum store_status status;       /* of the first failure */
    fanout_part_cb part;
    fanout_done_cb done;
};
void fanout_begin(struct fanout *f, fanout_part_cb part, fanout_done_cb done);
void fanout_send(struct req *r, struct fanout *f, size_t part, struct cmd *c);
void fanout_fcall(struct req *r, struct fanout *f, size_t part, enum store_fn fn, int nkeys,
                  struct cmd *c);
/* No more parts; `done` may run (now, if every part is already back). */
void fanout_end(struct req *r, struct fanout *f);

#endif
