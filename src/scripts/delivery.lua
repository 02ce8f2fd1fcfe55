-- delivery.lua — webhook deliveries (src/webhook.c): the schedule, one slot of its own
-- ({due}), and what attempts read and record in a participant's slot. Message states are
-- laid out as messages.lua says (M_* positions, state_of). Every function takes many
-- messages at once: webhook.c claims, loads and records in batches.

-- One change to the schedule (schedule's and delivery_settle's keys and actions).
-- add only schedules a member not scheduled yet; retry only one still scheduled (a lease).
local function schedule_change(keys, action, at, info, member)
  if action == 'add' then
    redis.call('ZADD', keys[1], 'NX', at, member)
  elseif action == 'done' then
    redis.call('ZREM', keys[1], member)
  elseif action == 'retry' then
    redis.call('ZADD', keys[1], 'XX', at, member)
  elseif action == 'dead' then
    redis.call('ZREM', keys[1], member)
    local msg = string.match(member, '|(.+)$')
    redis.call('ZADD', keys[2], at, msg)
    redis.call('HSET', keys[3], msg, info)
  elseif action == 'redeliver' then
    local msg = string.match(member, '|(.+)$')
    redis.call('ZREM', keys[2], msg)
    redis.call('HDEL', keys[3], msg)
    redis.call('ZADD', keys[1], at, member)
  end
end

-- The webhook delivery schedule.
-- KEYS: 1 notify:{due} (zset "<participant>|<message>" by next attempt, ms), 2
--   notify:{due}:dead (zset message id by dead time), 3 notify:{due}:deadinfo (hash id ->
--   details JSON).
-- ARGV: 1 action: add | done | retry | dead | redeliver, 2 time (ms): when to attempt (add,
--   retry, redeliver) or when it died (dead), 3 dead-letter details (dead), 4.. members.
register('schedule', function(keys, args)
  local action, at = args[1], tonumber(args[2])
  for i = 4, #args do
    schedule_change(keys, action, at, args[3], args[i])
  end
  return 1
end)

-- The outcomes of many attempts, each with its own action and time (the attempts' states
-- are delivery_done's, in each participant's slot). KEYS: as schedule's.
-- ARGV: groups of 4: action (done | retry | dead), time (ms), member, dead-letter details
-- ('' unless dead). Answers the number of groups.
register('delivery_settle', function(keys, args)
  for i = 1, #args - 3, 4 do
    schedule_change(keys, args[i], tonumber(args[i + 1]), args[i + 3], args[i + 2])
  end
  return math.floor(#args / 4)
end)

-- Takes due deliveries on a lease: each is pushed to now + lease, so that if this daemon
-- dies another takes it then. KEYS: 1 notify:{due}. ARGV: 1 now (ms), 2 lease (ms), 3 most.
-- Answers the members taken, oldest due first.
register('delivery_claim', function(keys, args)
  local due = redis.call('ZRANGE', keys[1], '-inf', args[1], 'BYSCORE', 'LIMIT', 0, args[3])
  local until_ms = tonumber(args[1]) + tonumber(args[2])
  local pairs_ = {}
  for i, m in ipairs(due) do
    pairs_[#pairs_ + 1] = until_ms
    pairs_[#pairs_ + 1] = m
    if #pairs_ == 512 or i == #due then      -- unpack stays far below Lua's stack limit
      redis.call('ZADD', keys[1], 'XX', unpack(pairs_))
      pairs_ = {}
    end
  end
  return due
end)

-- What the attempts of many messages of one participant need, in one round trip.
-- KEYS: 1 prt:{P}, 2 prt:{P}:msgs, 3 prt:{P}:inbox. ARGV: message ids.
-- Answers {url|false, secret|false, then for each id, in order: status|false (false: no
-- such message), attempts, Unix s, type, body|false (false: no longer in the inbox)}.
register('delivery_load', function(keys, args)
  local p = redis.call('HMGET', keys[1], 'webhook_url', 'webhook_secret')
  local out = { p[1], p[2] }
  for i = 1, #args do
    local v = redis.call('HGET', keys[2], args[i])
    local n = #out
    if v then
      local s = state_of(v)
      local body = false
      local entries = redis.call('XRANGE', keys[3], s[M_ENTRY], s[M_ENTRY])
      if entries[1] then
        local f = entries[1][2]
        for j = 1, #f, 2 do
          if f[j] == 'body' then body = f[j + 1] end
        end
      end
      out[n + 1], out[n + 2], out[n + 3] = s[M_STATUS], s[M_ATTEMPTS] or 0, s[M_TS] or 0
      out[n + 4], out[n + 5] = s[M_TYPE] or '', body
    else
      out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = false, 0, 0, '', false
    end
  end
  return out
end, { 'no-writes' })

-- Records the outcomes of attempts at one participant's messages. KEYS: 1 prt:{P}:msgs.
-- ARGV: 1 now (ms), then groups of 3: message id, outcome (delivered | retry | dead |
-- none | gone: dead, its message having left the inbox, so its state goes too), error
-- text ('' for none). Answers the number of states recorded (a message gone meanwhile is
-- skipped).
register('delivery_done', function(keys, args)
  local now, recorded = tonumber(args[1]), 0
  for i = 2, #args - 2, 3 do
    local id, outcome, err = args[i], args[i + 1], args[i + 2]
    local v = redis.call('HGET', keys[1], id)
    if v and outcome == 'gone' then
      redis.call('HDEL', keys[1], id)
      recorded = recorded + 1
    elseif v then
      local s = state_of(v)
      if outcome ~= 'none' then s[M_ATTEMPTS] = (s[M_ATTEMPTS] or 0) + 1 end
      s[M_STATUS] = (outcome == 'retry') and 'pending' or outcome
      if err ~= '' then s[M_ERROR] = err end
      s[M_UPDATED] = now
      if outcome == 'dead' then s[M_DEAD] = now end
      redis.call('HSET', keys[1], id, cmsgpack.pack(s))
      recorded = recorded + 1
    end
  end
  return recorded
end)

-- Drops dead letters older than a cutoff, at most `most` per call (the sweeper calls it).
-- KEYS: 1 notify:{due}:dead, 2 notify:{due}:deadinfo. ARGV: 1 cutoff (ms), 2 most.
-- Answers the number dropped. (Their messages' states go with the inbox: messages.lua.)
register('dead_prune', function(keys, args)
  local old = redis.call('ZRANGE', keys[1], '-inf', args[1], 'BYSCORE', 'LIMIT', 0, args[2])
  if #old > 0 then
    redis.call('ZREM', keys[1], unpack(old))
    redis.call('HDEL', keys[2], unpack(old))
  end
  return #old
end)
