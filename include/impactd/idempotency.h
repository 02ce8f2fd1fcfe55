/* idempotency.h — the Idempotency-Key of a POST: a repeat gets the first answer again.
 *
 * idem_begin claims `idem:{participant}:<digest of path and key>` (SET NX GET, 60 s while the
 * first request runs). The first request runs `go`; its answer is stored for 24 h before it is
 * sent (5xx and 429 answers release the key instead, so the client may try again). A repeat
 * with the same body gets the stored answer (`Idempotent-Replayed: true`); with another body,
 * 422; while the first still runs, 409. */
#ifndef IMPACTD_IDEMPOTENCY_H
#define IMPACTD_IDEMPOTENCY_H

#include "request.h"

/* Runs go(r) now when the request carries no Idempotency-Key (or is not a POST); otherwise
 * later, or never (the request is then answered from the record). */
void idem_begin(struct req *r, void (*go)(struct req *r));

#endif
