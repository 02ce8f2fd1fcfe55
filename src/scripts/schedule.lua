-- schedule.lua — the webhook delivery schedule (one slot for the whole platform).
-- KEYS[1] notify:{due}            zset "<participant>|<message>" by next attempt (ms)
-- KEYS[2] notify:{due}:dead       zset message id by dead-letter time (ms)
-- KEYS[3] notify:{due}:deadinfo   hash message id -> {participant_id, type, attempts, ...}
-- ARGV[1] member "<participant>|<message>"  [2] action: add | done | retry | dead | redeliver
-- [3] time (ms): when to attempt (add, retry, redeliver) or when it died (dead)
-- [4] dead-letter details (JSON, for dead)
-- add only schedules a member not scheduled yet; retry only one still scheduled (a lease).
local member, action, at = ARGV[1], ARGV[2], tonumber(ARGV[3])
local msg = string.match(member, '|(.+)$')
if action == 'add' then
  redis.call('ZADD', KEYS[1], 'NX', at, member)
elseif action == 'done' then
  redis.call('ZREM', KEYS[1], member)
elseif action == 'retry' then
  redis.call('ZADD', KEYS[1], 'XX', at, member)
elseif action == 'dead' then
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZADD', KEYS[2], at, msg)
  redis.call('HSET', KEYS[3], msg, ARGV[4])
elseif action == 'redeliver' then
  redis.call('ZREM', KEYS[2], msg)
  redis.call('HDEL', KEYS[3], msg)
  redis.call('ZADD', KEYS[1], at, member)
end
return 1
