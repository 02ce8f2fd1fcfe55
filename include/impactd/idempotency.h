/* idempotency.h — the Idempotency-Key of a POST: a repeat gets the first answer again.
 *
 * idem_begin claims `idem:{participant}:<digest of participant and key>` (SET NX GET, for
 * 4 × redis_timeout while the first request runs) and fills r->idem (request.h) for the market functions,
 * which record their outcome under the same digest in the change's own atomic step. The
 * first request runs `go`; its answer is stored (sealed) for 24 h before it is sent. A 5xx or
 * 429 releases the key, unless a store call may have taken effect (r->outcome_unknown): the
 * key is then kept as "unknown". A repeat with the same method, path and body gets the stored
 * answer (`Idempotent-Replayed: true`); with another, 422; while the first still runs, 409;
 * after an unknown outcome, a market change runs again (and gets its recorded outcome, if
 * any), anything else 409. */
#ifndef IMPACTD_IDEMPOTENCY_H
#define IMPACTD_IDEMPOTENCY_H

#include "request.h"

/* Runs go(r) now when the request carries no Idempotency-Key (or is not a POST); otherwise
 * later, or never (the request is then answered from the record). */
void idem_begin(struct req *r, void (*go)(struct req *r));

#endif
