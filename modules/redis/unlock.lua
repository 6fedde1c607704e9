-- unlock: gives a lock back, when its holder asks (s2a_store_ops.unlock).
--
-- KEYS[1]  s2a:lock:<name>
-- ARGV[1]  the holder, the instance that took it
--
-- Returns 1; a lock another holder took since (this one's time ran out)
-- stays.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
