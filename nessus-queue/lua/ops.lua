-- Shared by cas.lua and create.lua (concatenated in front of them at build time).
-- ARGV[4] = number of ops; ops start at ARGV[5], 4 slots each: name, key index, a, b.
-- Key indices point into KEYS so every key is declared (Redis Cluster safe; all
-- keys of one pool share the {pool} hash tag).
-- The sequence the last ENQ drew, so ZADDSEQ can file the same task under the
-- same sequence in its principal's queue.
local last_seq = nil

local function ops_ok()
  local n = tonumber(ARGV[4])
  for i = 0, n - 1 do
    local b = 5 + i * 4
    if ARGV[b] == 'CAP' then
      local k = KEYS[tonumber(ARGV[b + 1])]
      if redis.call('ZCOUNT', k, '(' .. ARGV[b + 2], '+inf') >= tonumber(ARGV[b + 3]) then
        return false
      end
    elseif ARGV[b] == 'QUOTA' then
      -- k = the principal's queue in this pool; a = the most it may hold.
      local k = KEYS[tonumber(ARGV[b + 1])]
      if redis.call('ZCARD', k) >= tonumber(ARGV[b + 2]) then
        return false
      end
    end
  end
  return true
end

local function ops_apply()
  local n = tonumber(ARGV[4])
  for i = 0, n - 1 do
    local b = 5 + i * 4
    local op, k, a, c = ARGV[b], KEYS[tonumber(ARGV[b + 1])], ARGV[b + 2], ARGV[b + 3]
    if op == 'ZADD' then
      redis.call('ZADD', k, a, c)
    elseif op == 'ZREM' then
      redis.call('ZREM', k, c)
    elseif op == 'ENQ' then
      -- a = index of the pool's sequence counter key; FIFO order = sequence order.
      local seq = redis.call('INCR', KEYS[tonumber(a)])
      last_seq = seq
      redis.call('ZADD', k, seq, c)
    elseif op == 'ZADDSEQ' then
      redis.call('ZADD', k, last_seq, c)
    elseif op == 'SADD' then
      redis.call('SADD', k, c)
    elseif op == 'SREMEMPTY' then
      -- a = index of the principal's queue; drop the principal from the pool's
      -- set of waiting principals once its queue is empty.
      if redis.call('ZCARD', KEYS[tonumber(a)]) == 0 then
        redis.call('SREM', k, c)
      end
    elseif op == 'LPUSHTRIM' then
      redis.call('LPUSH', k, a)
      redis.call('LTRIM', k, 0, tonumber(c) - 1)
    elseif op == 'SET' then
      redis.call('SET', k, a)
    elseif op == 'DEL' then
      redis.call('DEL', k)
    end
  end
end
