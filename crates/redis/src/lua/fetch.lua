-- ARGV 7 the consumer, 8 the most messages, 9 the most bytes, 10 '1' on
-- the last try of a wait (an empty batch is then the answer), 11 the
-- offset the caller expects the consumer at ('' = none), when it reads
-- the entries from there itself, in the same transaction, right after.
-- Returns the generation, whether it is an answer (1) or the caller should
-- wait (0), skipped, next offset, end offset, when a redelivery falls due
-- (microseconds, -1 for none), the entries (or, when the consumer was at
-- the offset expected and the batch fits the byte limit by the topic's
-- largest record, just how many the caller's read is to take), (per-message
-- mode) their delivery counts, the dead-letter moves under way (see
-- `moves`), and the offset the next fetch may expect ('' = none).
local t = topic(GEN)
local id = ARGV[7]
local c = consumer(id)
local max_msgs, max_bytes = tonumber(ARGV[8]), tonumber(ARGV[9])

if c.mode == 'p' then
  refresh(t, c)
  local skipped = num(redis.call('HGET', c.k.s, 'skip'))
  if skipped > 0 then
    redis.call('HDEL', c.k.s, 'skip')
  end
  local lease_until = str(NOW_US + us(c.ack))
  local out, counts, total, full = {}, {}, 0, false
  -- First the ready redeliveries, in offset order.
  local ready = redis.call('ZRANGEBYSCORE', c.k.wait, '-inf', str(NOW_US))
  local offs = {}
  for i, m in ipairs(ready) do
    offs[i] = num(m)
  end
  table.sort(offs)
  local redelivered = 0
  for _, o in ipairs(offs) do
    if #out >= max_msgs then
      full = true
      break
    end
    local m = str(o)
    local e = entry_at(o)
    if e then
      local size = entry_size(e)
      if #out > 0 and total + size > max_bytes then
        full = true
        break
      end
      total = total + size
      redis.call('ZREM', c.k.wait, m)
      redis.call('ZADD', c.k.lease, lease_until, m)
      out[#out + 1] = e
      counts[#counts + 1] = str(redis.call('HINCRBY', c.k.count, m, 1))
      redelivered = redelivered + 1
    else
      redis.call('ZREM', c.k.wait, m)
      redis.call('HDEL', c.k.count, m)
    end
  end
  if redelivered > 0 then
    c.q.red = redis.call('HINCRBY', c.k.s, 'red', redelivered)
  end
  -- Then new messages, while there is room under max_outstanding.
  if not full and #out < max_msgs and c.offset < t.stop then
    local held = redis.call('ZCARD', c.k.lease) + redis.call('ZCARD', c.k.wait) + redis.call('HLEN', c.k.dl)
    local room = math.min(c.q.maxout - held, max_msgs - #out, t.stop - c.offset)
    if room > 0 then
      local entries = redis.call('XRANGE', LOG, str(c.offset), '+', 'COUNT', room)
      for _, e in ipairs(entries) do
        local size = entry_size(e)
        if #out > 0 and total + size > max_bytes then
          break
        end
        total = total + size
        local m = str(c.offset)
        redis.call('ZADD', c.k.lease, lease_until, m)
        redis.call('HSET', c.k.count, m, '1')
        out[#out + 1] = e
        counts[#counts + 1] = '1'
        c.offset = c.offset + 1
      end
    end
  end
  store_consumer(id, c)
  local pending = moves(c)
  if #out == 0 and ARGV[10] ~= '1' then
    -- Nothing deliverable: wake at the next lease deadline or ready time.
    local wake = -1
    for _, key in ipairs({c.k.lease, c.k.wait}) do
      local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      if first[2] and (wake < 0 or num(first[2]) < wake) then
        wake = num(first[2])
      end
    end
    return {t.gen, 0, str(skipped), str(c.offset), str(t.stop), str(wake), {}, {}, pending, ''}
  end
  return {t.gen, 1, str(skipped), str(c.offset), str(t.stop), '-1', out, counts, pending, ''}
end

local d = due(c)
if d and NOW_US >= d then
  c.offset = c.committed
  c.out = {}
end
local skipped = catch_up(c, t.start)

-- Moves the consumer over n messages it is given.
local function deliver(n)
  c.offset = c.offset + n
  if c.mode == 'a' then
    c.committed = c.offset
  elseif #c.out >= MAX_OUTSTANDING then
    c.out[#c.out][1] = c.offset
  else
    c.out[#c.out + 1] = {c.offset, NOW_US}
  end
end

if ARGV[11] ~= '' and str(c.offset) == ARGV[11] and t.mx then
  local n = math.min(max_msgs, t.stop - c.offset)
  if n > 0 and n * num(t.mx) <= max_bytes then
    deliver(n)
    store_consumer(id, c)
    return {t.gen, 1, str(skipped), str(c.offset), str(t.stop), '-1', n, {}, {}, str(c.offset)}
  end
end
local entries = collect(t, c.offset, max_msgs, max_bytes)
-- No hint where the next fetch could not take the short way anyway (a
-- topic of an earlier version, records too large for a batch this size).
local function hint()
  if t.mx and max_msgs * num(t.mx) <= max_bytes then
    return str(c.offset)
  end
  return ''
end
if #entries == 0 and ARGV[10] ~= '1' then
  store_consumer(id, c)
  return {t.gen, 0, str(skipped), str(c.offset), str(t.stop), str(due(c) or -1), {}, {}, {}, hint()}
end
if #entries > 0 then
  deliver(#entries)
end
store_consumer(id, c)
return {t.gen, 1, str(skipped), str(c.offset), str(t.stop), '-1', entries, {}, {}, hint()}
