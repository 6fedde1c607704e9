-- get: an account's state (s2a_store_ops.get).
--
-- KEYS[1]  s2a:acct:<key>
-- KEYS[2]  s2a:busy:<key>
-- ARGV[1]  now (microseconds)
--
-- Returns seven strings of integers, '0' for a field never set: last used,
-- rate limited until, overloaded until, error (1 or 0), window status,
-- window reset, and the places whose lease has not ended.
local h = redis.call('HMGET', KEYS[1], 'used', 'rl', 'ov', 'err', 'ws', 'wr')
local out = {}
for i = 1, 6 do out[i] = h[i] or '0' end
out[7] = tostring(redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf'))
return out
