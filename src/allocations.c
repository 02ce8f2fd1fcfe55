/* allocations.c — allocations: a quantity of one offer for one need, and what each side may
 * do with it.
 *
 * Owns the allocation's descriptor, its statuses, tiers and close-out reasons, and its
 * actions: who takes each (the offer's side confirms, declines and ships; the need's side
 * receives and cancels; the platform lets an unconfirmed one lapse), from which statuses, to
 * which, with which body (reasons, notes, ship details, the quantity received), and which
 * time it stamps. The Lua function library
 * gets the actions from here (library.c); what an action does to the need and the offer is
 * src/scripts/allocations.lua. The route table admits only manufacturers and hospitals to
 * the actions, so ministry and admin tokens can read but never act. */
#include "impactd/engine.h"
#include "impactd/handlers.h"
#include "impactd/resource.h"

#define QMAX 1000000000
#define P_REASON 15
#define P_NOTE 16
#define P_RECEIVED_QUANTITY 17
#define P_EXPECTED_AT 19
#define P_CARRIER 20
#define P_TRACKING 21

static const char *const STATUSES[] = { "proposed", "confirmed", "declined", "lapsed",
                                        "shipped", "received", "cancelled", NULL };
const struct enumtype ENUM_ALLOCATION_STATUS = {
    "AllocationStatus", "ALLOCATION_STATUS", STATUSES,
    "`proposed` → `confirmed` → `shipped` → `received`; `proposed` or `confirmed` → "
    "`declined` (the offer's side) or `cancelled` (the need's side); `proposed` → `lapsed` "
    "(not confirmed within `lapse_after[urgency]`).",
};

/* Every reason of every action, one list (stored as its index); each action admits its own
 * subset (ACTIONS below). docs/matching.md gives them in French and English. */
static const char *const REASONS[] = { "out_of_stock", "cannot_deliver", "quality_hold",
                                       "found_elsewhere", "no_longer_needed", "terms",
                                       "damaged", "short_delivery", "wrong_product",
                                       "quality_rejected", "not_delivered", "other", NULL };
const struct enumtype ENUM_CLOSE_REASON = {
    "CloseReason", "CLOSE_REASON", REASONS,
    "Why an allocation was declined (`out_of_stock`, `cannot_deliver`, `quality_hold`, "
    "`other`), cancelled (`found_elsewhere`, `no_longer_needed`, `terms`, `other`) or received "
    "short (`damaged`, `short_delivery`, `wrong_product`, `quality_rejected`, "
    "`not_delivered`, `other`).",
};

static const char *const OVERDUE[] = { "ship", "receive", NULL };
const struct enumtype ENUM_OVERDUE = {
    "Overdue", "OVERDUE", OVERDUE,
    "What is late: `ship` (confirmed, not shipped within `ship_within[urgency]`), `receive` "
    "(shipped, not received within `receive_within`).",
};

static const char *const TIERS[] = { "region", "neighbours", "national", NULL };
const struct enumtype ENUM_TIER = {
    "Tier", "TIER", TIERS,
    "How far the goods travel: `region` (same region), `neighbours` (a bordering region), "
    "`national` (any other region).",
};

static const struct field FIELDS_ALLOCATION[] = {
    { "id", 0, FT_ID, F_OUT, .ref = "alc_", .schema = "AllocationId" },
    { "need_id", 1, FT_REF, F_OUT | F_FILTER, .ref = "ned_", .schema = "NeedId" },
    { "offer_id", 2, FT_REF, F_OUT | F_FILTER, .ref = "off_", .schema = "OfferId" },
    { "product", 3, FT_PRODUCT, F_OUT | F_FILTER, .schema = "ProductId",
      .doc = "The need's product." },
    { "offer_product", 4, FT_PRODUCT, F_OUT, .schema = "ProductId",
      .doc = "The offer's product (a `capacity` product, or the same as `product`)." },
    { "market", 0, FT_MARKET, F_OUT, .schema = "ProductId" },
    { "quantity", 5, FT_INT, F_OUT, 0, QMAX,
      .doc = "Quantity allocated, in the product's catalogue unit." },
    { "tier", 6, FT_ENUM, F_OUT, .enumtype = &ENUM_TIER },
    { "status", 7, FT_ENUM, F_OUT | F_FILTER, .enumtype = &ENUM_ALLOCATION_STATUS },
    { "need_participant_id", 8, FT_REF, F_OUT | F_OWNER, .ref = "prt_",
      .schema = "ParticipantId" },
    { "offer_participant_id", 9, FT_REF, F_OUT | F_OWNER, .ref = "prt_",
      .schema = "ParticipantId" },
    { "need_region", 10, FT_REGION, F_OUT | F_SCOPE, .schema = "RegionCode" },
    { "offer_region", 11, FT_REGION, F_OUT | F_SCOPE, .schema = "RegionCode" },
    { "urgency", 12, FT_ENUM, F_OUT, .enumtype = &ENUM_URGENCY },
    { "lapse_at", 13, FT_TIME, F_OUT | F_NULLABLE,
      .doc = "When a `proposed` allocation lapses if not confirmed (`lapse_after[urgency]` "
             "after it was made); null once it is no longer proposed." },
    { "created_at", 0, FT_CREATED, F_OUT },
    { "updated_at", 14, FT_TIME, F_OUT },
    { "reason", P_REASON, FT_ENUM, F_OUT | F_NULLABLE, .enumtype = &ENUM_CLOSE_REASON,
      .doc = "Why it was declined, cancelled or received short; null otherwise." },
    { "note", P_NOTE, FT_STRING, F_OUT | F_NULLABLE, 1, 500,
      .doc = "The note of the last action that carried one." },
    { "received_quantity", P_RECEIVED_QUANTITY, FT_INT, F_OUT | F_NULLABLE, 0, QMAX,
      .doc = "What the need's side received (`received`); the shortfall went back to the "
             "need, to be matched again (never with this offer)." },
    { "overdue", 18, FT_ENUM, F_OUT | F_NULLABLE, .enumtype = &ENUM_OVERDUE,
      .doc = "Set when an `allocation.overdue` notification was sent for the current step; "
             "the status does not change. Null once the step is taken." },
    { "expected_at", P_EXPECTED_AT, FT_TIME, F_OUT | F_NULLABLE,
      .doc = "When the goods are expected (given with `ship`)." },
    { "carrier", P_CARRIER, FT_STRING, F_OUT | F_NULLABLE, 1, 200 },
    { "tracking", P_TRACKING, FT_STRING, F_OUT | F_NULLABLE, 1, 200 },
    { "confirmed_at", 22, FT_TIME, F_OUT | F_NULLABLE },
    { "shipped_at", 23, FT_TIME, F_OUT | F_NULLABLE },
    { "received_at", 24, FT_TIME, F_OUT | F_NULLABLE },
    { "closed_at", 25, FT_TIME, F_OUT | F_NULLABLE,
      .doc = "When it was received, declined, lapsed or cancelled." },
    { "need_party", 26, FT_JSON, F_OUT | F_NULLABLE, .schema = "Party",
      .doc = "The need's side, as it stood when its need was posted: whom the goods go to "
             "and whom to call." },
    { "offer_party", 27, FT_JSON, F_OUT | F_NULLABLE, .schema = "Party",
      .doc = "The offer's side, likewise: who sends the goods and whom to call." },
};

/* ---- actions: who, from where, to where, with what body ---- */

static const char *const FROM_PROPOSED[] = { "proposed", NULL };
static const char *const FROM_CONFIRMED[] = { "confirmed", NULL };
static const char *const FROM_SHIPPED[] = { "shipped", NULL };
static const char *const FROM_OPEN[] = { "proposed", "confirmed", NULL };

static const char *const DECLINE_REASONS[] = { "out_of_stock", "cannot_deliver", "quality_hold",
                                               "other", NULL };
static const char *const CANCEL_REASONS[] = { "found_elsewhere", "no_longer_needed", "terms",
                                              "other", NULL };
static const char *const RECEIVE_REASONS[] = { "damaged", "short_delivery", "wrong_product",
                                               "quality_rejected", "not_delivered", "other",
                                               NULL };

#define BODY_REASON { "reason", P_REASON, FT_ENUM, F_CREATE, .enumtype = &ENUM_CLOSE_REASON }
#define BODY_NOTE { "note", P_NOTE, FT_STRING, F_CREATE, 0, 500 }

static const struct field BODY_NOTE_ONLY[] = { BODY_NOTE };
static const struct field BODY_REASON_NOTE[] = { BODY_REASON, BODY_NOTE };
static const struct field BODY_SHIP[] = {
    BODY_NOTE,
    { "expected_at", P_EXPECTED_AT, FT_TIME, F_CREATE,
      .doc = "When the goods are expected to arrive." },
    { "carrier", P_CARRIER, FT_STRING, F_CREATE, 1, 200 },
    { "tracking", P_TRACKING, FT_STRING, F_CREATE, 1, 200 },
};
static const struct field BODY_RECEIVE[] = {
    { "quantity", P_RECEIVED_QUANTITY, FT_INT, F_CREATE, 0, QMAX,
      .doc = "What arrived, 0 to the allocation's quantity (default: all of it); less needs "
             "a `reason`." },
    BODY_REASON, BODY_NOTE,
};

static const struct action ACTIONS[] = {
    { "confirm", "offer", FROM_PROPOSED, "confirmed", ACT_DUE_SHIP, "confirmed_at",
      FIELDS(BODY_NOTE_ONLY), NULL, false },
    { "decline", "offer", FROM_OPEN, "declined", ACT_RELEASE | ACT_CLOSE, NULL,
      FIELDS(BODY_REASON_NOTE), DECLINE_REASONS, false },
    { "ship", "offer", FROM_CONFIRMED, "shipped", ACT_DUE_RECEIVE, "shipped_at",
      FIELDS(BODY_SHIP), NULL, false },
    { "receive", "need", FROM_SHIPPED, "received", ACT_RECEIVE | ACT_CLOSE, "received_at",
      FIELDS(BODY_RECEIVE), RECEIVE_REASONS, false },
    { "cancel", "need", FROM_OPEN, "cancelled", ACT_CANCEL | ACT_CLOSE, NULL,
      FIELDS(BODY_REASON_NOTE), CANCEL_REASONS, true },
    { "lapse", "platform", FROM_PROPOSED, "lapsed", ACT_RELEASE | ACT_CLOSE, NULL, NULL, 0,
      NULL, false },
};

const struct resource RESOURCE_ALLOCATION = {
    "allocation", "allocations", "alc_", "A", "Allocation", FIELDS(FIELDS_ALLOCATION),
    &ENUM_ALLOCATION_STATUS, ACTIONS, sizeof ACTIONS / sizeof ACTIONS[0],
};

void allocations_list(struct req *r) { engine_list(r, &RESOURCE_ALLOCATION); }
void allocations_get(struct req *r) { engine_get(r, &RESOURCE_ALLOCATION); }
void allocations_confirm(struct req *r) { engine_act(r, &RESOURCE_ALLOCATION, "confirm"); }
void allocations_decline(struct req *r) { engine_act(r, &RESOURCE_ALLOCATION, "decline"); }
void allocations_ship(struct req *r) { engine_act(r, &RESOURCE_ALLOCATION, "ship"); }
void allocations_receive(struct req *r) { engine_act(r, &RESOURCE_ALLOCATION, "receive"); }
void allocations_cancel(struct req *r) { engine_act(r, &RESOURCE_ALLOCATION, "cancel"); }
