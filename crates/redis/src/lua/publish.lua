-- ARGV 7 the change channel, 8 the topic's name, then the records (one
-- argument each, encoded). Returns the first offset.
local t = topic(GEN)
local first = append(t, 9)
redis.call('PUBLISH', ARGV[7], ARGV[8])
return str(first)
