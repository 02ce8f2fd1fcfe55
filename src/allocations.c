/* allocations.c — reading allocations and acting on them (confirm, decline, ship, receive).
 *
 * Who may act is decided in alloc_action.lua from the allocation itself (the offer's side
 * confirms, declines and ships; the need's side receives); the route table admits only
 * manufacturers and hospitals, so ministry and admin tokens can read but never act. */
#include <string.h>

#include "impactd/catalog.h"
#include "impactd/handlers.h"
#include "impactd/http.h"
#include "impactd/ids.h"
#include "impactd/market.h"
#include "impactd/records.h"
#include "impactd/server.h"

static void on_action(struct req *r, enum store_status st, redisReply *reply)
{
    json_t *a = market_answer(r, st, reply);
    if (!a)
        return;
    r->srv->metrics.allocations_made += json_array_size(json_object_get(a, "allocations"));
    http_reply_json(r, 200, record_to_api(RECORD_ALLOC, json_object_get(a, "allocation")));
    json_decref(a);
}

static void allocations_act(struct req *r, const char *action)
{
    const char *id = http_param(r, 0);
    const struct market *m = catalog_market_of_id(&r->srv->catalog, id);
    if (!m || !id_valid(id, "alc_")) {
        http_reply_problem(r, 404, NULL, "no such allocation");
        return;
    }
    json_t *op = json_pack("{s:s, s:s, s:s}", "id", id, "action", action, "actor",
                           r->who.participant_id);
    market_eval(r, SCRIPT_ALLOC_ACTION, m, REACH_ALL, NULL, NULL, op, on_action);
    json_decref(op);
}

void allocations_list(struct req *r) { record_list(r, RECORD_ALLOC); }
void allocations_get(struct req *r) { record_get(r, RECORD_ALLOC); }
void allocations_confirm(struct req *r) { allocations_act(r, "confirm"); }
void allocations_decline(struct req *r) { allocations_act(r, "decline"); }
void allocations_ship(struct req *r) { allocations_act(r, "ship"); }
void allocations_receive(struct req *r) { allocations_act(r, "receive"); }
