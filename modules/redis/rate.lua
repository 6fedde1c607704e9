-- rate: counts one request against a limit per clock minute
-- (s2a_store_ops.rate).
--
-- KEYS[1]  s2a:rpm:<key>:<minute>, the counter of that minute
-- ARGV[1]  the requests allowed in a minute (more than 0)
--
-- Returns 1 when the request was counted, 0 when the minute is used up. A
-- counter lasts two minutes from its last count, past its own minute.
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], 120000)
return 1
