-- ARGV 7 the change channel, 8 the topic's name, 9 the id, 10 the offset,
-- 11 the consumer incarnation the move belongs to, 12 'done' (the record is
-- in the dead-letter topic: the offset is settled and counted) or 'failed'
-- (the append failed: the message waits for redelivery after the backoff
-- for its delivery count). Returns 1 if the move was still under way.
local t = topic(GEN)
local id = ARGV[9]
local c = consumer(id)
local m = ARGV[10]
if c.mode ~= 'p' or c.q.inc ~= ARGV[11] then
  return 0
end
local raw = redis.call('HGET', c.k.dl, m)
if not raw then
  return 0
end
redis.call('HDEL', c.k.dl, m)
local o = num(m)
if ARGV[12] == 'done' then
  settle_done(c, o)
  redis.call('HINCRBY', c.k.s, 'dead', 1)
  advance(c)
  store_consumer(id, c)
elseif o >= math.max(c.committed, t.start) then
  local n = cmsgpack.unpack(raw)[1]
  redis.call('HSET', c.k.count, m, str(n))
  redis.call('ZADD', c.k.wait, str(NOW_US + backoff_us(c, n)), m)
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1
