-- list.lua — one page of offers, needs or allocations of one market, oldest first.
-- KEYS[1] an index (own: "<participant>:<id>", or all: "<id>"; lexicographic zset)
-- KEYS[2] the records hash of that kind
-- ARGV[1] start, exclusive lex bound ("(<member>") or inclusive ("[<member>")
-- ARGV[2] end, inclusive lex bound
-- ARGV[3] limit   ARGV[4] filters JSON {status?, region?, product?, need_id?, offer_id?,
--                                        regions? (visible regions)}
-- ARGV[5] the most members to examine
-- Answers {items = [records], last = member examined last, done = bool}.
local limit, budget = tonumber(ARGV[3]), tonumber(ARGV[5])
local f = cjson.decode(ARGV[4])
local visible = nil
if f.regions then
  visible = {}
  for _, r in ipairs(f.regions) do visible[r] = true end
end
local function keep(rec)
  if f.status and rec.status ~= f.status then return false end
  if f.product and rec.product ~= f.product and rec.offer_product ~= f.product then return false end
  if f.need_id and rec.need_id ~= f.need_id then return false end
  if f.offer_id and rec.offer_id ~= f.offer_id then return false end
  local r1, r2 = rec.region or rec.need_region, rec.offer_region
  if f.region and r1 ~= f.region and r2 ~= f.region then return false end
  if visible and not visible[r1] and not (r2 and visible[r2]) then return false end
  return true
end
local items, last, start, examined = {}, '', ARGV[1], 0
while examined < budget do
  local batch = math.min(64, budget - examined)
  local members = redis.call('ZRANGEBYLEX', KEYS[1], start, ARGV[2], 'LIMIT', 0, batch)
  for _, m in ipairs(members) do
    examined = examined + 1
    last = m
    local v = redis.call('HGET', KEYS[2], string.match(m, '([^:]+)$'))
    if v and keep(cjson.decode(v)) then
      items[#items + 1] = v
      if #items == limit then
        local more = redis.call('ZRANGEBYLEX', KEYS[1], '(' .. m, ARGV[2], 'LIMIT', 0, 1)
        return cjson.encode({ items = items, last = last, done = #more == 0 })
      end
    end
  end
  if #members < batch then
    return cjson.encode({ items = items, last = last, done = true })
  end
  start = '(' .. last
end
return cjson.encode({ items = items, last = last, done = false })
