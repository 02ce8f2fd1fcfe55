-- messages.lua — the messages of the outbox (src/notify.c): a participant's inbox and the
-- state of each message, which share the participant's hash tag. Their webhook deliveries
-- are delivery.lua's.
--
-- A message's state (prt:{P}:msgs, MessagePack): {inbox entry id, status, attempts, Unix s,
-- type, last error, updated at (ms), dead at (ms)}; status: 'pending' (a webhook delivery
-- is owed), 'none' (no webhook), 'delivered', 'dead'.

local M_ENTRY, M_STATUS, M_ATTEMPTS, M_TS, M_TYPE, M_ERROR, M_UPDATED, M_DEAD = 1, 2, 3, 4, 5, 6, 7, 8

local function state_of(v)
  local s = cmsgpack.unpack(v)
  for i = 1, M_DEAD do if s[i] == nil then s[i] = false end end
  return s
end

-- Removes up to n of a participant's oldest messages: those older than cutoff (ms), and
-- those beyond the most kept. Each goes with its state, unless a webhook delivery of it is
-- still owed: its state then stays, without a body, and the delivery is dead-lettered when
-- it comes due (src/webhook.c), never silently dropped.
local function prune_inbox(keys, most, cutoff, n)
  local excess = redis.call('XLEN', keys[3]) - most
  local old = redis.call('XRANGE', keys[3], '-', '(' .. cutoff, 'COUNT', n)
  if excess > #old then
    old = redis.call('XRANGE', keys[3], '-', '+', 'COUNT', math.min(excess, n))
  end
  for _, e in ipairs(old) do
    redis.call('XDEL', keys[3], e[1])
    local f = e[2]
    for j = 1, #f, 2 do
      if f[j] == 'id' then
        local st = redis.call('HGET', keys[2], f[j + 1])
        if st and state_of(st)[M_STATUS] ~= 'pending' then redis.call('HDEL', keys[2], f[j + 1]) end
      end
    end
  end
end

-- Stores a batch of messages for one participant, each once, and prunes as many old ones.
-- KEYS: 1 prt:{P}, 2 prt:{P}:msgs, 3 prt:{P}:inbox.
-- ARGV: 1 the most messages kept, 2 the oldest time kept (Unix ms), then id, timestamp
-- (Unix s), type, body per message.
-- Answers the ids whose webhook delivery is still owed (so a second run after a crash
-- schedules them again, and only them), then the number of messages created.
register('msg_create', function(keys, args)
  local url = redis.call('HGET', keys[1], 'webhook_url')
  local owed, created = {}, 0
  for i = 3, #args, 4 do
    local id, ts, mtype, body = args[i], args[i + 1], args[i + 2], args[i + 3]
    local st = redis.call('HGET', keys[2], id)
    if st then
      if state_of(st)[M_STATUS] == 'pending' then owed[#owed + 1] = id end
    else
      local entry = redis.call('XADD', keys[3], '*', 'id', id, 'ts', ts, 'type', mtype,
        'body', body)
      local status = url and 'pending' or 'none'
      redis.call('HSET', keys[2], id, cmsgpack.pack({ entry, status, 0, tonumber(ts), mtype,
        false, false, false }))
      if url then owed[#owed + 1] = id end
      created = created + 1
    end
  end
  prune_inbox(keys, tonumber(args[1]), args[2], created + 1)
  owed[#owed + 1] = created
  return owed
end)

-- Starts a dead-lettered message's delivery again from the first delay.
-- KEYS: 1 prt:{P}:msgs. ARGV: 1 message id, 2 now (ms).
-- Answers 1, or false when there is no such message.
register('msg_redeliver', function(keys, args)
  local v = redis.call('HGET', keys[1], args[1])
  if not v then return false end
  local s = state_of(v)
  s[M_STATUS], s[M_ATTEMPTS], s[M_DEAD], s[M_UPDATED] = 'pending', 0, false, tonumber(args[2])
  redis.call('HSET', keys[1], args[1], cmsgpack.pack(s))
  return 1
end)

-- The inbox entry id of a message (GET /v1/notifications?after=<message id>).
-- KEYS: 1 prt:{P}:msgs. ARGV: 1 message id. Answers the entry id, or false.
register('msg_entry', function(keys, args)
  local v = redis.call('HGET', keys[1], args[1])
  return v and state_of(v)[M_ENTRY] or false
end, { 'no-writes' })
