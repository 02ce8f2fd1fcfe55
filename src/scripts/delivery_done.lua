-- delivery_done.lua — record the outcome of a webhook attempt in the message's state.
-- KEYS[1] prt:{P}:msgs
-- ARGV[1] message id  [2] outcome: delivered | retry | dead | none  [3] error text  [4] now (ms)
-- Answers the number of attempts made so far.
local st = redis.call('HGET', KEYS[1], ARGV[1])
if not st then return 0 end
local state = cjson.decode(st)
if ARGV[2] ~= 'none' then state.attempts = (state.attempts or 0) + 1 end
state.status = (ARGV[2] == 'retry') and 'pending' or ARGV[2]
if ARGV[3] ~= '' then state.last_error = ARGV[3] end
state.updated_at = tonumber(ARGV[4])
if ARGV[2] == 'dead' then state.dead_at = tonumber(ARGV[4]) end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(state))
return state.attempts
