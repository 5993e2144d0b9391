-- Completes a denylist rebuild, atomically: writes every entry and bumps the
-- generation marker, but only if the rebuild's own key still exists. That
-- key was set before storage was read; if it is gone, Redis lost data since
-- (a flush, a restart), the entries read may miss what was lost, and nothing
-- is written: the caller starts over.
--
-- KEYS[1]    the rebuild's key ({prefix}denylist:rebuild:{nonce})
-- KEYS[2]    the generation marker ({prefix}denylist:generation)
-- KEYS[3..]  the entries' keys
-- ARGV[i]    the time to live in milliseconds of KEYS[i + 2]
--
-- Returns the new generation, or nil when the rebuild's key was gone.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], 1, 'PX', ARGV[i - 2])
end
local generation = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
return generation
