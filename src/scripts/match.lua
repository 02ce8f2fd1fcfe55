-- match.lua — matching: which open items a call may walk, in what order, and what an
-- allocation changes. Every walk is bounded: a call examines at most CANDIDATES candidates
-- and makes at most ALLOCATIONS allocations; a walk cut short is saved in `walk` and the
-- item put in `due` ("m:<id>"), so a later call (sweep.lua) goes on from there.
--
-- Index keys (after the fixed keys and the function's own), in one of three layouts:
--   all:   for each region of REGIONS in order: oi:<r>:region, oi:<r>:neighbours,
--          oi:<r>:national, ni:<r>                       (changes, actions, sweeps)
--   need:  ni:<R>, then the offer indexes of a need of region R by tier: oi:<R>:region,
--          oi:<R>:neighbours, oi:<R>:national; for each neighbour n of R (NEIGHBOURS order)
--          oi:<n>:neighbours, oi:<n>:national; for each other region x (REGIONS order)
--          oi:<x>:national                               (need_create)
--   offer: oi:<R>:<S>, then the need indexes an offer of region R and scope S reaches by
--          tier: ni:<R>; ni of each neighbour when S reaches them; ni of every other region
--          when S is national                            (offer_create)
-- oi: open offers of a region and scope by ready_at; ni: open needs of a region by
-- urgency band + needed_by (market.lua, need_score). Ties go to the older item (its id).

local BATCH = 16
local BATCH_TEXT = '16'

-- ---- layouts ----

-- A tier is {tier = TIER code, keys = a list of keys, first, last}: the keys
-- keys[first..last]. A layout that came in KEYS in tier order points into KEYS_ itself, so
-- nothing is built per call; the all layout lists each tier's keys (changes, actions and
-- sweeps: calls that are rarer and need an arbitrary region's tiers).

local function layout_all(base)
  local function at(r, s)
    local i = RIDX[r]
    if not i then error('no index keys for region ' .. tostring(r)) end
    return KEYS_[base + 4 * (i - 1) + s]
  end
  offer_key = function(r, scope) return at(r, scope) end
  need_key = function(r) return at(r, 3) end
  local L = {}
  local function listed(tier, keys)
    return { tier = tier, keys = keys, first = 1, last = #keys }
  end
  function L.need_tiers(R)
    local nb, other = {}, {}
    for _, r in ipairs(REGIONS) do
      if NB[R][r] then
        nb[#nb + 1] = at(r, 1)
        nb[#nb + 1] = at(r, 2)
      elseif r ~= R then
        other[#other + 1] = at(r, 2)
      end
    end
    return { listed(TIER.region, { at(R, 0), at(R, 1), at(R, 2) }),
             listed(TIER.neighbours, nb), listed(TIER.national, other) }
  end
  function L.offer_tiers(R, scope)
    local nb, other = {}, {}
    for _, r in ipairs(REGIONS) do
      if NB[R][r] then
        if scope >= DELIVERY_SCOPE.neighbours then nb[#nb + 1] = at(r, 3) end
      elseif r ~= R and scope >= DELIVERY_SCOPE.national then
        other[#other + 1] = at(r, 3)
      end
    end
    return { listed(TIER.region, { at(R, 3) }), listed(TIER.neighbours, nb),
             listed(TIER.national, other) }
  end
  return L
end

-- The need layout for a need of region R (need_create): tiers are ranges of KEYS_.
local LAYOUT_BASE, LAYOUT_REGION, LAYOUT_SCOPE

local function need_layout_offer_key(r, scope)
  local base, R = LAYOUT_BASE, LAYOUT_REGION
  if r == R then return KEYS_[base + 1 + scope] end
  local i = NBIDX[R][r]
  if i and scope >= DELIVERY_SCOPE.neighbours then
    return KEYS_[base + 4 + 2 * (i - 1) + scope - 1]
  end
  i = OTHERIDX[R][r]
  if i and scope == DELIVERY_SCOPE.national then
    return KEYS_[base + 4 + 2 * #NEIGHBOURS[R] + i - 1]
  end
  error('no offer index for ' .. tostring(r) .. ' scope ' .. tostring(scope))
end

local function need_layout_need_key(r)
  if r ~= LAYOUT_REGION then error('no need index for region ' .. tostring(r)) end
  return KEYS_[LAYOUT_BASE]
end

local function layout_need(base, R)
  LAYOUT_BASE, LAYOUT_REGION = base, R
  offer_key, need_key = need_layout_offer_key, need_layout_need_key
  local first_other = base + 4 + 2 * #NEIGHBOURS[R]
  return { { tier = TIER.region, keys = KEYS_, first = base + 1, last = base + 3 },
           { tier = TIER.neighbours, keys = KEYS_, first = base + 4, last = first_other - 1 },
           { tier = TIER.national, keys = KEYS_, first = first_other, last = #KEYS_ } }
end

-- The offer layout for an offer of region R and scope S (offer_create).
local function offer_layout_need_key(r)
  local base, R, S = LAYOUT_BASE, LAYOUT_REGION, LAYOUT_SCOPE
  if r == R then return KEYS_[base + 1] end
  local i = NBIDX[R][r]
  if i and S >= DELIVERY_SCOPE.neighbours then return KEYS_[base + 1 + i] end
  i = OTHERIDX[R][r]
  if i and S == DELIVERY_SCOPE.national then
    return KEYS_[base + 2 + #NEIGHBOURS[R] + i - 1]
  end
  error('no need index for region ' .. tostring(r))
end

local function offer_layout_offer_key(r, scope)
  if r ~= LAYOUT_REGION or scope ~= LAYOUT_SCOPE then
    error('no offer index for ' .. tostring(r))
  end
  return KEYS_[LAYOUT_BASE]
end

local function layout_offer(base, R, S)
  LAYOUT_BASE, LAYOUT_REGION, LAYOUT_SCOPE = base, R, S
  offer_key, need_key = offer_layout_offer_key, offer_layout_need_key
  local first_other = base + 2 + (S >= DELIVERY_SCOPE.neighbours and #NEIGHBOURS[R] or 0)
  return { { tier = TIER.region, keys = KEYS_, first = base + 1, last = base + 1 },
           { tier = TIER.neighbours, keys = KEYS_, first = base + 2, last = first_other - 1 },
           { tier = TIER.national, keys = KEYS_, first = first_other, last = #KEYS_ } }
end

-- ---- walking several sorted sets as one ----

-- A walk over the keys of a tier with lo <= score <= hi in (score, member) order, starting
-- after (from_score, from_member) when given. walk_next(w) returns the next member or nil;
-- w.score and w.member are the last returned. Each key's head is a window of BATCH members
-- (parallel arrays of members and scores) read when it runs dry. Index changes wait for the
-- end of the call (flush), so nothing leaves a key while it is walked.
local function walker(t, lo, hi, from_score, from_member)
  local w = { n = 0, lo = from_score and int(from_score) or lo, hi = hi,
              from_score = from_score, from_member = from_member }
  for i = t.first, t.last do
    w.n = w.n + 1
    w[w.n] = { key = t.keys[i], m = {}, s = {}, len = 0, pos = 1, offset = 0, done = false }
  end
  return w
end

local function head_fill(w, h)
  while h.pos > h.len and not h.done do
    local r = redis.call('ZRANGE', h.key, w.lo, w.hi, 'BYSCORE', 'LIMIT', int(h.offset),
      BATCH_TEXT, 'WITHSCORES')
    local m, sc, len = h.m, h.s, 0
    for i = 1, #r, 2 do
      local score = tonumber(r[i + 1])
      if not (w.from_member and score == w.from_score and r[i] <= w.from_member) then
        len = len + 1
        m[len], sc[len] = r[i], score
      end
    end
    h.len, h.pos = len, 1
    h.offset = h.offset + #r / 2
    if #r < 2 * BATCH then h.done = true end
  end
end

local function walk_next(w)
  local bh, bm, bs
  for i = 1, w.n do
    local h = w[i]
    head_fill(w, h)
    if h.pos <= h.len then
      local m, s = h.m[h.pos], h.s[h.pos]
      if not bh or s < bs or (s == bs and m < bm) then bh, bm, bs = h, m, s end
    end
  end
  if not bh then return nil end
  bh.pos = bh.pos + 1
  w.score, w.member = bs, bm
  return bm
end

-- ---- bounded walks ----

local function budget_left()
  return CANDIDATES > 0 and ALLOCATIONS > 0
end

-- Saves where a walk stopped and asks for a later call to go on.
local function pause(id, state)
  redis.call('HSET', K_WALK, id, cmsgpack.pack(state))
  redis.call('ZADD', K_DUE, int(NOW), 'm:' .. id)
  more = true
end

local function saved_walk(id)
  local v = redis.call('HGET', K_WALK, id)
  return v and cmsgpack.unpack(v) or nil
end

local function forget_walk(id, had)
  if had then redis.call('HDEL', K_WALK, id) end
end

-- ---- candidates ----

local function excluded(nid, oid)
  return redis.call('SISMEMBER', K_EXCL, nid .. ':' .. oid) == 1
end

-- The quantity offer o can give need n now, or 0 when the pair is not a candidate (tier
-- aside); the second result is true when only min_lot stood in the way (it may not once o
-- has less left).
local function grant(nid, n, oid, o)
  if o[O.status] ~= OFFER_STATUS.open or o[O.remaining] <= 0 or
     n[N.status] ~= NEED_STATUS.open or n[N.remaining] <= 0 then
    return 0
  end
  if not alive(o[O.expires_at]) or not alive(n[N.expires_at]) then return 0 end
  local by = n[N.needed_by]
  if by and (by < NOW or o[O.ready_at] > by) then return 0 end
  if o[O.participant_id] == n[N.participant_id] then return 0 end
  if (n[N.excluded] or 0) > 0 and excluded(nid, oid) then return 0 end
  local q = math.min(o[O.remaining], n[N.remaining])
  local lot = o[O.min_lot]
  if lot and q < lot and q ~= o[O.remaining] then return 0, true end
  return q
end

-- ---- what changes ----

local function offer_changed(id, o)
  if o[O.status] == OFFER_STATUS.open and o[O.remaining] == 0 then
    o[O.status] = OFFER_STATUS.depleted
  elseif o[O.status] == OFFER_STATUS.depleted and o[O.remaining] > 0 then
    o[O.status] = OFFER_STATUS.open
  end
  o[O.updated_at] = NOW
  touch(id, o)
end

local function need_changed(id, n)
  local s = n[N.status]
  if s == NEED_STATUS.open and n[N.remaining] == 0 then
    n[N.status] = n[N.received] >= n[N.quantity] and NEED_STATUS.fulfilled or NEED_STATUS.allocated
  elseif s == NEED_STATUS.allocated and n[N.remaining] > 0 then
    n[N.status] = NEED_STATUS.open
  elseif s == NEED_STATUS.allocated and n[N.received] >= n[N.quantity] then
    n[N.status] = NEED_STATUS.fulfilled
  end
  n[N.updated_at] = NOW
  touch(id, n)
end

local function allocate(nid, n, oid, o, q, tier)
  local a = {}
  a[A.need_id], a[A.offer_id] = nid, oid
  a[A.product], a[A.offer_product] = false, o[O.product]
  a[A.quantity], a[A.tier], a[A.status] = q, tier, ALLOCATION_STATUS.proposed
  a[A.need_participant_id], a[A.offer_participant_id] = n[N.participant_id], o[O.participant_id]
  a[A.need_region], a[A.offer_region], a[A.urgency] = n[N.region], o[O.region], n[N.urgency]
  a[A.lapse_at] = NOW + lapse_after(n[N.urgency])
  a[A.need_party], a[A.offer_party] = n[N.party], o[O.party]
  a[A.updated_at] = NOW
  o[O.remaining], o[O.allocated] = o[O.remaining] - q, o[O.allocated] + q
  n[N.remaining], n[N.allocated] = n[N.remaining] - q, n[N.allocated] + q
  offer_changed(oid, o)
  need_changed(nid, n)
  local aid = create('alc_', 'allocation.proposed', K_LOGA, a)
  redis.call('ZADD', K_AOWN, '0', a[A.need_participant_id] .. ':' .. aid, '0',
    a[A.offer_participant_id] .. ':' .. aid)
  redis.call('SADD', K_PEERS, a[A.need_participant_id] .. '|' .. a[A.offer_participant_id],
    a[A.offer_participant_id] .. '|' .. a[A.need_participant_id])
  redis.call('ZADD', K_DUE, int(a[A.lapse_at]), 'l:' .. aid)
  if o[O.status] == OFFER_STATUS.depleted then emit('offer.depleted', oid, o) end
  made[#made + 1] = aid
  ALLOCATIONS = ALLOCATIONS - 1
  return aid
end

-- ---- matching ----

-- Need-driven: tier, then earliest ready_at, then oldest offer. tiers: from a layout.
-- from: a saved walk {tier, score, member}, or nil to start at the best candidates.
local function match_need(nid, n, tiers, from)
  local had = from ~= nil
  if n[N.status] ~= NEED_STATUS.open or n[N.remaining] <= 0 or not alive(n[N.expires_at]) or
     (n[N.needed_by] and n[N.needed_by] < NOW) then
    forget_walk(nid, had)
    return
  end
  local hi = n[N.needed_by] and int(n[N.needed_by]) or '+inf'
  for ti = from and from[1] or 1, #tiers do
    local resume = from and ti == from[1]
    local w = walker(tiers[ti], '-inf', hi, resume and from[2], resume and from[3])
    while n[N.remaining] > 0 do
      if not budget_left() then
        pause(nid, { ti, w.score or (resume and from[2]) or nil, w.member or (resume and from[3]) or nil })
        return
      end
      local oid = walk_next(w)
      if not oid then break end
      CANDIDATES = CANDIDATES - 1
      local o = load(oid)
      local q = o and grant(nid, n, oid, o) or 0
      if q > 0 then allocate(nid, n, oid, o, q, tiers[ti].tier) end
    end
    if n[N.remaining] <= 0 then break end
  end
  forget_walk(nid, had)
end

-- Offer-driven: tier, then urgency, then earliest needed_by, then oldest need. A need passed
-- over for min_lot becomes a candidate once the offer has no more left than it needs (the
-- offer's last units may always go), so the walk starts again from the best candidates when
-- that happens: each allocation goes to the best candidate at that moment.
-- from: a saved walk {tier, band, score, member, passed_over}, or nil.
local function match_offer(oid, o, tiers, from)
  local had = from ~= nil
  if o[O.status] ~= OFFER_STATUS.open or o[O.remaining] <= 0 or not alive(o[O.expires_at]) then
    forget_walk(oid, had)
    return
  end
  local lo_deadline = math.min(o[O.ready_at], LAST_DEADLINE)
  local passed_over = from and from[5] or 0   -- largest remaining of a need skipped for min_lot
  local restart = true
  while restart do
    restart = false
    for ti = from and from[1] or 1, #tiers do
      for band = (from and ti == from[1]) and from[2] or 0, 3 do
        local resume = from and ti == from[1] and band == from[2]
        local w = walker(tiers[ti], int(band * BAND + lo_deadline), int(band * BAND + NO_DEADLINE),
          resume and from[3], resume and from[4])
        while o[O.remaining] > 0 do
          if not budget_left() then
            pause(oid, { ti, band, w.score or (resume and from[3]) or nil,
                         w.member or (resume and from[4]) or nil, passed_over })
            return
          end
          local nid = walk_next(w)
          if not nid then break end
          CANDIDATES = CANDIDATES - 1
          local n = load(nid)
          local q, lot = 0, false
          if n then q, lot = grant(nid, n, oid, o) end
          if lot and n[N.remaining] > passed_over then passed_over = n[N.remaining] end
          if q > 0 then
            allocate(nid, n, oid, o, q, tiers[ti].tier)
            if o[O.remaining] > 0 and o[O.remaining] <= passed_over then
              restart = true
              break
            end
          end
        end
        if o[O.remaining] == 0 or restart then break end
      end
      if o[O.remaining] == 0 or restart then break end
    end
    if restart then
      from, passed_over = nil, 0
    end
  end
  forget_walk(oid, had)
end
