-- delivery_load.lua — what a webhook attempt needs, in one round trip.
-- KEYS[1] prt:{P}  [2] prt:{P}:msgs  [3] prt:{P}:inbox
-- ARGV[1] message id
-- Answers {url, secret, state, item = [fields of the inbox entry]} or {} when the message
-- or its participant is gone.
local st = redis.call('HGET', KEYS[2], ARGV[1])
if not st then return cjson.encode({}) end
local state = cjson.decode(st)
local url = redis.call('HGET', KEYS[1], 'webhook_url')
local secret = redis.call('HGET', KEYS[1], 'webhook_secret')
local entries = redis.call('XRANGE', KEYS[3], state.entry, state.entry)
local item = entries[1] and entries[1][2] or nil
return cjson.encode({ url = url or nil, secret = secret or nil, state = state, item = item })
