-- delivery_claim.lua — take due webhook deliveries on a lease.
-- KEYS[1] notify:{due}  zset "<participant>|<message>" by next attempt (Unix ms)
-- ARGV[1] now (ms)  [2] lease (ms)  [3] most to take
-- Each taken member is pushed to now + lease: if this daemon dies, another takes it then.
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3])
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', until_ms, m)
end
return due
