-- ARGV 7 the change channel, 8 the topic's name, 9 the id.
topic(GEN)
local id = ARGV[9]
if redis.call('HDEL', CONS, id) == 0 then
  fail('GSNOCONSUMER')
end
redis.call('ZREM', IDS, id)
redis.call('HDEL', OUT, id)
drop_queue(id)
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1
