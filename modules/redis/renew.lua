-- renew: extends a place's lease (s2a_store_ops.renew).
--
-- KEYS[1]  s2a:busy:<key>
-- ARGV[1]  the new end of the lease (microseconds)
-- ARGV[2]  the lease (ms), how long the busy set outlives its use
-- ARGV[3]  the place's member, "<instance>:<token>"
--
-- Returns 1, also when the place is gone (taken back, or given back): a
-- place is never taken anew by renewing it.
if redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[1], ARGV[3]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
