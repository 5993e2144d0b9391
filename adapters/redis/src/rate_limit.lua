-- One GCRA decision, atomic because Redis runs a script alone.
-- KEYS[1]: the key's theoretical arrival time (TAT), in microseconds.
-- ARGV[1]: the interval one attempt occupies, in microseconds.
-- ARGV[2]: how far the TAT may run ahead of now (max intervals).
-- Returns {1, 0} when allowed, {0, retry_after_us} when limited.
-- The same arithmetic as `Limit::decide` in the application crate.

-- Redis's own clock, so replicas whose clocks drift still agree. Scripts
-- replicate their effects (the default since Redis 5, set here for older
-- ones), so reading the time before a write is allowed.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  -- Limited: nothing is written, so the attempt costs no capacity.
  return {0, allow_at - now}
end
-- The key is worth nothing once its TAT has passed: let Redis drop it then.
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0}
