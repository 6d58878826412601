-- Schedules: compare-and-set of one schedule with its due entry. Every schedule key
-- carries the {sched} hash tag, so the script touches one slot (Cluster safe).
-- KEYS[1] docs hash, KEYS[2] versions hash, KEYS[3] due zset (score: next slot ms),
-- KEYS[4] creation order zset (lexicographic members 'created_key').
-- ARGV[1] id, ARGV[2] expected version ('' = insert only if absent),
-- ARGV[3] new version, ARGV[4] document ('' = delete), ARGV[5] due score ('' = none),
-- ARGV[6] creation order member.
-- Returns 1 when written, 0 on a lost race.
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[2] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[6])
  return 1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
end
redis.call('ZADD', KEYS[4], 0, ARGV[6])
return 1
