/* sweeper.h — what comes due in each market, swept every second by every daemon: lapses,
 * expiries, bounded matching walks to go on (src/scripts/sweep.lua), and the end of
 * retention (old events; dead letters, once a minute). */
#ifndef IMPACTD_SWEEPER_H
#define IMPACTD_SWEEPER_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct event;

struct sweeper {
    struct event *timer;            /* every second */
    bool *busy;                     /* per market: a sweep is in flight (owned) */
    bool *again;                    /* per market: sweep again as soon as it is back (owned) */
    unsigned in_flight;
    unsigned long ticks;            /* seconds since start: dead letters are pruned each minute */
};

int sweeper_start(struct server *srv) __attribute__((warn_unused_result));
void sweeper_stop(struct server *srv);
/* Sweeps one market now (or as soon as its sweep in flight is back): a call left work. */
void sweeper_kick(struct server *srv, size_t market);

#endif
