-- ARGV 7 the id, 8-9 the start position (kind, value), 10 the mode, 11 the
-- ack timeout (ns), 12 the creation time, 13 the most consumers a topic has.
local t = topic(GEN)
local id = ARGV[7]
if redis.call('HEXISTS', CONS, id) == 1 then
  fail('GSCEXISTS')
end
local count = redis.call('ZCARD', IDS)
if count >= tonumber(ARGV[13]) then
  fail('GSLIMIT', str(count))
end
local offset = resolve(t, ARGV[8], ARGV[9])
local c = {offset = offset, committed = offset, mode = ARGV[10], ack = tonumber(ARGV[11]), created = ARGV[12],
  out = {}, raw = '', raw_out = ''}
store_consumer(id, c)
redis.call('ZADD', IDS, 0, id)
return info(t, id, c)
