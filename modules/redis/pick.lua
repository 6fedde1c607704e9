-- pick: chooses the account that serves a request and takes a place on it,
-- in one step, by the pick policy of docs/store.md (s2a_store_ops.pick).
--
-- KEYS[1]          s2a:bind:<session>, the account a conversation is bound to
-- KEYS[2i]         s2a:acct:<key> of candidate i (1 to n)
-- KEYS[2i + 1]     s2a:busy:<key> of candidate i
-- KEYS[2n + 2]     s2a:bal:<user>, the user's balance; named even when the
--                  request holds none, so that the count of keys is fixed
-- ARGV[1]          now (microseconds)
-- ARGV[2]          how long the binding lasts (ms); 0: no conversation
-- ARGV[3]          '1': a full bound account makes the request wait
-- ARGV[4]          the end of the place's lease (microseconds)
-- ARGV[5]          the lease (ms), how long the busy set outlives its use
-- ARGV[6]          the place's member, "<instance>:<token>"
-- ARGV[7]          the balance the database knows; '' for no balance hold
-- ARGV[8]          how long an unused balance is kept (ms)
-- ARGV[8 + 4(i - 1) + 1 .. 4]  of candidate i: its state key, priority,
--                  concurrency (0: no limit) and the hold it would take
--
-- Returns the picked candidate's index counted from 0 (its place taken, its
-- last use set to now, the conversation bound to it, its hold added to the
-- balance's), or nothing taken and -1 (none can serve: S2A_PICK_NONE), -2
-- (those that could are full, or the bound one is and ARGV[3] is '1':
-- S2A_PICK_BUSY) or -3 (the balance is spent: S2A_PICK_BROKE).
--
-- The balance hash holds b, the balance (set from ARGV[7] when missing), and
-- h, what requests in flight hold of it; it is checked before anything is
-- picked. An account without a concurrency limit counts as unloaded, so its
-- places are not counted; taking one of them drops those whose lease ended.
--@prepend shared/reclaim.lua
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local n = (#ARGV - 8) / 4
local function arg(i, k) return ARGV[8 + (i - 1) * 4 + k] end
local bal = ARGV[7] ~= '' and KEYS[2 * n + 2] or nil
if bal then
  local v = redis.call('HMGET', bal, 'b', 'h')
  if not v[1] then
    redis.call('HSET', bal, 'b', ARGV[7])
    v[1] = ARGV[7]
  end
  redis.call('PEXPIRE', bal, ARGV[8])
  if tonumber(v[1]) - tonumber(v[2] or '0') <= 0 then return -3 end
end
local function state(i)
  local h = redis.call('HMGET', KEYS[2 * i], 'err', 'rl', 'ov', 'used')
  local resting = h[1] == '1' or tonumber(h[2] or '0') > now or tonumber(h[3] or '0') > now
  return resting, tonumber(h[4] or '0')
end
local function load(i, conc)
  if conc == 0 then return 0 end
  return count(KEYS[2 * i + 1], ARGV[1], conc)
end
local function take(i)
  if tonumber(arg(i, 3)) == 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2 * i + 1], '-inf', ARGV[1])
  end
  redis.call('HSET', KEYS[2 * i], 'used', ARGV[1])
  redis.call('ZADD', KEYS[2 * i + 1], ARGV[4], ARGV[6])
  redis.call('PEXPIRE', KEYS[2 * i + 1], ARGV[5])
  if ttl > 0 then redis.call('SET', KEYS[1], arg(i, 1), 'PX', ttl) end
  if bal then redis.call('HINCRBY', bal, 'h', arg(i, 4)) end
  return i - 1
end
if ttl > 0 then
  local bound = redis.call('GET', KEYS[1])
  for i = 1, bound and n or 0 do
    if arg(i, 1) == bound then
      if not state(i) then
        local conc = tonumber(arg(i, 3))
        if load(i, conc) < conc or conc == 0 then return take(i) end
        if ARGV[3] == '1' then return -2 end
      end
      break
    end
  end
end
local best, bprio, bconc, bload, bused
local busy = false
for i = 1, n do
  local resting, used = state(i)
  if not resting then
    local prio, conc = tonumber(arg(i, 2)), tonumber(arg(i, 3))
    local inflight = load(i, conc)
    if conc > 0 and inflight >= conc then
      busy = true
    else
      local better = best == nil
      if not better then
        if prio ~= bprio then
          better = prio < bprio
        else
          local la = conc > 0 and inflight * (bconc > 0 and bconc or 1) or 0
          local lb = bconc > 0 and bload * (conc > 0 and conc or 1) or 0
          if la ~= lb then better = la < lb else better = used < bused end
        end
      end
      if better then best, bprio, bconc, bload, bused = i, prio, conc, inflight, used end
    end
  end
end
if best then return take(best) end
if busy then return -2 end
return -1
