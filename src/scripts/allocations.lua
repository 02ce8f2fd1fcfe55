-- allocations.lua — acting on allocations (ACTIONS, declared in src/allocations.c: who may
-- take each, from which statuses, to which), and what each does to its need and offer.
-- Lapse (sweep.lua) is an action too, taken by the platform.

-- Applies act to allocation a (its side already checked). L: the all layout.
local function transition(aid, a, act, L)
  local q = a[A.quantity]
  if a[A.status] == ALLOCATION_STATUS.proposed then
    a[A.lapse_at] = false
    redis.call('ZREM', K_DUE, 'l:' .. aid)
  end
  a[A.status], a[A.updated_at] = act.to, NOW
  touch(aid, a)
  emit('allocation.' .. ALLOCATION_STATUS_NAME[act.to], aid, a)
  local nid, oid = a[A.need_id], a[A.offer_id]
  if act.release then
    -- the quantity goes back to the need, never to that offer, and the need is matched
    -- again without it
    local o = load(oid)
    if o then
      o[O.allocated], o[O.released] = o[O.allocated] - q, o[O.released] + q
      offer_changed(oid, o)
    end
    local n = load(nid)
    if redis.call('SADD', K_EXCL, nid .. ':' .. oid) == 1 and n then
      n[N.excluded] = (n[N.excluded] or 0) + 1
    end
    if n then
      n[N.allocated] = n[N.allocated] - q
      if n[N.status] == NEED_STATUS.open or n[N.status] == NEED_STATUS.allocated then
        n[N.remaining] = n[N.remaining] + q
      end
      need_changed(nid, n)
      redis.call('HDEL', K_WALK, nid)
      match_need(nid, n, L.need_tiers(n[N.region]), nil)
    end
  elseif act.receive then
    local n = load(nid)
    if n then
      n[N.received] = n[N.received] + q
      need_changed(nid, n)
      if n[N.status] == NEED_STATUS.fulfilled then emit('need.fulfilled', nid, n) end
    end
  end
end

-- KEYS: the fixed market keys, then the all layout.
-- ARGV: 1 allocation id, 2 action, 3 the actor's participant id.
-- Answers {'ok', flags, allocation id, allocation, made...} or {code, detail}.
register_market('alloc_action', function(keys, args)
  local L = layout_all(FIXED_KEYS + 1)
  local aid, name, actor = arg(1), arg(2), arg(3)
  local act = ACTIONS[name]
  local a = act and string.sub(aid, 1, 4) == 'alc_' and load(aid)
  if not a then return fail('not_found', 'no such allocation') end
  local offer_side = act.side == 'offer'
  local mine = offer_side and a[A.offer_participant_id] or a[A.need_participant_id]
  local other = offer_side and a[A.need_participant_id] or a[A.offer_participant_id]
  if actor ~= mine then
    if actor == other then
      return fail('forbidden', 'only the ' .. act.side .. '\'s participant may ' .. name ..
        ' this allocation')
    end
    return fail('not_found', 'no such allocation')
  end
  if not act.from[a[A.status]] then
    return fail('conflict', 'cannot ' .. name .. ' an allocation that is ' ..
      ALLOCATION_STATUS_NAME[a[A.status]])
  end
  transition(aid, a, act, L)
  return answer(aid)
end)
