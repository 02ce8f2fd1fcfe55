-- market_lib.lua — shared by every market script (prepended at build time by
-- scripts/embed.py when a script's first line says `-- requires: market_lib.lua`).
--
-- One market = one hash tag, so every key below lives in one Redis Cluster slot.
-- KEYS, for every market script:
--   1 offers   hash  id -> record (JSON)        6 excl   set   "<need id>:<offer id>"
--   2 needs    hash  id -> record               7 agg    hash  "<region>|<product>|<column>"
--   3 allocs   hash  id -> record               8 events stream of changes
--   4 own      zset  "<participant>:<id>" (lex) 9 due    zset  "l:<alloc>" / "x:<id>" by due ms
--   5 all      zset  "<id>" (lex)
--   10.. index keys: "...:oi:<region>:<scope>" (open offers by ready_at) and
--        "...:ni:<region>" (open needs by urgency band + needed_by). The script reads the
--        region and scope from the key names it is given; it never builds a key.
-- ARGV, for every market script:
--   1 now (Unix ms)   2 region graph "11=24.27;24=11;..."   3 lapse ms "stat.asap.urgent.routine"
--   4 id base for new allocations (22 chars; the script appends a 4-char counter)
--   5 market code (4 chars, ends every id)   6 the operation, JSON
--   7 events kept in the stream (approximate MAXLEN)
-- Records keep times as Unix ms; the daemon formats them.

local K_OFFERS, K_NEEDS, K_ALLOCS, K_OWN, K_ALL, K_EXCL, K_AGG, K_EVENTS, K_DUE =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local NOW = tonumber(ARGV[1])
local ALLOC_BASE, MARKET_CODE = ARGV[4], ARGV[5]
local OP = cjson.decode(ARGV[6])
local RETENTION = ARGV[7]

local OI, NI = {}, {}            -- OI[region][scope], NI[region]: index keys given
local REGIONS = {}               -- every region with an index key, sorted
do
  local seen = {}
  for i = 10, #KEYS do
    local k = KEYS[i]
    local r, s = string.match(k, ':oi:(%w+):(%a+)$')
    if r then
      OI[r] = OI[r] or {}
      OI[r][s] = k
    else
      r = string.match(k, ':ni:(%w+)$')
      if r then NI[r] = k end
    end
    if r and not seen[r] then seen[r] = true; REGIONS[#REGIONS + 1] = r end
  end
  table.sort(REGIONS)
end

local NB = {}                    -- NB[a][b] = true when a and b share a land border
for entry in string.gmatch(ARGV[2], '[^;]+') do
  local a, list = string.match(entry, '^(%w+)=(.*)$')
  if a then
    NB[a] = NB[a] or {}
    for b in string.gmatch(list, '%w+') do NB[a][b] = true end
  end
end

local URGENCY_RANK = { stat = 0, asap = 1, urgent = 2, routine = 3 }
local LAPSE = {}
do
  local i = 0
  for ms in string.gmatch(ARGV[3], '%d+') do
    local names = { 'stat', 'asap', 'urgent', 'routine' }
    i = i + 1
    LAPSE[names[i]] = tonumber(ms)
  end
end

local BAND = 10000000000000      -- 1e13 ms: one urgency band of need index scores
local NO_DEADLINE = BAND - 1     -- needs without needed_by sort last in their band
local SCOPE_RANK = { region = 0, neighbours = 1, national = 2 }

local made = {}                  -- allocations made by this call, in order
local alloc_seq = 0

local function get(hk, id)
  local v = redis.call('HGET', hk, id)
  if not v then return nil end
  return cjson.decode(v)
end

local function put(hk, rec)
  redis.call('HSET', hk, rec.id, cjson.encode(rec))
end

local function agg(region, product, column, delta)
  if delta ~= 0 then
    redis.call('HINCRBY', K_AGG, region .. '|' .. product .. '|' .. column, delta)
  end
end

local function emit(etype, kind, rec)
  redis.call('XADD', K_EVENTS, 'MAXLEN', '~', RETENTION, '*',
    'type', etype, 'kind', kind, 'id', rec.id, 'data', cjson.encode(rec))
end

local function tier_of(need_region, offer_region)
  if need_region == offer_region then return 'region' end
  if NB[need_region] and NB[need_region][offer_region] then return 'neighbours' end
  return 'national'
end

-- ---- offers ----

local function offer_open_part(o)
  if o.status == 'open' then return o.remaining end
  return 0
end

local function offer_index_key(o)
  return OI[o.region] and OI[o.region][o.scope]
end

-- Writes o, keeping the index and the offered_open aggregate in step with its status and
-- remaining; `before` is offer_open_part(o) as it was when loaded (0 for a new offer).
local function offer_save(o, before)
  if o.status == 'open' and o.remaining == 0 then o.status = 'depleted' end
  if o.status == 'depleted' and o.remaining > 0 then o.status = 'open' end
  o.updated_at = NOW
  agg(o.region, o.product, 'offered_open', offer_open_part(o) - before)
  local ik = offer_index_key(o)
  if ik then
    if o.status == 'open' and o.remaining > 0 then
      redis.call('ZADD', ik, o.ready_at, o.id)
    else
      redis.call('ZREM', ik, o.id)
    end
  end
  put(K_OFFERS, o)
end

-- ---- needs ----

-- Deadlines past year 2286 (10^13 ms) all sort as that year: scores stay within a band.
local LAST_DEADLINE = NO_DEADLINE - 1

local function need_score(n)
  local deadline = n.needed_by and math.min(n.needed_by, LAST_DEADLINE) or NO_DEADLINE
  return URGENCY_RANK[n.urgency] * BAND + deadline
end

local function need_open_part(n)
  if n.status == 'open' then return n.remaining end
  return 0
end

local function need_agg(n, sign)
  local part = need_open_part(n) * sign
  agg(n.region, n.product, 'needed_open', part)
  if n.urgency == 'stat' then agg(n.region, n.product, 'needed_open_stat', part) end
  if n.urgency == 'asap' then agg(n.region, n.product, 'needed_open_asap', part) end
end

-- Like offer_save; `before` is a copy of the need as loaded (nil for a new need).
local function need_save(n, before)
  if n.status == 'open' and n.remaining == 0 then
    n.status = (n.received >= n.quantity) and 'fulfilled' or 'allocated'
  elseif n.status == 'allocated' and n.remaining > 0 then
    n.status = 'open'
  elseif n.status == 'allocated' and n.received >= n.quantity then
    n.status = 'fulfilled'
  end
  n.updated_at = NOW
  if before then need_agg(before, -1) end
  need_agg(n, 1)
  local ik = NI[n.region]
  if ik then
    if n.status == 'open' and n.remaining > 0 then
      redis.call('ZADD', ik, need_score(n), n.id)
    else
      redis.call('ZREM', ik, n.id)
    end
  end
  put(K_NEEDS, n)
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- ---- allocations ----

local B32 = '0123456789abcdefghjkmnpqrstvwxyz'

local MAX_ALLOCATIONS = 32 * 32 * 32 * 32   -- per call: the 4-character counter

local function next_alloc_id()
  local n, digits = alloc_seq, ''
  for _ = 1, 4 do
    local d = n % 32
    digits = string.sub(B32, d + 1, d + 1) .. digits
    n = math.floor(n / 32)
  end
  alloc_seq = alloc_seq + 1
  return 'alc_' .. ALLOC_BASE .. digits .. MARKET_CODE
end

local function alloc_column(status)
  if status == 'proposed' or status == 'confirmed' then return 'allocated_in_flight' end
  if status == 'shipped' then return 'shipped_in_flight' end
  if status == 'received' then return 'received_total' end
  return nil
end

local function alloc_agg(a, status, sign)
  local col = alloc_column(status)
  if col then agg(a.need_region, a.product, col, sign * a.quantity) end
end

local function excluded(n, o)
  return redis.call('SISMEMBER', K_EXCL, n.id .. ':' .. o.id) == 1
end

local function alive(rec)
  return rec.expires_at == nil or rec.expires_at > NOW
end

-- The quantity o can give n now, or 0 when the pair is not a candidate (tier aside); the
-- second result is true when only min_lot stood in the way (it may not once o has less left).
local function grant(n, o)
  if o.status ~= 'open' or o.remaining <= 0 or n.status ~= 'open' or n.remaining <= 0 then
    return 0
  end
  if not alive(o) or not alive(n) then return 0 end
  if n.needed_by and (n.needed_by < NOW or o.ready_at > n.needed_by) then return 0 end
  if o.participant_id == n.participant_id then return 0 end
  if excluded(n, o) then return 0 end
  local q = math.min(o.remaining, n.remaining)
  if o.min_lot and q < o.min_lot and q ~= o.remaining then return 0, true end
  return q
end

local function allocate(n, o, q, tier)
  if alloc_seq >= MAX_ALLOCATIONS then return false end
  local n_before, o_before = copy(n), offer_open_part(o)
  local a = {
    id = next_alloc_id(), need_id = n.id, offer_id = o.id, product = n.product,
    offer_product = o.product, market = n.market, quantity = q, tier = tier,
    status = 'proposed', need_participant_id = n.participant_id,
    offer_participant_id = o.participant_id, need_region = n.region,
    offer_region = o.region, urgency = n.urgency, lapse_at = NOW + LAPSE[n.urgency],
    created_at = NOW, updated_at = NOW,
  }
  o.remaining = o.remaining - q
  o.allocated = o.allocated + q
  n.remaining = n.remaining - q
  n.allocated = n.allocated + q
  offer_save(o, o_before)
  need_save(n, n_before)
  put(K_ALLOCS, a)
  alloc_agg(a, 'proposed', 1)
  redis.call('ZADD', K_OWN, 0, a.need_participant_id .. ':' .. a.id)
  redis.call('ZADD', K_OWN, 0, a.offer_participant_id .. ':' .. a.id)
  redis.call('ZADD', K_ALL, 0, a.id)
  redis.call('ZADD', K_DUE, a.lapse_at, 'l:' .. a.id)
  emit('allocation.proposed', 'allocation', a)
  if o.status == 'depleted' then emit('offer.depleted', 'offer', o) end
  made[#made + 1] = a
  return true
end

-- ---- candidate streams: a merged, ordered walk over several sorted sets ----

local BATCH = 16

-- Walks `keys` by (score, member) within [lo, hi]. next() returns member, key or nil.
-- removed(key) must be called when the last returned member left its key.
local function walker(keys, lo, hi)
  local heads = {}
  for _, k in ipairs(keys) do
    heads[#heads + 1] = { key = k, buf = {}, pos = 1, offset = 0, done = false }
  end
  local function fill(h)
    if h.pos <= #h.buf or h.done then return end
    local r = redis.call('ZRANGE', h.key, lo, hi, 'BYSCORE', 'LIMIT', h.offset, BATCH,
      'WITHSCORES')
    h.buf, h.pos = {}, 1
    for i = 1, #r, 2 do h.buf[#h.buf + 1] = { r[i], tonumber(r[i + 1]) } end
    h.offset = h.offset + #h.buf
    if #h.buf < BATCH then h.done = true end
  end
  local last
  local w = {}
  function w.next()
    local best, bh
    for _, h in ipairs(heads) do
      fill(h)
      local e = h.buf[h.pos]
      if e and (not best or e[2] < best[2] or (e[2] == best[2] and e[1] < best[1])) then
        best, bh = e, h
      end
    end
    if not best then return nil end
    bh.pos = bh.pos + 1
    last = bh
    return best[1], bh.key
  end
  function w.removed()
    if last then last.offset = last.offset - 1 end
  end
  return w
end

-- ---- matching ----

-- Need-driven: tier, then earliest ready_at, then oldest offer.
local function match_need(n)
  if n.status ~= 'open' or n.remaining <= 0 or not alive(n) then return end
  if n.needed_by and n.needed_by < NOW then return end
  local R = n.region
  local tiers = { { 'region', {} }, { 'neighbours', {} }, { 'national', {} } }
  for _, r in ipairs(REGIONS) do
    local oi = OI[r]
    if oi then
      if r == R then
        for _, s in ipairs({ 'region', 'neighbours', 'national' }) do
          if oi[s] then table.insert(tiers[1][2], oi[s]) end
        end
      elseif NB[R] and NB[R][r] then
        if oi.neighbours then table.insert(tiers[2][2], oi.neighbours) end
        if oi.national then table.insert(tiers[2][2], oi.national) end
      elseif oi.national then
        table.insert(tiers[3][2], oi.national)
      end
    end
  end
  local hi = n.needed_by or '+inf'
  for _, t in ipairs(tiers) do
    local w = walker(t[2], '-inf', hi)
    while n.remaining > 0 do
      local id = w.next()
      if not id then break end
      local o = get(K_OFFERS, id)
      local q = o and grant(n, o) or 0
      if q > 0 then
        if not allocate(n, o, q, t[1]) then return end
        if o.remaining == 0 then w.removed() end
      end
    end
    if n.remaining == 0 then return end
  end
end

-- Offer-driven: tier, then urgency, then earliest needed_by, then oldest need. A need
-- passed over for min_lot becomes a candidate once the offer has no more left than it
-- needs (the offer's last units may always go), so the walk starts again from the best
-- candidates when that happens: each allocation goes to the best candidate at that moment.
local function match_offer(o)
  if o.status ~= 'open' or o.remaining <= 0 or not alive(o) then return end
  local R = o.region
  local reach = SCOPE_RANK[o.scope]
  local tiers = { { 'region', {} }, { 'neighbours', {} }, { 'national', {} } }
  for _, r in ipairs(REGIONS) do
    local ni = NI[r]
    if ni then
      if r == R then
        table.insert(tiers[1][2], ni)
      elseif NB[R] and NB[R][r] then
        if reach >= 1 then table.insert(tiers[2][2], ni) end
      elseif reach >= 2 then
        table.insert(tiers[3][2], ni)
      end
    end
  end
  local restart = true
  while restart do
    restart = false
    local passed_over = 0          -- largest remaining of a need skipped for min_lot
    for _, t in ipairs(tiers) do
      for band = 0, 3 do
        local w = walker(t[2], band * BAND + math.min(o.ready_at, LAST_DEADLINE),
          band * BAND + NO_DEADLINE)
        while o.remaining > 0 do
          local id = w.next()
          if not id then break end
          local n = get(K_NEEDS, id)
          local q, lot = 0, false
          if n then q, lot = grant(n, o) end
          if lot and n.remaining > passed_over then passed_over = n.remaining end
          if q > 0 then
            if not allocate(n, o, q, t[1]) then return end
            if n.remaining == 0 then w.removed() end
            if o.remaining > 0 and o.remaining <= passed_over then
              restart = true
              break
            end
          end
        end
        if o.remaining == 0 or restart then break end
      end
      if o.remaining == 0 or restart then break end
    end
  end
end

-- ---- answers ----

local function answer(tbl)
  tbl.allocations = made
  return cjson.encode(tbl)
end

local function fail(code, detail)
  return cjson.encode({ error = code, detail = detail })
end

-- ---- transitions shared by alloc_action.lua and sweep.lua ----

local TRANSITIONS = {
  confirm = { from = 'proposed', to = 'confirmed' },
  decline = { from = 'proposed', to = 'declined' },
  ship = { from = 'confirmed', to = 'shipped' },
  receive = { from = 'shipped', to = 'received' },
  lapse = { from = 'proposed', to = 'lapsed' },
}

-- Applies action to a (already checked: who may do it). Returns nil, or an error answer.
local function alloc_apply(a, action)
  local t = TRANSITIONS[action]
  if a.status ~= t.from then
    return fail('conflict', 'cannot ' .. action .. ' an allocation that is ' .. a.status)
  end
  alloc_agg(a, a.status, -1)
  a.status = t.to
  a.updated_at = NOW
  if t.from == 'proposed' then
    a.lapse_at = nil
    redis.call('ZREM', K_DUE, 'l:' .. a.id)
  end
  alloc_agg(a, a.status, 1)
  put(K_ALLOCS, a)
  emit('allocation.' .. a.status, 'allocation', a)
  local n = get(K_NEEDS, a.need_id)
  if action == 'decline' or action == 'lapse' then
    local o = get(K_OFFERS, a.offer_id)
    if o then
      local before = offer_open_part(o)
      o.allocated = o.allocated - a.quantity
      o.released = o.released + a.quantity
      offer_save(o, before)
    end
    redis.call('SADD', K_EXCL, a.need_id .. ':' .. a.offer_id)
    if n then
      local before = copy(n)
      n.allocated = n.allocated - a.quantity
      if n.status == 'open' or n.status == 'allocated' then
        n.remaining = n.remaining + a.quantity
      end
      need_save(n, before)
      match_need(n)
    end
  elseif action == 'receive' and n then
    local before = copy(n)
    n.received = n.received + a.quantity
    need_save(n, before)
    if n.status == 'fulfilled' then emit('need.fulfilled', 'need', n) end
  end
  return nil
end

-- Expires an offer or a need whose expires_at has come.
local function expire_item(id)
  local is_offer = string.sub(id, 1, 4) == 'off_'
  local hk = is_offer and K_OFFERS or K_NEEDS
  local rec = get(hk, id)
  if not rec or not rec.expires_at or rec.expires_at > NOW then return end
  if is_offer then
    if rec.status ~= 'open' and rec.status ~= 'depleted' then return end
    local before = offer_open_part(rec)
    rec.status = 'expired'
    rec.remaining = 0
    offer_save(rec, before)
    emit('offer.expired', 'offer', rec)
  else
    if rec.status ~= 'open' and rec.status ~= 'allocated' then return end
    local before = copy(rec)
    rec.status = 'expired'
    rec.remaining = 0
    need_save(rec, before)
    emit('need.expired', 'need', rec)
  end
end

local function set_due(id, at)
  redis.call('ZREM', K_DUE, 'x:' .. id)
  if at then redis.call('ZADD', K_DUE, at, 'x:' .. id) end
end
