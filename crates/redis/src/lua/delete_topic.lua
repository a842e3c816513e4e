-- ARGV 7 the change channel, 8 the topic's name.
topic(GEN)
redis.call('DEL', META, LOG, CONS, IDS, OUT)
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1
