-- Reserves a topic's entry in the topic index within the topic limit,
-- atomically (concurrent creations through any nodes cannot pass it).
-- KEYS 1 the index, ARGV 1 the topic, 2 the most topics. Returns {1}
-- when reserved, {2} when already listed, {0, count} at the limit.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {2}
end
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[2]) then
  return {0, count}
end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return {1}
