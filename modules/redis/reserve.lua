-- reserve: holds part of a balance outside a pick (s2a_store_ops.reserve),
-- as pick.lua does for the user's balance: let in while the balance minus
-- what requests in flight hold is above 0, then hold the amount.
--
-- KEYS[1]   s2a:bal:<state key>
-- ARGV[1]   the balance the database knows (set when the hash has none)
-- ARGV[2]   the amount to hold
-- ARGV[3]   how long an unused balance is kept (ms)
--
-- Returns 1 held, 0 refused.
local v = redis.call('HMGET', KEYS[1], 'b', 'h')
if not v[1] then
  redis.call('HSET', KEYS[1], 'b', ARGV[1])
  v[1] = ARGV[1]
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if tonumber(v[1]) - tonumber(v[2] or '0') <= 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'h', ARGV[2])
return 1
