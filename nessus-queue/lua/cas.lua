-- Compare-and-set of one task record plus its index updates, atomically.
-- KEYS[1] task hash; ARGV[1] expected version; ARGV[2] new version; ARGV[3] new doc
-- ('' deletes the task). Returns 1 applied, 0 version mismatch, -1 capacity full.
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then
  return 0
end
if not ops_ok() then
  return -1
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'v', ARGV[2])
end
ops_apply()
return 1
