-- window: records an account's 5-hour window as the upstream told it
-- (s2a_store_ops.set_window).
--
-- KEYS[1]  s2a:acct:<key>
-- ARGV[1]  the window's status (S2A_WINDOW_*)
-- ARGV[2]  when it resets (microseconds; 0 unknown)
-- ARGV[3]  now (microseconds)
-- ARGV[4]  the status of a rejected window (S2A_WINDOW_REJECTED)
--
-- Returns 1. A rejected window rests the account (field rl) until it
-- resets, unless the account already rests longer.
redis.call('HSET', KEYS[1], 'ws', ARGV[1], 'wr', ARGV[2])
local reset = tonumber(ARGV[2])
if ARGV[1] == ARGV[4] and reset > tonumber(ARGV[3]) and
   reset > tonumber(redis.call('HGET', KEYS[1], 'rl') or '0') then
  redis.call('HSET', KEYS[1], 'rl', ARGV[2])
end
return 1
