-- ARGV 7 the change channel, 8 the topic's name. KEYS 6-9: the
-- idempotence keys (see `idem`), deleted with the topic.
topic(GEN)
for _, id in ipairs(redis.call('ZRANGE', IDS, 0, -1)) do
  drop_queue(id)
end
redis.call('DEL', META, LOG, CONS, IDS, OUT)
forget_all(idem())
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1
