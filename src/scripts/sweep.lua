-- sweep.lua — what comes due in a market: proposed allocations whose lapse delay has passed
-- ("l:"), confirmed or shipped ones that are overdue ("o:", allocations.lua), offers and
-- needs whose expires_at has come ("x:"), and bounded walks to go on ("m:"). Any number of daemons may sweep at once: each item is checked again before it
-- changes, and each due member is taken by one call only.

local function expire_item(id)
  local k = KIND[string.sub(id, 1, 4)]
  local rec = k and load(id)
  if not rec then return end
  local P = k.P
  if not rec[P.expires_at] or rec[P.expires_at] > NOW or not k.live[rec[P.status]] then
    return
  end
  rec[P.status], rec[P.remaining], rec[P.updated_at] = k.S.expired, 0, NOW
  touch(id, rec)
  emit(k.name .. '.expired', id, rec)
end

local function go_on(id, L)
  local rec = load(id)
  local from = saved_walk(id)
  if not rec then
    forget_walk(id, from ~= nil)
  elseif string.sub(id, 1, 4) == 'off_' then
    match_offer(id, rec, L.offer_tiers(rec[O.region], rec[O.delivery_scope]), from)
  else
    match_need(id, rec, L.need_tiers(rec[N.region]), from)
  end
end

-- KEYS: the fixed market keys, then the all layout.
-- ARGV: 1 the most due members to take, 2 the oldest event time kept (Unix ms; '': no limit
-- by age), events before it being trimmed (approximately: whole stream nodes).
-- Answers {'ok', flags, made...}: flags 'more' when more may be due now, 'changed' when
-- anything was (a sweep that found nothing due changes nothing: no feed version, no kick).
register_market('sweep', function(keys, args)
  local L = layout_all(FIXED_KEYS + 1)
  local limit = tonumber(arg(1))
  if arg(2) ~= '' then redis.call('XTRIM', K_EVENTS, 'MINID', '~', arg(2)) end
  local due = redis.call('ZRANGE', K_DUE, '-inf', int(NOW), 'BYSCORE', 'LIMIT', '0', int(limit))
  local taken = 0
  for _, member in ipairs(due) do
    local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
    if not budget_left() then
      more = true
      break
    end
    redis.call('ZREM', K_DUE, member)
    taken = taken + 1
    if kind == 'l' then
      local a = load(id)
      if a and a[A.status] == ALLOCATION_STATUS.proposed and a[A.lapse_at] and
         a[A.lapse_at] <= NOW then
        transition(id, a, ACTIONS.lapse, L)
      end
    elseif kind == 'o' then
      overdue(id)
    elseif kind == 'x' then
      expire_item(id)
    elseif kind == 'm' then
      go_on(id, L)
    end
  end
  if #due == limit then more = true end
  return answer(nil)
end)
