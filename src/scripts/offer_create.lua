-- requires: market_lib.lua
-- offer_create.lua — create an offer and match it against open needs, in one atomic step.
-- OP: {offer = {id, participant_id, product, market, quantity, region, ready_at, scope,
--               expires_at?, min_lot?, note?}}
-- Answers {offer, allocations} (JSON).
local o = OP.offer
if redis.call('HEXISTS', K_OFFERS, o.id) == 1 then return fail('conflict', 'offer exists') end
o.remaining, o.allocated, o.released = o.quantity, 0, 0
o.status, o.created_at = 'open', NOW
offer_save(o, 0)
redis.call('ZADD', K_OWN, 0, o.participant_id .. ':' .. o.id)
redis.call('ZADD', K_ALL, 0, o.id)
set_due(o.id, o.expires_at)
emit('offer.created', 'offer', o)
match_offer(o)
return answer({ offer = o })
