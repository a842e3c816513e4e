-- ARGV 7 the change channel, 8 the topic's name, then four per record:
-- size, key, value, headers ('' = none). Returns the first offset.
local t = topic(GEN)
local time = NOW
if t.last > time then
  time = t.last
end
local first = t.stop
for b = 9, #ARGV, 4 do
  if ARGV[b + 3] == '' then
    redis.call('XADD', LOG, str(t.stop) .. '-1', 't', time, 's', ARGV[b], 'k', ARGV[b + 1], 'v', ARGV[b + 2])
  else
    redis.call('XADD', LOG, str(t.stop) .. '-1', 't', time, 's', ARGV[b], 'k', ARGV[b + 1], 'v', ARGV[b + 2],
      'h', ARGV[b + 3])
  end
  t.stop = t.stop + 1
  t.bytes = t.bytes + tonumber(ARGV[b])
end
t.last = time
retain(t)
save(t)
redis.call('PUBLISH', ARGV[7], ARGV[8])
return str(first)
