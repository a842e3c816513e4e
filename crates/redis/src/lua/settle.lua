-- ARGV 7 the change channel, 8 the topic's name, 9 the id, 10 what to do
-- ('ack', 'nack', 'reject', 'extend'), 11 its parameter (nack: the delay
-- in ns, '' = the backoff; reject: the reason; extend: the extension in
-- ns, '' = the ack timeout), then two per message, in increasing offset
-- order, each offset once: the offset and the delivery count its lease
-- must have ('' = any). Returns the offsets applied to, those not leased,
-- and the dead-letter moves under way (see `moves`).
local t = topic(GEN)
local id = ARGV[9]
local c = consumer(id)
if c.mode ~= 'p' then
  fail('GSNOTPERMSG')
end
refresh(t, c)
local kind, param = ARGV[10], ARGV[11]
local applied, not_leased = {}, {}
for i = 12, #ARGV, 2 do
  local m, want = ARGV[i], ARGV[i + 1]
  local o = num(m)
  local n = num(redis.call('HGET', c.k.count, m))
  if redis.call('ZSCORE', c.k.lease, m) and (want == '' or num(want) == n) then
    applied[#applied + 1] = m
    if kind == 'ack' then
      redis.call('ZREM', c.k.lease, m)
      redis.call('HDEL', c.k.count, m)
      settle_done(c, o)
    elseif kind == 'nack' then
      if c.q.maxd > 0 and n >= c.q.maxd then
        dead_letter(c, o, n, 'nack', '')
      else
        local delay = backoff_us(c, n)
        if param ~= '' then
          delay = us(num(param))
        end
        redis.call('ZREM', c.k.lease, m)
        redis.call('ZADD', c.k.wait, str(NOW_US + delay), m)
      end
    elseif kind == 'reject' then
      dead_letter(c, o, n, 'reject', param)
    else
      local extension = c.ack
      if param ~= '' then
        extension = num(param)
      end
      redis.call('ZADD', c.k.lease, 'XX', str(NOW_US + us(extension)), m)
    end
  else
    not_leased[#not_leased + 1] = m
  end
end
advance(c)
store_consumer(id, c)
if kind ~= 'extend' and #applied > 0 then
  redis.call('PUBLISH', ARGV[7], ARGV[8])
end
return {applied, not_leased, moves(c)}
