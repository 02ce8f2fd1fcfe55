-- msg_create.lua — store one message in a participant's inbox, once.
-- KEYS[1] prt:{P}          the participant (for its webhook_url)
-- KEYS[2] prt:{P}:msgs     message id -> delivery state (JSON)
-- KEYS[3] prt:{P}:inbox    stream of inbox items
-- ARGV[1] message id  [2] timestamp (Unix s)  [3] kid  [4] v1a signature  [5] type  [6] body
-- [7] inbox length kept (approximate)
-- Answers {created = bool, deliver = bool}: deliver is true while a webhook delivery of this
-- message is still owed (so a second run after a crash schedules it again, and only then).
local st = redis.call('HGET', KEYS[2], ARGV[1])
if st then
  return cjson.encode({ created = false, deliver = cjson.decode(st).status == 'pending' })
end
local entry = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'id', ARGV[1],
  'ts', ARGV[2], 'kid', ARGV[3], 'sig', ARGV[4], 'type', ARGV[5], 'body', ARGV[6])
local url = redis.call('HGET', KEYS[1], 'webhook_url')
local status = url and 'pending' or 'none'
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({ entry = entry, type = ARGV[5],
  ts = tonumber(ARGV[2]), status = status, attempts = 0 }))
return cjson.encode({ created = true, deliver = url ~= false and url ~= nil })
