-- requires: market_lib.lua
-- need_create.lua — create a need and match it against open offers, in one atomic step.
-- OP: {need = {id, participant_id, product, market, quantity, urgency, region,
--              needed_by?, expires_at?, note?}}
-- Answers {need, allocations} (JSON).
local n = OP.need
if redis.call('HEXISTS', K_NEEDS, n.id) == 1 then return fail('conflict', 'need exists') end
n.remaining, n.allocated, n.received = n.quantity, 0, 0
n.status, n.created_at = 'open', NOW
need_save(n, nil)
redis.call('ZADD', K_OWN, 0, n.participant_id .. ':' .. n.id)
redis.call('ZADD', K_ALL, 0, n.id)
set_due(n.id, n.expires_at)
emit('need.created', 'need', n)
match_need(n)
return answer({ need = n })
