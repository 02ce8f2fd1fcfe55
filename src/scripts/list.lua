-- list.lua — one market's part of a page of offers, needs or allocations, oldest first.
-- Read-only. The daemon merges the markets' parts by id (ids sort by creation) and cuts the
-- page where a market that did not reach its end stopped (src/engine.c).
--
-- KEYS: 1 the index walked, 2 rec (the market's records)
--   mode 'log':  log:o | log:n | log:a, a market's creation log (everything: ministry, admin)
--   mode 'own':  own:<participant>, the list of a participant's offers and needs
--   mode 'aown': aown, "<participant>:<allocation id>" (a party's allocations)
-- ARGV: 1 mode, 2 after: the cursor (an id) or '', 3 the kind's id prefix, 4 the owner
--   ("<participant>:" for aown), 5 limit, 6 the most index entries to examine, 7 the
--   market's code, then the filters, '' for none: 8 status code, 9 region, 10 product,
--   11 need_id, 12 offer_id, 13 the regions a regional token sees ("11,24").
-- Answers {done (0|1), last id examined ('' if none), id, record, id, record, ...}.

local FILTERS = {
  off_ = { P = O, status = O.status, regions = { O.region }, products = { O.product } },
  ned_ = { P = N, status = N.status, regions = { N.region }, products = { N.product } },
  alc_ = { P = A, status = A.status, regions = { A.need_region, A.offer_region },
           products = { A.product, A.offer_product } },
}

local function keeper(args, prefix)
  local f = FILTERS[prefix]
  local status = args[8] ~= '' and tonumber(args[8]) or nil
  local region = args[9] ~= '' and args[9] or nil
  local product = args[10] ~= '' and args[10] or nil
  local need_id = args[11] ~= '' and args[11] or nil
  local offer_id = args[12] ~= '' and args[12] or nil
  local visible = nil
  if args[13] ~= '' then
    visible = {}
    for r in string.gmatch(args[13], '[^,]+') do visible[r] = true end
  end
  local market = MARKETS[args[7]]
  local function any(rec, positions, pred)
    for _, p in ipairs(positions) do
      if pred(rec[p] or (positions == f.products and market) or nil) then return true end
    end
    return false
  end
  return function(rec)
    if status and rec[f.status] ~= status then return false end
    if need_id and rec[A.need_id] ~= need_id then return false end
    if offer_id and rec[A.offer_id] ~= offer_id then return false end
    if product and not any(rec, f.products, function(v) return v == product end) then
      return false
    end
    if region and not any(rec, f.regions, function(v) return v == region end) then
      return false
    end
    if visible and not any(rec, f.regions, function(v) return v and visible[v] end) then
      return false
    end
    return true
  end
end

-- The first position of a participant's list whose id comes after `after` (binary search;
-- the list holds offers and needs in creation order, so ids compare after their prefix).
local function list_start(key, after)
  if after == '' then return 0 end
  after = string.sub(after, 5)
  local lo, hi = 0, redis.call('LLEN', key)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if string.sub(redis.call('LINDEX', key, string.format('%d', mid)), 5) <= after then lo = mid + 1 else hi = mid end
  end
  return lo
end

register('list', function(keys, args)
  local mode, after, prefix, owner = args[1], args[2], args[3], args[4]
  local limit, budget, code = tonumber(args[5]), tonumber(args[6]), args[7]
  local keep = keeper(args, prefix)
  local out, last, examined = { 0, '' }, '', 0
  local function consider(id)
    examined = examined + 1
    last = id
    local v = redis.call('HGET', keys[2], id)
    if v and keep(cmsgpack.unpack(v)) then
      local n = #out
      out[n + 1], out[n + 2] = id, v
    end
    return (#out - 2) / 2 >= limit
  end
  local done = false
  if mode == 'log' then
    local start = after ~= '' and '(' .. (tonumber(string.sub(after, 5, 15), 16) .. '-' ..
      tonumber(string.sub(after, 16, 19), 16)) or '-'
    while examined < budget and not done do
      local batch = math.min(64, budget - examined)
      local entries = redis.call('XRANGE', keys[1], start, '+', 'COUNT', string.format('%d', batch))
      for _, e in ipairs(entries) do
        local ms, seq = string.match(e[1], '^(%d+)-(%d+)$')
        local id = prefix .. string.format('%011x%04x', tonumber(ms), tonumber(seq)) .. code
        start = '(' .. e[1]
        if consider(id) then
          done = #redis.call('XRANGE', keys[1], start, '+', 'COUNT', '1') == 0
          out[1], out[2] = done and 1 or 0, last
          return out
        end
      end
      if #entries < batch then done = true end
    end
  elseif mode == 'own' then
    local pos = list_start(keys[1], after)
    while examined < budget and not done do
      local batch = math.min(64, budget - examined)
      local ids = redis.call('LRANGE', keys[1], string.format('%d', pos), string.format('%d', pos + batch - 1))
      for _, id in ipairs(ids) do
        pos = pos + 1
        if string.sub(id, 1, 4) == prefix then
          if consider(id) then
            done = redis.call('LLEN', keys[1]) <= pos
            out[1], out[2] = done and 1 or 0, last
            return out
          end
        else
          examined = examined + 1
          last = prefix .. string.sub(id, 5)   -- a position, in this kind's terms
        end
      end
      if #ids < batch then done = true end
    end
  else
    local start = after ~= '' and '(' .. owner .. after or '[' .. owner .. prefix
    local stop = '[' .. owner .. prefix .. '~'
    while examined < budget and not done do
      local batch = math.min(64, budget - examined)
      local members = redis.call('ZRANGEBYLEX', keys[1], start, stop, 'LIMIT', '0', string.format('%d', batch))
      for _, m in ipairs(members) do
        start = '(' .. m
        if consider(string.sub(m, #owner + 1)) then
          done = #redis.call('ZRANGEBYLEX', keys[1], start, stop, 'LIMIT', '0', '1') == 0
          out[1], out[2] = done and 1 or 0, last
          return out
        end
      end
      if #members < batch then done = true end
    end
  end
  out[1], out[2] = done and 1 or 0, last
  return out
end, { 'no-writes' })

-- XINFO STREAM of a market's event stream, or false when it does not exist yet (the event
-- feed's check that a cursor still points at retained events). KEYS: 1 the stream.
register('stream_info', function(keys, args)
  if redis.call('EXISTS', keys[1]) == 0 then return false end
  return redis.call('XINFO', 'STREAM', keys[1])
end, { 'no-writes' })
