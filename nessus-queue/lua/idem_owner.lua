-- Caller-scoped idempotency: which pool owns a scope key. One key, its own slot.
-- KEYS[1] owner key. ARGV[1] owner record to set; ARGV[2] TTL in ms;
-- ARGV[3] the record a caller saw and may replace ('' = only set when absent).
-- Returns {1} when ARGV[1] is now the owner, else {0, current owner record}.
local cur = redis.call('GET', KEYS[1])
if cur == false or (ARGV[3] ~= '' and cur == ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
return {0, cur}
