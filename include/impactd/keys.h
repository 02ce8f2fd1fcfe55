/* keys.h — the Redis key plan, in one place (docs/ARCHITECTURE.md explains the slots).
 *
 * Every key is IMPACTD_KEY_PREFIX followed by one of these formats. The part in braces is
 * the Redis Cluster hash tag: keys that one script touches together share it. */
#ifndef IMPACTD_KEYS_H
#define IMPACTD_KEYS_H

#define KEY_PARTICIPANT        "prt:{%s}"             /* hash: the participant record */
#define KEY_PARTICIPANT_TOKENS "prt:{%s}:tokens"      /* set of the participant's token ids */
#define KEY_TOKEN              "tok:{%s}"             /* hash: hash, participant, role, ... */
#define KEY_IDEMPOTENCY        "idem:{%s}:%s"         /* participant id, key digest */

#endif
