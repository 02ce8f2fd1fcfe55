-- msg_redeliver.lua — start a dead-lettered message's delivery again from the first delay.
-- KEYS[1] prt:{P}:msgs
-- ARGV[1] message id  [2] now (ms)
-- Answers the message state (JSON) before the change, or false when there is no such message.
local st = redis.call('HGET', KEYS[1], ARGV[1])
if not st then return false end
local state = cjson.decode(st)
local before = st
state.status = 'pending'
state.attempts = 0
state.dead_at = nil
state.updated_at = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(state))
return before
