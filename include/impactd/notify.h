/* notify.h — the transactional outbox: market events become signed messages.
 *
 * notify.c reads every market's event stream in the consumer group "notify" shared by all
 * impactd processes, turns each event into one message per party concerned (inbox item +
 * delivery state), schedules webhook deliveries, and acknowledges the event only then; a
 * read's events are handled as one batch. Entries a dead consumer left pending are claimed with XAUTOCLAIM after 15 s.
 * Delivery itself is webhook.c. */
#ifndef IMPACTD_NOTIFY_H
#define IMPACTD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct event;

struct notify {
    struct event *poll_timer;       /* XREADGROUP of every market, 10 times a second */
    struct event *claim_timer;      /* XAUTOCLAIM, every 5 s */
    struct event *kick;             /* one-shot: read the kicked markets now (a kick must not
                                     * delay the periodic poll) */
    char consumer[96];
    uint64_t groups_generation;     /* store generation the groups were created for */
    unsigned groups_pending;
    bool *reading;                  /* per market: a read is in flight (owned) */
    bool *kicked;                   /* per market: read it at the kick (owned) */
};

int notify_start(struct server *srv) __attribute__((warn_unused_result));
void notify_stop(struct server *srv);
/* Reads a market's events now rather than at the next tick (it has just been changed). */
void notify_kick(struct server *srv, size_t market);

#endif
