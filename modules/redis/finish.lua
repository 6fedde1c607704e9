-- finish: the end of a request: gives back its places and settles its
-- holds, in one step (s2a_store_ops.finish).
--
-- KEYS[1 .. n]      s2a:busy:<key> of each place
-- KEYS[n + j]       s2a:bal:<key> of each balance the request held from
-- ARGV[1]           n, the places
-- ARGV[1 + i]       the member of place i, "<instance>:<token>"
-- ARGV[n + 2j]      minus what the request held of balance j
-- ARGV[n + 2j + 1]  minus what it spent of balance j
--
-- Returns 1. A balance an operator changed meanwhile (no field b: the next
-- pick brings the database's figure) only has the hold taken off; one that
-- idled away stays gone. What is held never goes below 0.
local n = tonumber(ARGV[1])
for i = 1, n do redis.call('ZREM', KEYS[i], ARGV[1 + i]) end
for j = 1, #KEYS - n do
  local b = KEYS[n + j]
  if redis.call('EXISTS', b) == 1 then
    if redis.call('HINCRBY', b, 'h', ARGV[n + 2 * j]) < 0 then redis.call('HSET', b, 'h', 0) end
    if redis.call('HEXISTS', b, 'b') == 1 then
      redis.call('HINCRBY', b, 'b', ARGV[n + 2 * j + 1])
    end
  end
end
return 1
