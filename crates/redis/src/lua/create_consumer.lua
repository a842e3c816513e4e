-- ARGV 7 the id, 8-9 the start position (kind, value), 10 the mode, 11 the
-- ack timeout (ns), 12 the creation time, 13 the most consumers a topic
-- has; per-message mode: 14 max deliveries, 15 backoff (ns, comma
-- separated), 16 dead-letter topic ('' = none), 17 max outstanding, 18 the
-- consumer's incarnation (random: names its dead-letter moves).
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
drop_queue(id)
if c.mode == 'p' then
  redis.call('HSET', qkeys(id).s, 'maxd', ARGV[14], 'backoff', ARGV[15], 'dlq', ARGV[16], 'maxout', ARGV[17],
    'red', '0', 'dead', '0', 'inc', ARGV[18])
end
redis.call('ZADD', IDS, 0, id)
return info(t, id, consumer(id))
