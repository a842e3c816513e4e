-- ARGV 7 the id, 8-9 the position (kind, value), 10 the consumer's new
-- incarnation (per-message mode: its leases, waiting messages, settled
-- marks, moves under way and counters start over).
local t = topic(GEN)
local id = ARGV[7]
local c = consumer(id)
catch_up(c, t.start)
local o = resolve(t, ARGV[8], ARGV[9])
c.offset = o
c.committed = o
c.out = {}
store_consumer(id, c)
if c.mode == 'p' then
  local k = c.k
  redis.call('DEL', k.lease, k.wait, k.count, k.done, k.dl)
  redis.call('HSET', k.s, 'red', '0', 'dead', '0', 'inc', ARGV[10])
  redis.call('HDEL', k.s, 'skip')
  c = consumer(id)
end
return info(t, id, c)
