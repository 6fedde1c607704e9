-- finish: the end of a request: gives back its places and settles its
-- holds, in one step (s2a_store_ops.finish).
--
-- KEYS[1 .. n]      s2a:busy:<key> of each place
-- KEYS[n + j]       s2a:bal:<key> of each balance the request held from
-- ARGV[1]           n, the places
-- ARGV[2]           how long an unused balance is kept (ms)
-- ARGV[2 + i]       the member of place i, "<instance>:<token>"
-- ARGV[n + 3j]      minus what the request held of balance j
-- ARGV[n + 3j + 1]  minus what it spent of balance j
-- ARGV[n + 3j + 2]  "" for a balance it held from; else one it did not
--                   (the next run of a window that ended while it ran),
--                   which starts at this figure when not known yet
--
-- Returns 1. A balance an operator changed meanwhile (no field b: the next
-- pick brings the database's figure) only has the hold taken off; one that
-- idled away stays gone. What is held never goes below 0.
local n = tonumber(ARGV[1])
for i = 1, n do redis.call('ZREM', KEYS[i], ARGV[2 + i]) end
for j = 1, #KEYS - n do
  local b = KEYS[n + j]
  local held, spent, known = ARGV[n + 3 * j], ARGV[n + 3 * j + 1], ARGV[n + 3 * j + 2]
  if known ~= '' then
    if redis.call('HEXISTS', b, 'b') == 0 then redis.call('HSET', b, 'b', known) end
    redis.call('HINCRBY', b, 'b', spent)
    redis.call('PEXPIRE', b, ARGV[2])
  elseif redis.call('EXISTS', b) == 1 then
    if redis.call('HINCRBY', b, 'h', held) < 0 then redis.call('HSET', b, 'h', 0) end
    if redis.call('HEXISTS', b, 'b') == 1 then
      redis.call('HINCRBY', b, 'b', spent)
    end
  end
end
return 1
