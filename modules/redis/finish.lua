-- finish: the end of a request: gives back its places and settles its
-- balance hold, in one step (s2a_store_ops.finish).
--
-- KEYS[1 .. n]  s2a:busy:<key> of each place
-- KEYS[n + 1]   s2a:bal:<user>, when the request held some of a balance
-- ARGV[1]       n, the places
-- ARGV[1 + i]   the member of place i, "<instance>:<token>"
-- ARGV[n + 2]   minus what the request held (with the balance)
-- ARGV[n + 3]   minus what it cost (with the balance)
--
-- Returns 1. A balance an operator changed meanwhile (no field b: the next
-- pick brings the database's figure) only has the hold taken off; one that
-- idled away stays gone. What is held never goes below 0.
local n = tonumber(ARGV[1])
for i = 1, n do redis.call('ZREM', KEYS[i], ARGV[1 + i]) end
local b = KEYS[n + 1]
if b and redis.call('EXISTS', b) == 1 then
  if redis.call('HINCRBY', b, 'h', ARGV[n + 2]) < 0 then redis.call('HSET', b, 'h', 0) end
  if redis.call('HEXISTS', b, 'b') == 1 then redis.call('HINCRBY', b, 'b', ARGV[n + 3]) end
end
return 1
