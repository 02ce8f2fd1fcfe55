-- market.lua — what every market function shares: its keys and settings, records, ids,
-- events, aggregates, indexes. One market is one Redis Cluster hash tag: every key below
-- shares it, and each is passed in KEYS (src/market.c builds them in this order).
--
-- KEYS of every market function:
--   1 rec     hash   id -> record (MessagePack array; positions O, N, A from the prelude)
--   2 log:o   stream offers in creation order (entry id = the offer's creation event id)
--   3 log:n   stream needs, likewise            4 log:a  stream allocations, likewise
--   5 aown    zset   "<participant>:<allocation id>" for both parties (lexicographic)
--   6 excl    set    "<need id>:<offer id>" pairs never to match again
--   7 agg     hash   "<region>|<product>|<column>" -> sum (the stock feed)
--   8 events  stream every change: t = type, i = id (absent: derived from the entry id),
--                    d = the record
--   9 due     zset   "l:<alloc>" lapse, "o:<alloc>" overdue, "x:<id>" expiry, "m:<id>"
--                    matching to continue
--  10 walk    hash   id -> where a bounded matching walk stopped (MessagePack)
--  11 peers   set    "<participant>|<participant>", both orders, for every two parties that
--                    share an allocation (who may see whose public view)
--  12 outcomes stream one entry per allocation closed (received, declined, lapsed,
--                    cancelled): r need region, p product, o outcome, w reason ('' none),
--                    q quantity, rq received quantity ('' none), h ms from proposal to
--                    receipt ('' none); its entry id is the time it closed
--  13 idem:<digest>  string  the outcome of a POST made with an Idempotency-Key (24 h);
--                    "idem:" (never written) for a call without one
--  then each function's own keys (a participant's own list), then index keys in one of
--  the layouts of match.lua.
-- ARGV of every market function: 1-4 lapse delay (ms) by urgency, 5 candidates a call may
-- examine, 6 allocations a call may make, 7 events kept (approximate), 8 the market's code,
-- 9 the Idempotency-Key's fingerprint ('' without one); then the function's own.
-- Records keep absent fields as false (never nil: MessagePack would make a map of an array
-- with holes). Times are Unix ms of Redis's clock (TIME), which every daemon shares.

local FIXED_KEYS = 13
local IDEM_TTL = '86400'          -- seconds an Idempotency-Key's outcome is kept

-- Numbers go to redis.call as decimal text: Redis 7.0 prints a Lua number argument with
-- "%.17g" (glibc's floating-point printer), many times dearer than an integer format.
local function int(n) return string.format('%d', n) end
local BAND = 10000000000000      -- 1e13 ms: one urgency band of need index scores
local NO_DEADLINE = BAND - 1     -- needs without needed_by sort last in their band
local LAST_DEADLINE = NO_DEADLINE - 1   -- deadlines past year 2286 sort as that year

-- the call being served (set by begin; one function runs at a time)
local K_REC, K_LOGO, K_LOGN, K_LOGA, K_AOWN, K_EXCL, K_AGG, K_EVENTS, K_DUE, K_WALK, K_PEERS
local K_OUTCOMES, K_IDEM
local KEYS_, ARGV_
local NOW, LAPSE, CANDIDATES, ALLOCATIONS, RETENTION, CODE, MARKET, IDEM
local cache, before, packed, dirty, dirty_n, aggd, made, more, changed

local function begin(keys, args)
  KEYS_, ARGV_ = keys, args
  K_REC, K_LOGO, K_LOGN, K_LOGA, K_AOWN = keys[1], keys[2], keys[3], keys[4], keys[5]
  K_EXCL, K_AGG, K_EVENTS, K_DUE, K_WALK = keys[6], keys[7], keys[8], keys[9], keys[10]
  K_PEERS, K_OUTCOMES, K_IDEM, IDEM = keys[11], keys[12], keys[13], args[9]
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  LAPSE = nil                    -- read when an allocation is made (lapse_after)
  CANDIDATES, ALLOCATIONS = tonumber(args[5]), tonumber(args[6])
  RETENTION, CODE = args[7], args[8]
  MARKET = MARKETS[CODE]
  if not MARKET then error('unknown market code ' .. tostring(CODE)) end
  cache, before, packed, dirty, dirty_n, aggd, made = {}, {}, {}, {}, 0, {}, {}
  more, changed = false, false
end

local function arg(i) return ARGV_[9 + i] end

-- The lapse delay (ms) of an urgency code.
local function lapse_after(urgency)
  if not LAPSE then
    LAPSE = { [0] = tonumber(ARGV_[1]), tonumber(ARGV_[2]), tonumber(ARGV_[3]), tonumber(ARGV_[4]) }
  end
  return LAPSE[urgency]
end

-- ---- records ----

local SIZE = {}                   -- positions of each kind, by id prefix
SIZE['off_'], SIZE['ned_'], SIZE['alc_'] = O_SIZE, N_SIZE, A_SIZE

local function pack_record(id, rec)
  for i = 1, SIZE[string.sub(id, 1, 4)] do
    if rec[i] == nil then rec[i] = false end
  end
  return cmsgpack.pack(rec)
end

-- What the stock feed and the indexes count of a record: computed when it is loaded and
-- again when the call ends, so that mutations never touch aggregates or indexes themselves.
local function offer_state(o)
  local open = o[O.status] == OFFER_STATUS.open and o[O.remaining] > 0
  return { open = open and o[O.remaining] or 0, region = o[O.region],
           product = o[O.product] or MARKET, scope = o[O.delivery_scope],
           score = o[O.ready_at] }
end

local function need_score(n)
  local deadline = n[N.needed_by] and math.min(n[N.needed_by], LAST_DEADLINE) or NO_DEADLINE
  return n[N.urgency] * BAND + deadline
end

local function need_state(n)
  local open = n[N.status] == NEED_STATUS.open and n[N.remaining] > 0
  return { open = open and n[N.remaining] or 0, region = n[N.region], urgency = n[N.urgency],
           score = need_score(n) }
end

local ALLOC_COLUMN = {}
ALLOC_COLUMN[ALLOCATION_STATUS.proposed] = 'allocated_in_flight'
ALLOC_COLUMN[ALLOCATION_STATUS.confirmed] = 'allocated_in_flight'
ALLOC_COLUMN[ALLOCATION_STATUS.shipped] = 'shipped_in_flight'
ALLOC_COLUMN[ALLOCATION_STATUS.received] = 'received_total'

-- a received allocation counts what arrived (received_total); the shortfall went back
local function alloc_state(a)
  local q = a[A.status] == ALLOCATION_STATUS.received and a[A.received_quantity] or a[A.quantity]
  return { column = ALLOC_COLUMN[a[A.status]], quantity = q,
           region = a[A.need_region], product = a[A.product] or MARKET }
end

local STATE = {}
STATE['off_'], STATE['ned_'], STATE['alc_'] = offer_state, need_state, alloc_state

-- The record with that id, read once per call (later reads see this call's changes).
local function load(id)
  local rec = cache[id]
  if rec ~= nil then return rec or nil end
  local v = redis.call('HGET', K_REC, id)
  rec = v and cmsgpack.unpack(v) or false
  cache[id] = rec
  if rec then before[id] = STATE[string.sub(id, 1, 4)](rec) end
  return rec or nil
end

-- Marks a record to be written when the call ends (flush).
local function touch(id, rec)
  cache[id] = rec
  packed[id] = nil
  if not dirty[id] then
    dirty[id] = true
    dirty_n = dirty_n + 1
  end
end

-- ---- ids and events ----

-- "<ms>-<seq>" -> prefix .. 11 hex digits of ms .. 4 of seq .. the market's code
local function id_of(prefix, entry)
  local ms, seq = string.match(entry, '^(%d+)-(%d+)$')
  seq = tonumber(seq)
  if seq > 65535 then error('more than 65536 events in one millisecond') end
  return prefix .. string.format('%011x%04x', tonumber(ms), seq) .. CODE
end

-- "<prefix><11 hex><4 hex><code>" -> "<ms>-<seq>"
local function entry_of(id)
  return tonumber(string.sub(id, 5, 15), 16) .. '-' .. tonumber(string.sub(id, 16, 19), 16)
end

local function emit(etype, id, rec)
  redis.call('XADD', K_EVENTS, 'MAXLEN', '~', RETENTION, '*', 't', etype, 'i', id,
    'd', pack_record(id, rec))
end

-- Creates an object; its creation event's position gives its id. log: its creation log.
local function create(prefix, etype, log, rec)
  for i = 1, SIZE[prefix] do
    if rec[i] == nil then rec[i] = false end
  end
  local p = cmsgpack.pack(rec)
  local entry = redis.call('XADD', K_EVENTS, 'MAXLEN', '~', RETENTION, '*', 't', etype,
    'd', p)
  local id = id_of(prefix, entry)
  redis.call('XADD', log, entry, 'k', '')
  touch(id, rec)
  packed[id] = p
  return id
end

-- ---- aggregates (stock feed) ----

local function agg(region, product, column, delta)
  if delta ~= 0 then
    local k = region .. '|' .. product .. '|' .. column
    aggd[k] = (aggd[k] or 0) + delta
  end
end

-- ---- the end of a call: records, aggregates and indexes ----

-- Index keys come from the call's layout (match.lua): set by the function before flush.
local offer_key, need_key

local SYNC = {}
SYNC['off_'] = function(id, b, a)
  agg(a.region, a.product, 'offered_open', a.open - (b and b.open or 0))
  if b and b.open > 0 and a.open == 0 then
    redis.call('ZREM', offer_key(b.region, b.scope), id)
  elseif a.open > 0 and not (b and b.open > 0 and b.score == a.score) then
    redis.call('ZADD', offer_key(a.region, a.scope), int(a.score), id)
  end
end
SYNC['ned_'] = function(id, b, a)
  local function counts(s, sign)
    agg(s.region, MARKET, 'needed_open', sign * s.open)
    if s.urgency == URGENCY.stat then agg(s.region, MARKET, 'needed_open_stat', sign * s.open) end
    if s.urgency == URGENCY.asap then agg(s.region, MARKET, 'needed_open_asap', sign * s.open) end
  end
  if b then counts(b, -1) end
  counts(a, 1)
  if b and b.open > 0 and a.open == 0 then
    redis.call('ZREM', need_key(b.region), id)
  elseif a.open > 0 and not (b and b.open > 0 and b.score == a.score) then
    redis.call('ZADD', need_key(a.region), int(a.score), id)
  end
end
SYNC['alc_'] = function(id, b, a)
  if b and b.column then agg(b.region, b.product, b.column, -b.quantity) end
  if a.column then agg(a.region, a.product, a.column, a.quantity) end
end

local HSET_BATCH = 1024    -- arguments (id, record pairs) per HSET

local function flush()
  if dirty_n > 0 then
    local args, k = {}, 0
    for id in pairs(dirty) do
      local rec, kind = cache[id], string.sub(id, 1, 4)
      local after = STATE[kind](rec)
      SYNC[kind](id, before[id], after)
      before[id] = after
      local p = packed[id] or pack_record(id, rec)
      packed[id] = p
      args[k + 1], args[k + 2] = id, p
      k = k + 2
      if k == HSET_BATCH then     -- unpack must stay below Lua's stack limit (~8000)
        redis.call('HSET', K_REC, unpack(args))
        args, k = {}, 0
      end
    end
    if k > 0 then redis.call('HSET', K_REC, unpack(args)) end
    changed = true
  end
  for k, d in pairs(aggd) do
    if d ~= 0 then redis.call('HINCRBY', K_AGG, k, int(d)) end
  end
  dirty, dirty_n, aggd = {}, 0, {}
end

-- The answer of a market function: {'ok', flags, id, record, id, record, ...}: the main
-- object first, then the allocations the call made. flags: words, 'more' (matching goes on
-- in a later call), 'changed' (records were written: events to notify, aggregates).
local function answer(id)
  flush()
  local out = { 'ok', (more and 'more ' or '') .. (changed and 'changed' or '') }
  if id then
    out[3], out[4] = id, packed[id] or pack_record(id, cache[id])
  end
  for _, a in ipairs(made) do
    out[#out + 1] = a
    out[#out + 1] = packed[a] or pack_record(a, cache[a])
  end
  if IDEM ~= '' then
    -- the outcome beside the change, in the same atomic step: a repeat of this request,
    -- even one sent after a timeout or through another daemon, gets it and changes nothing
    local kept = { IDEM, 'replayed' }
    for i = 3, #out do kept[i] = out[i] end
    redis.call('SET', K_IDEM, cmsgpack.pack(kept), 'EX', IDEM_TTL)
  end
  return out
end

-- Registers a market function: begin, and the answer recorded under the call's
-- Idempotency-Key (when it has one) instead of running again.
local function register_market(name, fn)
  register(name, function(keys, args)
    begin(keys, args)
    if IDEM ~= '' then
      local v = redis.call('GET', K_IDEM)
      if v then
        local kept = cmsgpack.unpack(v)
        if kept[1] ~= IDEM then
          return { 'idem_reuse', 'this Idempotency-Key was already used with a different request' }
        end
        kept[1] = 'ok'
        return kept
      end
    end
    return fn(keys, args)
  end)
end

local function fail(code, detail)
  return { code, detail }
end

local function alive(expires_at)
  return not expires_at or expires_at > NOW
end

local function set_due(id, at)
  redis.call('ZREM', K_DUE, 'x:' .. id)
  if at then redis.call('ZADD', K_DUE, int(at), 'x:' .. id) end
end
