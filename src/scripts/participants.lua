-- participants.lua — changes to a participant and its tokens that must be atomic.

-- KEYS: 1 prt:{id}. ARGV: 1 now (Unix ms), then field, value pairs; an empty value deletes
-- the field (null in the API). The daemon sends only fields its descriptor lets a PATCH set.
-- Answers the participant's HGETALL after the change, or false when it does not exist.
register('participant_patch', function(keys, args)
  if redis.call('EXISTS', keys[1]) == 0 then return false end
  for i = 2, #args, 2 do
    if args[i + 1] == '' then
      redis.call('HDEL', keys[1], args[i])
    else
      redis.call('HSET', keys[1], args[i], args[i + 1])
    end
  end
  redis.call('HSET', keys[1], 'updated_at', args[1])
  return redis.call('HGETALL', keys[1])
end)

-- KEYS: 1 tok:{id}. ARGV: 1 the caller's participant id, or '' for an admin (who may revoke
-- any token). Answers the owner's participant id when deleted; false when there is no such
-- token or it belongs to someone else (both 404: a token's existence is nobody else's).
register('token_revoke', function(keys, args)
  local owner = redis.call('HGET', keys[1], 'participant')
  if not owner then return false end
  if args[1] ~= '' and args[1] ~= owner then return false end
  redis.call('DEL', keys[1])
  return owner
end)
