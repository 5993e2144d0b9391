-- One GCRA decision over one or more keys, all or nothing, atomic because
-- Redis runs a script alone.
-- KEYS[i]: key i's theoretical arrival time (TAT), in microseconds.
-- ARGV[2i-1]: the interval one attempt occupies on key i, in microseconds.
-- ARGV[2i]: how far key i's TAT may run ahead of now (max intervals).
-- Returns {1, 0, 0} when allowed (and counted on every key), or
-- {0, retry_after_us, i} when limited, i (1-based) the key with the longest
-- wait; nothing is then written.
-- The same arithmetic as `Limit::decide` and `decide_all` in the
-- application crate.

-- Redis's own clock, so replicas whose clocks drift still agree. Scripts
-- replicate their effects (the default since Redis 5, set here for older
-- ones), so reading the time before a write is allowed.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

local new_tats = {}
local wait, limiting = 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then
    tat = now
  end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  if now < allow_at then
    if allow_at - now > wait then
      wait, limiting = allow_at - now, i
    end
  else
    new_tats[i] = new_tat
  end
end
if limiting > 0 then
  -- Limited: nothing is written, so the attempt costs no capacity.
  return {0, wait, limiting}
end
for i = 1, #KEYS do
  -- A key is worth nothing once its TAT has passed: let Redis drop it then.
  redis.call('SET', KEYS[i], string.format('%d', new_tats[i]), 'PX', math.ceil((new_tats[i] - now) / 1000))
end
return {1, 0, 0}
