-- Idempotency reservation + task creation + enqueue, atomically.
-- KEYS[1] task hash; KEYS[2] idempotency key (ignored when ARGV[1] is '').
-- ARGV[1] idempotency record; ARGV[2] its TTL in ms; ARGV[3] task doc.
-- Returns {1} created, {0, existing record} when the key is already reserved, or
-- {2} when the principal's quota (a QUOTA op) is full.
if ARGV[1] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then
    return {0, existing}
  end
end
-- After the idempotency lookup: a replay never counts against the quota.
if not ops_ok() then
  return {2}
end
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('task id collision')
end
redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'v', '1')
ops_apply()
return {1}
