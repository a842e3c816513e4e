-- ARGV 7 the change channel, 8 the topic's name, 9 the records' total
-- size, 10 the largest one's, then the records (one argument each,
-- encoded). Returns the first offset.
local t = topic(GEN)
local first = append(t, 11, nil, {num(ARGV[9]), num(ARGV[10])})
redis.call('PUBLISH', ARGV[7], ARGV[8])
return str(first)
