-- items.lua — offers and needs: creation (matched at once), PATCH and withdrawal/cancel.
-- Who may post what, and which fields a body may set, the daemon has checked against the
-- resource descriptors (src/offers.c, src/needs.c); records arrive here packed by position.

-- KEYS: the fixed market keys, own:<poster> (list), then the need layout (match.lua).
-- ARGV (after the common ones): 1 the need (MessagePack, N positions; server fields nil).
-- Answers {'ok', flags, need id, need, allocation id, allocation, ...}.
register_market('need_create', function(keys, args)
  local n = cmsgpack.unpack(arg(1))
  local tiers = layout_need(FIXED_KEYS + 2, n[N.region])
  n[N.remaining], n[N.allocated], n[N.received] = n[N.quantity], 0, 0
  n[N.status], n[N.updated_at] = NEED_STATUS.open, NOW
  local nid = create('ned_', 'need.created', K_LOGN, n)
  redis.call('RPUSH', keys[FIXED_KEYS + 1], nid)
  if n[N.expires_at] then redis.call('ZADD', K_DUE, int(n[N.expires_at]), 'x:' .. nid) end
  match_need(nid, n, tiers, nil)
  return answer(nid)
end)

-- KEYS: the fixed market keys, own:<poster> (list), then the offer layout (match.lua).
-- ARGV (after the common ones): 1 the offer (MessagePack, O positions).
register_market('offer_create', function(keys, args)
  local o = cmsgpack.unpack(arg(1))
  local tiers = layout_offer(FIXED_KEYS + 2, o[O.region], o[O.delivery_scope])
  o[O.ready_at] = o[O.ready_at] or NOW
  o[O.remaining], o[O.allocated], o[O.released] = o[O.quantity], 0, 0
  o[O.status], o[O.updated_at] = OFFER_STATUS.open, NOW
  local oid = create('off_', 'offer.created', K_LOGO, o)
  redis.call('RPUSH', keys[FIXED_KEYS + 1], oid)
  if o[O.expires_at] then redis.call('ZADD', K_DUE, int(o[O.expires_at]), 'x:' .. oid) end
  match_offer(oid, o, tiers, nil)
  return answer(oid)
end)

-- What a kind of item is called and what its statuses mean here.
local KIND = {
  off_ = { name = 'offer', P = O, S = OFFER_STATUS, names = OFFER_STATUS_NAME,
           live = { [OFFER_STATUS.open] = true, [OFFER_STATUS.depleted] = true },
           closed = OFFER_STATUS.withdrawn, floor = function(o) return o[O.allocated] + o[O.released] end },
  ned_ = { name = 'need', P = N, S = NEED_STATUS, names = NEED_STATUS_NAME,
           live = { [NEED_STATUS.open] = true, [NEED_STATUS.allocated] = true },
           closed = NEED_STATUS.cancelled, floor = function(n) return n[N.allocated] end },
}

-- PATCH or DELETE of an offer or a need by its owner; matching again when a PATCH raises
-- the quantity (the only change that can make candidates).
-- KEYS: the fixed market keys, then the all layout.
-- ARGV: 1 id, 2 the actor's participant id, 3 'patch' | 'delete',
--       4 (patch) MessagePack [pos, value, ...], false clearing a field.
register_market('item_update', function(keys, args)
  local L = layout_all(FIXED_KEYS + 1)
  local id, actor, action = arg(1), arg(2), arg(3)
  local k = KIND[string.sub(id, 1, 4)]
  local rec = k and load(id)
  if not rec or rec[k.P.participant_id] ~= actor then
    return fail('not_found', 'no such ' .. (k and k.name or 'object'))
  end
  if not k.live[rec[k.P.status]] then
    return fail('conflict', 'the ' .. k.name .. ' is ' .. k.names[rec[k.P.status]] ..
      ' and can no longer change')
  end
  local P = k.P
  if action == 'delete' then
    rec[P.status], rec[P.remaining], rec[P.updated_at] = k.closed, 0, NOW
    touch(id, rec)
    set_due(id, nil)
    emit(k.name .. '.' .. k.names[k.closed], id, rec)
    return answer(id)
  end
  local set = cmsgpack.unpack(arg(4))
  local old_quantity, quantity, due = rec[P.quantity], nil, false
  for i = 1, #set, 2 do
    local pos, v = set[i], set[i + 1]
    if pos == P.quantity then quantity = v else rec[pos] = v end
    if pos == P.expires_at then due = true end
  end
  if quantity then
    local floor = k.floor(rec)
    if quantity < floor then
      return fail('conflict', 'quantity ' .. quantity .. ' is below the ' .. floor ..
        ' already allocated')
    end
    rec[P.quantity], rec[P.remaining] = quantity, quantity - floor
  end
  if due then set_due(id, rec[P.expires_at] or nil) end
  if P == O then offer_changed(id, rec) else need_changed(id, rec) end
  emit(k.name .. '.updated', id, rec)
  if quantity and quantity > old_quantity and rec[P.remaining] > 0 then
    redis.call('HDEL', K_WALK, id)
    if P == O then
      match_offer(id, rec, L.offer_tiers(rec[O.region], rec[O.delivery_scope]), nil)
    else
      match_need(id, rec, L.need_tiers(rec[N.region]), nil)
    end
  end
  return answer(id)
end)
