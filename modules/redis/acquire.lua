-- acquire: takes one of a key's or a user's places (s2a_store_ops.acquire).
--
-- KEYS[1]  s2a:busy:<key>
-- ARGV[1]  now (microseconds)
-- ARGV[2]  the places there are (more than 0)
-- ARGV[3]  the end of the place's lease (microseconds)
-- ARGV[4]  the lease (ms), how long the busy set outlives its use
-- ARGV[5]  the place's member, "<instance>:<token>"
--
-- Returns 1 when the place was taken, 0 when all are held.
--@prepend shared/reclaim.lua
if count(KEYS[1], ARGV[1], tonumber(ARGV[2])) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
