-- requires: market_lib.lua
-- alloc_action.lua — confirm, decline, ship or receive an allocation; a decline returns the
-- quantity to the need and matches the need again, never with that offer.
-- OP: {id, action, actor}
-- Answers {allocation, allocations}, or {error = 'not_found'|'forbidden'|'conflict', detail}.
local a = get(K_ALLOCS, OP.id)
if not a then return fail('not_found', 'no such allocation') end
local offer_side = OP.action ~= 'receive'
local mine = offer_side and a.offer_participant_id or a.need_participant_id
local other = offer_side and a.need_participant_id or a.offer_participant_id
if OP.actor ~= mine then
  if OP.actor == other then
    return fail('forbidden', 'only the ' .. (offer_side and 'offer' or 'need') ..
      '\'s participant may ' .. OP.action .. ' this allocation')
  end
  return fail('not_found', 'no such allocation')
end
local err = alloc_apply(a, OP.action)
if err then return err end
return answer({ allocation = a })
