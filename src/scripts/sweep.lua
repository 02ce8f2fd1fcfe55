-- requires: market_lib.lua
-- sweep.lua — lapse proposed allocations and expire offers and needs whose time has come.
-- Any number of daemons may run it at once: each item is checked again before it changes.
-- OP: {limit}
-- Answers {processed, more, allocations}.
local due = redis.call('ZRANGE', K_DUE, '-inf', NOW, 'BYSCORE', 'LIMIT', 0, OP.limit)
for _, member in ipairs(due) do
  redis.call('ZREM', K_DUE, member)
  local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
  if kind == 'l' then
    local a = get(K_ALLOCS, id)
    if a and a.status == 'proposed' and a.lapse_at and a.lapse_at <= NOW then
      alloc_apply(a, 'lapse')
    end
  else
    expire_item(id)
  end
end
return answer({ processed = #due, more = #due == OP.limit })
