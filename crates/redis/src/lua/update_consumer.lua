-- ARGV 7 the id, then one per setting, 'k' to keep it or 's' followed by
-- the new value: 8 the ack timeout (ns), 9 max deliveries, 10 backoff (ns,
-- comma separated), 11 dead-letter topic ('' = none), 12 max outstanding;
-- 13 the change channel, 14 the topic's name (readers waiting for room
-- under max outstanding look again). The caller checked what may change
-- for the consumer's mode.
local t = topic(GEN)
local id = ARGV[7]
local c = consumer(id)
local function set(i)
  if string.sub(ARGV[i], 1, 1) == 's' then
    return string.sub(ARGV[i], 2)
  end
  return nil
end
local ack = set(8)
if ack and c.mode ~= 'a' then
  c.ack = num(ack)
  store_consumer(id, c)
end
if c.mode == 'p' then
  for i, field in pairs({[9] = 'maxd', [10] = 'backoff', [11] = 'dlq', [12] = 'maxout'}) do
    local v = set(i)
    if v then
      redis.call('HSET', c.k.s, field, v)
    end
  end
  c = consumer(id)
  redis.call('PUBLISH', ARGV[13], ARGV[14])
end
return info(t, id, c)
