-- allocations.lua — acting on allocations (ACTIONS, declared in src/allocations.c: who may
-- take each, from which statuses, to which, what its body sets, which time it stamps), and
-- what each does to its need and offer. Lapse (sweep.lua) is an action too, taken by the
-- platform; so is raising an allocation overdue (overdue, below).
--
-- K_DUE members of an allocation: "l:<id>" while proposed (its lapse), "o:<id>" while
-- confirmed or shipped (when it becomes overdue). Each step replaces or removes them.

-- The quantity goes back to the need, never to that offer: the pair is excluded and the
-- need matched again without it.
local function back_to_need(nid, oid, q, L)
  local n = load(nid)
  if redis.call('SADD', K_EXCL, nid .. ':' .. oid) == 1 and n then
    n[N.excluded] = (n[N.excluded] or 0) + 1
  end
  if not n then return end
  n[N.allocated] = n[N.allocated] - q
  if n[N.status] == NEED_STATUS.open or n[N.status] == NEED_STATUS.allocated then
    n[N.remaining] = n[N.remaining] + q
  end
  need_changed(nid, n)
  redis.call('HDEL', K_WALK, nid)
  match_need(nid, n, L.need_tiers(n[N.region]), nil)
end

-- cancel: the need no longer asks for q (its quantity lowered; a need left with nothing to
-- ask for is cancelled, keeping its quantity), and q goes back to the offer, matched again — never with this need.
local function back_to_offer(nid, oid, q, L)
  local n = load(nid)
  if n then
    if redis.call('SADD', K_EXCL, nid .. ':' .. oid) == 1 then
      n[N.excluded] = (n[N.excluded] or 0) + 1
    end
    n[N.allocated] = n[N.allocated] - q
    if n[N.quantity] - q <= 0 then
      -- nothing left to ask for: cancelled, its quantity kept as what it had asked for
      local live = n[N.status] == NEED_STATUS.open or n[N.status] == NEED_STATUS.allocated
      if live then n[N.status] = NEED_STATUS.cancelled end
      n[N.remaining] = 0
      need_changed(nid, n)
      if live then
        set_due(nid, nil)
        emit('need.cancelled', nid, n)
      end
    else
      n[N.quantity] = n[N.quantity] - q
      need_changed(nid, n)
      if n[N.status] == NEED_STATUS.fulfilled then emit('need.fulfilled', nid, n) end
    end
  end
  local o = load(oid)
  if not o then return end
  o[O.allocated] = o[O.allocated] - q
  if o[O.status] == OFFER_STATUS.open or o[O.status] == OFFER_STATUS.depleted then
    o[O.remaining] = o[O.remaining] + q
    offer_changed(oid, o)
    redis.call('HDEL', K_WALK, oid)
    match_offer(oid, o, L.offer_tiers(o[O.region], o[O.delivery_scope]), nil)
  else
    o[O.released] = o[O.released] + q      -- withdrawn or expired: it goes nowhere
    offer_changed(oid, o)
  end
end

-- receive: rq of q arrived; the shortfall goes back to the need (matched again, never with
-- that offer). The offer gave all of q: its shortfall is not its remaining again.
local function received(nid, oid, q, rq, L)
  local n = load(nid)
  if not n then return end
  n[N.received] = n[N.received] + rq
  if rq < q then
    back_to_need(nid, oid, q - rq, L)
  else
    need_changed(nid, n)
  end
  if n[N.status] == NEED_STATUS.fulfilled then emit('need.fulfilled', nid, n) end
end

-- A closed allocation's line in the outcomes stream (the outcomes feed aggregates them).
local function record_outcome(aid, a)
  local s, q, rq = a[A.status], a[A.quantity], a[A.received_quantity]
  local outcome, hours = ALLOCATION_STATUS_NAME[s], ''
  if s == ALLOCATION_STATUS.received then
    outcome = rq < q and 'received_short' or 'received_full'
    hours = int(NOW - tonumber(string.sub(aid, 5, 15), 16))
  end
  redis.call('XADD', K_OUTCOMES, '*', 'r', a[A.need_region], 'p', a[A.product] or MARKET,
    'o', outcome, 'w', a[A.reason] and CLOSE_REASON_NAME[a[A.reason]] or '', 'q', int(q),
    'rq', rq and int(rq) or '', 'h', hours)
end

-- Applies act to allocation a (its side, status and body already checked). L: the all
-- layout. set: the body's [pos, value, ...]. within: {ship = ms by urgency, receive = ms}.
local function transition(aid, a, act, L, set, within)
  local q = a[A.quantity]
  if a[A.status] == ALLOCATION_STATUS.proposed then
    a[A.lapse_at] = false
    redis.call('ZREM', K_DUE, 'l:' .. aid)
  end
  if set then
    for i = 1, #set, 2 do a[set[i]] = set[i + 1] end
  end
  a[A.status], a[A.updated_at], a[A.overdue] = act.to, NOW, false
  if act.stamp > 0 then a[act.stamp] = NOW end
  if act.close then
    a[A.closed_at] = NOW
    redis.call('ZREM', K_DUE, 'o:' .. aid)
  elseif act.due_ship then
    redis.call('ZADD', K_DUE, int(NOW + within.ship[a[A.urgency]]), 'o:' .. aid)
  elseif act.due_receive then
    redis.call('ZADD', K_DUE, int(NOW + within.receive), 'o:' .. aid)
  end
  if act.receive and not a[A.received_quantity] then a[A.received_quantity] = q end
  touch(aid, a)
  if act.close then record_outcome(aid, a) end
  emit('allocation.' .. ALLOCATION_STATUS_NAME[act.to], aid, a)
  local nid, oid = a[A.need_id], a[A.offer_id]
  if act.release then
    local o = load(oid)
    if o then
      o[O.allocated], o[O.released] = o[O.allocated] - q, o[O.released] + q
      offer_changed(oid, o)
    end
    back_to_need(nid, oid, q, L)
  elseif act.cancel then
    back_to_offer(nid, oid, q, L)
  elseif act.receive then
    received(nid, oid, q, a[A.received_quantity], L)
  end
end

-- The sweep's "o:" member came due: a confirmed allocation not shipped, or a shipped one
-- not received, in time. One allocation.overdue to both parties per step (overdue is
-- cleared by the next step).
local function overdue(aid)
  local a = load(aid)
  if not a or a[A.overdue] then return end
  local s = a[A.status]
  local what = s == ALLOCATION_STATUS.confirmed and OVERDUE.ship
    or s == ALLOCATION_STATUS.shipped and OVERDUE.receive or nil
  if not what then return end
  a[A.overdue], a[A.updated_at] = what, NOW
  touch(aid, a)
  emit('allocation.overdue', aid, a)
end

-- KEYS: the fixed market keys, then the all layout.
-- ARGV: 1 allocation id, 2 action, 3 the actor's participant id, 4-7 ship_within (ms) by
-- urgency, 8 receive_within (ms), 9 the body's [pos, value, ...] (MessagePack).
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
  local set = cmsgpack.unpack(arg(9))
  if act.receive then
    local rq, reason = a[A.quantity], false
    for i = 1, #set, 2 do
      if set[i] == A.received_quantity then rq = set[i + 1] end
      if set[i] == A.reason then reason = set[i + 1] end
    end
    if rq > a[A.quantity] then
      return fail('invalid', 'quantity: is more than the allocation\'s ' .. a[A.quantity])
    end
    if rq < a[A.quantity] and not reason then
      return fail('invalid', 'reason: is required when less than the allocation\'s ' ..
        a[A.quantity] .. ' was received')
    end
  end
  local within = { receive = tonumber(arg(8)),
                   ship = { [0] = tonumber(arg(4)), tonumber(arg(5)), tonumber(arg(6)),
                            tonumber(arg(7)) } }
  transition(aid, a, act, L, set, within)
  return answer(aid)
end)
