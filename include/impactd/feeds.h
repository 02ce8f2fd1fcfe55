/* feeds.h — the state the ministry's feeds keep between requests: the stock feed's built
 * answers, by (format, filters, visible regions), with the aggregates' version they were
 * built from (feeds.c). The handlers themselves are in handlers.h. */
#ifndef IMPACTD_FEEDS_H
#define IMPACTD_FEEDS_H

#include "dict.h"

struct feeds {
    struct dict cache;              /* key -> struct stock_body * (refcounted) */
};

int feeds_init(struct feeds *f) __attribute__((warn_unused_result));
void feeds_free(struct feeds *f);

#endif
