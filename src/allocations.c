/* allocations.c — allocations: a quantity of one offer for one need, and what each side may
 * do with it.
 *
 * Owns the allocation's descriptor, its statuses and tiers, and its actions: who takes each
 * (the offer's side confirms, declines and ships; the need's side receives; the platform
 * lets an unconfirmed one lapse), from which statuses, to which. The Lua function library
 * gets the actions from here (library.c); what an action does to the need and the offer is
 * src/scripts/allocations.lua. The route table admits only manufacturers and hospitals to
 * the actions, so ministry and admin tokens can read but never act. */
#include "impactd/engine.h"
#include "impactd/handlers.h"
#include "impactd/resource.h"

#define QMAX 1000000000

static const char *const STATUSES[] = { "proposed", "confirmed", "declined", "lapsed",
                                        "shipped", "received", NULL };
const struct enumtype ENUM_ALLOCATION_STATUS = {
    "AllocationStatus", "ALLOCATION_STATUS", STATUSES,
    "`proposed` → `confirmed` → `shipped` → `received`; `proposed` → `declined` or `lapsed` "
    "(not confirmed within `lapse_after[urgency]`).",
};

static const char *const TIERS[] = { "region", "neighbours", "national", NULL };
const struct enumtype ENUM_TIER = {
    "Tier", "TIER", TIERS,
    "How far the goods travel: `region` (same region), `neighbours` (a bordering region), "
    "`national` (any other region).",
};

static const char *const FROM_PROPOSED[] = { "proposed", NULL };
static const char *const FROM_CONFIRMED[] = { "confirmed", NULL };
static const char *const FROM_SHIPPED[] = { "shipped", NULL };

static const struct action ACTIONS[] = {
    { "confirm", "offer", FROM_PROPOSED, "confirmed", ACT_PLAIN },
    { "decline", "offer", FROM_PROPOSED, "declined", ACT_RELEASE },
    { "ship", "offer", FROM_CONFIRMED, "shipped", ACT_PLAIN },
    { "receive", "need", FROM_SHIPPED, "received", ACT_RECEIVE },
    { "lapse", "platform", FROM_PROPOSED, "lapsed", ACT_RELEASE },
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
