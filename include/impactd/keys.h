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



/* Markets (docs/matching.md, src/scripts/market.lua): every key of one market shares the
 * tag {m:<market id>}. KEY_MARKET takes the market id and one of the suffixes below; the
 * first MARKET_FIXED_KEYS are passed, in this order, to every market function. */
#define KEY_MARKET             "m:{%s}:%s"
#define MKEY_RECORDS           "rec"         /* hash: id -> record (MessagePack) */
#define MKEY_LOG_OFFERS        "log:o"       /* stream: offers in creation order */
#define MKEY_LOG_NEEDS         "log:n"       /* stream: needs in creation order */
#define MKEY_LOG_ALLOCS        "log:a"       /* stream: allocations in creation order */
#define MKEY_ALLOC_OWNERS      "aown"        /* zset (lex): "<participant>:<allocation id>" */
#define MKEY_EXCL              "excl"        /* set: "<need id>:<offer id>" never again */
#define MKEY_AGG               "agg"         /* hash: "<region>|<product>|<column>" -> sum */
#define MKEY_EVENTS            "events"      /* stream: every change */
#define MKEY_DUE               "due"         /* zset: "l:<alloc>", "x:<id>", "m:<id>" by ms */
#define MKEY_WALK              "walk"        /* hash: id -> where a bounded walk stopped */
#define MKEY_PEERS             "peers"       /* set: "<participant>|<participant>" that share an allocation */
#define MKEY_OUTCOMES          "outcomes"    /* stream: one entry per allocation closed (outcomes feed) */
#define MARKET_FIXED_KEYS      12
#define MKEY_IDEM              "idem:%s"     /* string: a keyed POST's recorded outcome (24 h) */
#define MKEY_OWN               "own:%s"      /* list: a participant's offers and needs */
#define MKEY_OFFER_INDEX       "oi:%s:%s"    /* zset: open offers of a region and scope */
#define MKEY_NEED_INDEX        "ni:%s"       /* zset: open needs of a region */

/* The stock feed's version: every change to the aggregates bumps it (src/market.c). */
#define KEY_FEED_VERSION       "feed:{version}"

/* Notifications (docs/notifications.md): a participant's inbox and message states share its
 * tag; the delivery schedule is one slot of its own. */
#define KEY_INBOX              "prt:{%s}:inbox"      /* stream of inbox items */
#define KEY_MESSAGES           "prt:{%s}:msgs"       /* hash: message id -> state */
#define KEY_DUE                "notify:{due}"        /* zset "<prt>|<msg>" by next attempt */
#define KEY_DEAD               "notify:{due}:dead"   /* zset message id by dead time */
#define KEY_DEADINFO           "notify:{due}:deadinfo" /* hash message id -> details */
#define NOTIFY_GROUP           "notify"              /* consumer group on m:{M}:events */

#endif
