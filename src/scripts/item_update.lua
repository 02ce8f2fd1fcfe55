-- requires: market_lib.lua
-- item_update.lua — PATCH or DELETE of an offer or a need by its owner, then matching when
-- the change can create candidates.
-- OP: {kind = 'offer'|'need', id, actor, action = 'patch'|'delete',
--      set = {quantity?, expires_at?, note?, urgency?, needed_by?}, clear = {field, ...}}
-- Answers {offer|need, allocations}, or {error = 'not_found'|'conflict', detail}.
local is_offer = OP.kind == 'offer'
local rec = get(is_offer and K_OFFERS or K_NEEDS, OP.id)
if not rec or rec.participant_id ~= OP.actor then return fail('not_found', 'no such ' .. OP.kind) end
local live = is_offer and (rec.status == 'open' or rec.status == 'depleted')
  or (not is_offer and (rec.status == 'open' or rec.status == 'allocated'))
if not live then
  return fail('conflict', 'the ' .. OP.kind .. ' is ' .. rec.status .. ' and can no longer change')
end
local before = is_offer and offer_open_part(rec) or copy(rec)
local save = is_offer and offer_save or need_save
local out = {}

if OP.action == 'delete' then
  rec.status = is_offer and 'withdrawn' or 'cancelled'
  rec.remaining = 0
  set_due(rec.id, nil)
  save(rec, before)
  emit(OP.kind .. '.' .. rec.status, OP.kind, rec)
  out[OP.kind] = rec
  return answer(out)
end

local set = OP.set or {}
local old_quantity = rec.quantity
for _, f in ipairs(OP.clear or {}) do rec[f] = nil end
if set.quantity then
  local floor = rec.allocated + (rec.released or 0)
  if set.quantity < floor then
    return fail('conflict', 'quantity ' .. set.quantity .. ' is below the ' .. floor ..
      ' already allocated')
  end
  rec.quantity = set.quantity
  rec.remaining = rec.quantity - floor
end
for _, f in ipairs({ 'expires_at', 'note', 'urgency', 'needed_by' }) do
  if set[f] ~= nil then rec[f] = set[f] end
end
set_due(rec.id, rec.expires_at)
save(rec, before)
emit(OP.kind .. '.updated', OP.kind, rec)
-- the contract matches on creation, raise and freed quantity: a raise is the only PATCH
if set.quantity and set.quantity > old_quantity and rec.remaining > 0 then
  if is_offer then match_offer(rec) else match_need(rec) end
end
out[OP.kind] = rec
return answer(out)
