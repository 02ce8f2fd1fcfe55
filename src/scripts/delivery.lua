-- delivery.lua — webhook deliveries (src/webhook.c): the schedule, one slot of its own
-- ({due}), and what each attempt reads and records in the participant's slot. Message
-- states are laid out as messages.lua says (M_* positions, state_of).

-- The webhook delivery schedule.
-- KEYS: 1 notify:{due} (zset "<participant>|<message>" by next attempt, ms), 2
--   notify:{due}:dead (zset message id by dead time), 3 notify:{due}:deadinfo (hash id ->
--   details JSON).
-- ARGV: 1 action: add | done | retry | dead | redeliver, 2 time (ms): when to attempt (add,
--   retry, redeliver) or when it died (dead), 3 dead-letter details (dead), 4.. members.
-- add only schedules a member not scheduled yet; retry only one still scheduled (a lease).
register('schedule', function(keys, args)
  local action, at = args[1], tonumber(args[2])
  for i = 4, #args do
    local member = args[i]
    local msg = string.match(member, '|(.+)$')
    if action == 'add' then
      redis.call('ZADD', keys[1], 'NX', at, member)
    elseif action == 'done' then
      redis.call('ZREM', keys[1], member)
    elseif action == 'retry' then
      redis.call('ZADD', keys[1], 'XX', at, member)
    elseif action == 'dead' then
      redis.call('ZREM', keys[1], member)
      redis.call('ZADD', keys[2], at, msg)
      redis.call('HSET', keys[3], msg, args[3])
    elseif action == 'redeliver' then
      redis.call('ZREM', keys[2], msg)
      redis.call('HDEL', keys[3], msg)
      redis.call('ZADD', keys[1], at, member)
    end
  end
  return 1
end)

-- Takes due deliveries on a lease: each is pushed to now + lease, so that if this daemon
-- dies another takes it then. KEYS: 1 notify:{due}. ARGV: 1 now (ms), 2 lease (ms), 3 most.
register('delivery_claim', function(keys, args)
  local due = redis.call('ZRANGE', keys[1], '-inf', args[1], 'BYSCORE', 'LIMIT', 0, args[3])
  local until_ms = tonumber(args[1]) + tonumber(args[2])
  for _, m in ipairs(due) do
    redis.call('ZADD', keys[1], 'XX', until_ms, m)
  end
  return due
end)

-- What a webhook attempt needs, in one round trip.
-- KEYS: 1 prt:{P}, 2 prt:{P}:msgs, 3 prt:{P}:inbox. ARGV: 1 message id.
-- Answers {status, attempts, Unix s, type, url|false, secret|false, body|false}, or {} when
-- the message is gone.
register('delivery_load', function(keys, args)
  local v = redis.call('HGET', keys[2], args[1])
  if not v then return {} end
  local s = state_of(v)
  local url = redis.call('HGET', keys[1], 'webhook_url')
  local secret = redis.call('HGET', keys[1], 'webhook_secret')
  local body = false
  local entries = redis.call('XRANGE', keys[3], s[M_ENTRY], s[M_ENTRY])
  if entries[1] then
    local f = entries[1][2]
    for i = 1, #f, 2 do
      if f[i] == 'body' then body = f[i + 1] end
    end
  end
  return { s[M_STATUS], s[M_ATTEMPTS], s[M_TS], s[M_TYPE] or '', url or false, secret or false,
           body }
end, { 'no-writes' })

-- Records the outcome of an attempt. KEYS: 1 prt:{P}:msgs.
-- ARGV: 1 message id, 2 outcome: delivered | retry | dead | none, 3 error text, 4 now (ms).
-- Answers the number of attempts made so far.
register('delivery_done', function(keys, args)
  local v = redis.call('HGET', keys[1], args[1])
  if not v then return 0 end
  local s = state_of(v)
  if args[2] ~= 'none' then s[M_ATTEMPTS] = (s[M_ATTEMPTS] or 0) + 1 end
  s[M_STATUS] = (args[2] == 'retry') and 'pending' or args[2]
  if args[3] ~= '' then s[M_ERROR] = args[3] end
  s[M_UPDATED] = tonumber(args[4])
  if args[2] == 'dead' then s[M_DEAD] = tonumber(args[4]) end
  redis.call('HSET', keys[1], args[1], cmsgpack.pack(s))
  return s[M_ATTEMPTS]
end)

