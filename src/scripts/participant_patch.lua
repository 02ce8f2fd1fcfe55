-- participant_patch.lua — change a participant's editable fields, atomically.
-- KEYS[1]  the participant hash (prt:{id})
-- ARGV[1]  now, Unix ms (updated_at)
-- ARGV[2..] field, value pairs; an empty value deletes the field (null in the API)
-- Returns the participant's HGETALL after the change, or false when it does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
for i = 2, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if field ~= 'name' and field ~= 'webhook_url' then
    return redis.error_reply('ERR field not editable: ' .. field)
  end
  if value == '' then
    redis.call('HDEL', KEYS[1], field)
  else
    redis.call('HSET', KEYS[1], field, value)
  end
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
return redis.call('HGETALL', KEYS[1])
