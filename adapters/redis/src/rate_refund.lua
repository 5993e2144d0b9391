-- Gives one counted attempt back to a key (a success, where only failures
-- count), atomic because Redis runs a script alone.
-- KEYS[1]: the key's theoretical arrival time (TAT), in microseconds.
-- ARGV[1]: the interval one attempt occupies, in microseconds.
-- The same arithmetic as `Limit::refund` in the application crate.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil then
  return 0
end
tat = tat - tonumber(ARGV[1])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
end
return 1
