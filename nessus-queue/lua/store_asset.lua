-- Findings over time: compare-and-set of one asset's document, its aliases, and a few
-- assets of the scope aged out. Every key carries the scope's `{f:…}` hash tag.
-- KEYS: 1 docs hash (asset id -> "<version>\n<json>"), 2 stored zset (asset id by
-- stored ms), 3 alias hash (alias -> asset id).
-- ARGV: 1 asset id, 2 expected version (0: absent), 3 json, 4 now ms, 5 horizon ms,
-- 6 age-out batch, 7.. aliases.
local function version_of(v)
  if not v then return 0 end
  return tonumber(string.match(v, '^(%d+)\n')) or 0
end
local cur = version_of(redis.call('HGET', KEYS[1], ARGV[1]))
if cur ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], tostring(cur + 1) .. '\n' .. ARGV[3])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]), ARGV[1])
for i = 7, #ARGV do redis.call('HSET', KEYS[3], ARGV[i], ARGV[1]) end
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5], 'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(old) do
  local d = redis.call('HGET', KEYS[1], id)
  if d then
    local nl = string.find(d, '\n', 1, true)
    local ok, t = pcall(cjson.decode, string.sub(d, (nl or 0) + 1))
    if ok and type(t) == 'table' and type(t.aliases) == 'table' then
      for _, a in ipairs(t.aliases) do
        if redis.call('HGET', KEYS[3], a) == id then redis.call('HDEL', KEYS[3], a) end
      end
    end
  end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return 1
