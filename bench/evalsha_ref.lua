-- evalsha_ref.lua — the one script of reference (b), bench/evhttp_evalsha.c: one HSET of one
-- field, and a return. KEYS[1] the hash, ARGV[1] the field, ARGV[2] the value (the request's
-- body as the server re-encoded it). Answers HSET's count of new fields (0 or 1).
return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
