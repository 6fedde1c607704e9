-- reclaim: counting the places of a busy set, and taking back those nobody
-- holds any more. Lua has no include and Redis runs every script on its own,
-- so the build (modules/embed.py) puts this file before each script that has
-- the line `--@prepend shared/reclaim.lua`; such a script may then call
-- count().
--
-- A place is a member "<instance>:<token>" of a busy set (s2a:busy:<key>),
-- scored by the end of its lease; s2a:alive:<instance> exists while the
-- process that <instance> names lives (its heartbeat renews it).
--
-- count(busy, now, limit) returns the places held in `busy`. Only when they
-- reach `limit` are those whose lease ended by `now` dropped, then those of
-- processes whose heartbeat stopped (a crashed child), and the rest counted
-- again: a set with room costs one ZCARD.
local function owner(m) return 's2a:alive:' .. string.match(m, '^[^:]*') end
local function count(busy, now, limit)
  local n = redis.call('ZCARD', busy)
  if n < limit then return n end
  redis.call('ZREMRANGEBYSCORE', busy, '-inf', now)
  for _, m in ipairs(redis.call('ZRANGE', busy, 0, -1)) do
    if redis.call('EXISTS', owner(m)) == 0 then redis.call('ZREM', busy, m) end
  end
  return redis.call('ZCARD', busy)
end
