-- token_revoke.lua — delete a token if the caller may.
-- KEYS[1]  the token hash (tok:{id})
-- ARGV[1]  the caller's participant id, or '' for an admin (who may revoke any token)
-- Returns the owner's participant id when deleted, false when there is no such token or it
-- belongs to someone else (both answer 404: a token's existence is nobody else's business).
local owner = redis.call('HGET', KEYS[1], 'participant')
if not owner then
  return false
end
if ARGV[1] ~= '' and ARGV[1] ~= owner then
  return false
end
redis.call('DEL', KEYS[1])
return owner
