-- Runs on the dead-letter topic's keys, plus KEYS[6]: the dedupe key of
-- one move (source topic, consumer, incarnation, offset; in this topic's
-- hash tag). ARGV 7 the change channel, 8 this topic's name, 9 how long
-- the dedupe key lives (seconds), 10 the record (encoded as `publish`
-- takes it). Appends the record unless this move already did (in this
-- generation of the topic); returns its offset either way.
local t = topic('')
local seen = redis.call('GET', KEYS[6])
if seen then
  local gen, offset = string.match(seen, '^(%S+) (%d+)$')
  if gen == t.gen then
    return offset
  end
end
local first = append(t, 10)
redis.call('SET', KEYS[6], t.gen .. ' ' .. str(first), 'EX', ARGV[9])
redis.call('PUBLISH', ARGV[7], ARGV[8])
return str(first)
