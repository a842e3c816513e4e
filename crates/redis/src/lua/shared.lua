-- Shared by every GoStream script but the plain publish, after
-- `prelude.lua` (the key and argument layout, the topic, retention, the
-- append): reads, positions, consumers, exactly-once publishing. The
-- script's own body follows.

-- Up to `max_msgs` messages from `from`, cut at `max_bytes` (at least one).
local function collect(t, from, max_msgs, max_bytes)
  if from >= t.stop then
    return {}
  end
  local entries = redis.call('XRANGE', LOG, str(from), '+', 'COUNT', math.min(max_msgs, t.stop - from))
  local out, total = {}, 0
  for i, e in ipairs(entries) do
    local size = entry_size(e)
    if i > 1 and total + size > max_bytes then
      break
    end
    total = total + size
    out[i] = e
  end
  return out
end

-- The offset a position refers to: 'earliest', 'latest', 'offset' (an
-- exact offset, GSRANGE outside start..=end) or 'time' (the first message
-- published at or after a padded time in nanoseconds, else the end).
local function resolve(t, kind, value)
  if kind == 'earliest' then
    return t.start
  elseif kind == 'latest' then
    return t.stop
  elseif kind == 'offset' then
    local o = tonumber(value)
    if o < t.start or o > t.stop then
      fail('GSRANGE', str(t.start) .. ' ' .. str(t.stop))
    end
    return o
  end
  local lo, hi = t.start, t.stop
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = redis.call('XRANGE', LOG, str(mid), str(mid) .. '-1')
    if #e == 0 or entry_time(e[1]) < value then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return lo
end

-- The keys of a per-message consumer's queue state, beside the topic's own
-- (same hash tag, so same slot), named after KEYS[1]: s (hash: settings,
-- counters, incarnation, skipped), lease (sorted set: offset -> lease
-- deadline, microseconds), wait (sorted set: offset -> ready time), count
-- (hash: offset -> delivery count, leased and waiting), done (sorted set:
-- offset -> offset, settled above the floor), dl (hash: offset -> a
-- dead-letter move under way).
local BASE = string.sub(META, 1, #META - 4)

local function qkeys(id)
  local k = {}
  for _, part in ipairs({'s', 'lease', 'wait', 'count', 'done', 'dl'}) do
    k[part] = BASE .. 'q:' .. id .. ':' .. part
  end
  return k
end

local function drop_queue(id)
  local k = qkeys(id)
  redis.call('DEL', k.s, k.lease, k.wait, k.count, k.done, k.dl)
end

local function split_numbers(s)
  local out = {}
  for w in string.gmatch(s or '', '[^,]+') do
    out[#out + 1] = num(w)
  end
  return out
end

-- A consumer: offset, committed offset, mode ('a'uto, 'm'anual or 'p'er
-- message), ack timeout in nanoseconds, creation time; (manual mode) the
-- outstanding deliveries, oldest first, as {end offset, microseconds
-- delivered at}; (per-message mode) its keys in `k`, its settings and
-- counters in `q`.
local function consumer(id)
  local v = redis.call('HGET', CONS, id)
  if not v then
    fail('GSNOCONSUMER')
  end
  local f = {}
  for w in string.gmatch(v, '%S+') do
    f[#f + 1] = w
  end
  local c = {offset = num(f[1]), committed = num(f[2]), mode = f[3], ack = num(f[4]), created = f[5], out = {}}
  c.raw = v
  if c.mode == 'm' then
    c.raw_out = redis.call('HGET', OUT, id) or ''
    for e, at in string.gmatch(c.raw_out, '(%d+):(%d+)') do
      c.out[#c.out + 1] = {num(e), num(at)}
    end
  elseif c.mode == 'p' then
    c.k = qkeys(id)
    local s = redis.call('HMGET', c.k.s, 'maxd', 'backoff', 'dlq', 'maxout', 'red', 'dead', 'inc')
    c.q = {maxd = num(s[1]), raw_backoff = s[2] or '', backoff = split_numbers(s[2]), dlq = s[3] or '',
      maxout = num(s[4]), red = num(s[5]), dead = num(s[6]), inc = s[7] or ''}
  end
  return c
end

local function store_consumer(id, c)
  local v = str(c.offset) .. ' ' .. str(c.committed) .. ' ' .. c.mode .. ' ' .. str(c.ack) .. ' ' .. c.created
  if v ~= c.raw then
    redis.call('HSET', CONS, id, v)
    c.raw = v
  end
  if c.mode == 'm' then
    local parts = {}
    for i, d in ipairs(c.out) do
      parts[i] = str(d[1]) .. ':' .. str(d[2])
    end
    local o = table.concat(parts, ',')
    if o ~= c.raw_out then
      if o == '' then
        redis.call('HDEL', OUT, id)
      else
        redis.call('HSET', OUT, id, o)
      end
      c.raw_out = o
    end
  end
end

-- When the oldest outstanding delivery of a manual-mode consumer falls due
-- (microseconds), or nil.
local function due(c)
  if c.mode ~= 'm' or #c.out == 0 then
    return nil
  end
  return c.out[1][2] + math.ceil(c.ack / 1000)
end

-- Nanoseconds as whole microseconds, rounded up.
local function us(ns)
  return math.ceil(ns / 1000)
end

-- The delay (microseconds) before redelivering a message delivered n times.
local function backoff_us(c, n)
  local b = c.q.backoff
  if #b == 0 then
    return 0
  end
  return us(b[math.min(math.max(n, 1), #b)])
end

-- The entry at offset o, or nil.
local function entry_at(o)
  local id = str(o) .. '-1'
  return redis.call('XRANGE', LOG, id, id)[1]
end

-- Marks offset o settled (acked, dead-lettered, dropped).
local function settle_done(c, o)
  if o >= c.committed then
    redis.call('ZADD', c.k.done, str(o), str(o))
  end
end

-- Moves the floor (committed) up over the settled offsets it reaches.
local function advance(c)
  while c.committed < c.offset do
    local next = redis.call('ZRANGEBYSCORE', c.k.done, str(c.committed), '+inf', 'LIMIT', 0, 256)
    local moved = false
    for _, m in ipairs(next) do
      if num(m) ~= c.committed then
        break
      end
      c.committed = c.committed + 1
      moved = true
    end
    if not moved then
      break
    end
  end
  redis.call('ZREMRANGEBYSCORE', c.k.done, '-inf', '(' .. str(c.committed))
end

-- Dead-letters offset o (delivered n times) of a per-message consumer.
-- Without a dead-letter topic it is dropped (settled, counted). With one,
-- the move starts: the offset goes to `dl` with what the move needs (a copy
-- of the message, so retention cannot lose it meanwhile); the broker then
-- appends it to the dead-letter topic (`dl_append`, in that topic's slot)
-- and finishes the move here (`dl_finish`).
local function dead_letter(c, o, n, reason, detail)
  local m = str(o)
  redis.call('ZREM', c.k.lease, m)
  redis.call('ZREM', c.k.wait, m)
  redis.call('HDEL', c.k.count, m)
  local e = entry_at(o)
  if c.q.dlq == '' or not e then
    settle_done(c, o)
    c.q.dead = redis.call('HINCRBY', c.k.s, 'dead', 1)
    return
  end
  redis.call('HSET', c.k.dl, m, cmsgpack.pack({n, reason, detail, c.q.dlq, e}))
end

-- The dead-letter moves under way (the 64 lowest offsets), each as
-- {offset, delivery count, reason, detail, dead-letter topic, consumer
-- incarnation, entry}.
local function moves(c)
  local list = {}
  for i, m in ipairs(redis.call('HKEYS', c.k.dl)) do
    list[i] = num(m)
  end
  table.sort(list)
  local out = {}
  for i = 1, math.min(#list, 64) do
    local m = str(list[i])
    local d = cmsgpack.unpack(redis.call('HGET', c.k.dl, m))
    out[i] = {m, str(d[1]), d[2], d[3], d[4], c.q.inc, d[5]}
  end
  return out
end

-- Leases due by now: dead-letter those at max_deliveries, release the
-- rest for redelivery after their backoff (counted from the deadline).
local function expire(c)
  local due_now = redis.call('ZRANGEBYSCORE', c.k.lease, '-inf', str(NOW_US), 'WITHSCORES')
  for i = 1, #due_now, 2 do
    local m, deadline = due_now[i], num(due_now[i + 1])
    local n = num(redis.call('HGET', c.k.count, m))
    if c.q.maxd > 0 and n >= c.q.maxd then
      dead_letter(c, num(m), n, 'expired', '')
    else
      redis.call('ZREM', c.k.lease, m)
      redis.call('ZADD', c.k.wait, str(deadline + backoff_us(c, n)), m)
    end
  end
end

-- Moves a consumer up to the start if retention removed what it had not
-- read (per-message mode: what it had not settled, leased and waiting
-- messages included, which it forgets; moves to the dead-letter topic go
-- on); returns how many messages it skipped (per-message mode: also kept
-- for its next batch).
local function catch_up(c, start)
  if c.mode ~= 'p' then
    local skipped = math.max(0, start - c.offset)
    c.offset = math.max(c.offset, start)
    c.committed = math.max(c.committed, start)
    return skipped
  end
  if start <= c.committed then
    return 0
  end
  local settled = redis.call('ZCOUNT', c.k.done, '-inf', '(' .. str(start))
  local moving = 0
  for _, m in ipairs(redis.call('HKEYS', c.k.dl)) do
    if num(m) < start and num(m) >= c.committed then
      moving = moving + 1
    end
  end
  for _, m in ipairs(redis.call('HKEYS', c.k.count)) do
    if num(m) < start then
      redis.call('ZREM', c.k.lease, m)
      redis.call('ZREM', c.k.wait, m)
      redis.call('HDEL', c.k.count, m)
    end
  end
  redis.call('ZREMRANGEBYSCORE', c.k.done, '-inf', '(' .. str(start))
  local skipped = math.max(0, start - c.committed - settled - moving)
  c.committed = start
  c.offset = math.max(c.offset, start)
  advance(c)
  if skipped > 0 then
    redis.call('HINCRBY', c.k.s, 'skip', str(skipped))
  end
  return skipped
end

-- Brings a per-message consumer up to now: retention, expired leases, the
-- floor.
local function refresh(t, c)
  catch_up(c, t.start)
  expire(c)
  advance(c)
end

-- What GetConsumer shows: id, offset, committed, lag, mode, ack timeout
-- (ns), creation time; a consumer left behind shows where it resumes. Then
-- the queue settings (max deliveries, backoff, dead-letter topic, max
-- outstanding; '' each outside per-message mode), the counts at now
-- (outstanding, waiting, redelivered, dead-lettered) and the publish time
-- of the message at the committed offset ('' if the topic does not hold it).
local function info(t, id, c)
  local committed = math.max(c.committed, t.start)
  local oldest = ''
  if committed < t.stop then
    local e = entry_at(committed)
    if e then
      oldest = entry_time(e)
    end
  end
  local q = {'', '', '', '', '0', '0', '0', '0'}
  if c.mode == 'p' then
    local now = str(NOW_US)
    local leased = redis.call('ZCOUNT', c.k.lease, '(' .. now, '+inf')
    local expired = redis.call('ZCOUNT', c.k.lease, '-inf', now)
    local waiting = redis.call('ZCARD', c.k.wait) + expired + redis.call('HLEN', c.k.dl)
    q = {str(c.q.maxd), c.q.raw_backoff, c.q.dlq, str(c.q.maxout), str(leased), str(waiting), str(c.q.red),
      str(c.q.dead)}
  end
  return {id, str(math.max(c.offset, t.start)), str(committed), str(math.max(0, t.stop - committed)),
    c.mode, str(c.ack), c.created, q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], oldest}
end

-- Exactly-once publishing. A topic's idempotence keys (same hash tag),
-- KEYS 6-9 of the scripts that take them:
--   6 producers (hash: producer id -> 'last sequence-after frames...':
--     the microseconds of its last accepted publish, the sequence its next
--     publish must start at, then its last accepted publishes, oldest
--     first, each 'sequence,records,first offset,appended'; sequences are
--     zero-padded to 20 digits, so they compare exactly as strings),
--   7 producer use (sorted set: producer id, scored by its last publish,
--     microseconds: the least recently used and the idle ones first),
--   8 dedupe ids (hash: record id -> 'offset time' of its append),
--   9 dedupe order (list: 'time offset id' per remembered append, oldest
--     first; an entry whose id was appended again since is stale).
local function idem()
  return {prod = KEYS[6], use = KEYS[7], ids = KEYS[8], order = KEYS[9]}
end

-- Forgets every producer and id of the topic.
local function forget_all(k)
  redis.call('DEL', k.prod, k.use, k.ids, k.order)
end

-- Forgets every id of the topic.
local function forget_ids(k)
  redis.call('DEL', k.ids, k.order)
end

-- Forgets up to `limit` producers whose last publish was before
-- `cutoff_us`.
local function expire_producers(k, cutoff_us, limit)
  local idle = redis.call('ZRANGEBYSCORE', k.use, '-inf', '(' .. str(cutoff_us), 'LIMIT', 0, limit)
  if #idle > 0 then
    redis.call('HDEL', k.prod, unpack(idle))
    redis.call('ZREM', k.use, unpack(idle))
  end
end

-- A producer's state on the topic ({last, next, frames = {{seq, count,
-- first, appended}, ...}}), or nil when the topic does not know it: never
-- seen, forgotten, or idle since before `cutoff_us`.
local function producer_state(k, id, cutoff_us)
  local v = redis.call('HGET', k.prod, id)
  if not v then
    return nil
  end
  local last, next, rest = string.match(v, '^(%d+) (%d+)(.*)$')
  if not last or num(last) < cutoff_us then
    return nil
  end
  local frames = {}
  for s, c, f, a in string.gmatch(rest, '(%d+),(%d+),(%d+),(%d+)') do
    frames[#frames + 1] = {seq = s, count = c, first = f, appended = a}
  end
  return {last = last, next = next, frames = frames}
end

-- Saves a producer's state, keeping its last `kept` publishes. Its last
-- use is now, in microseconds, or just after the latest use on the topic
-- if that is not before (several publishes in one microsecond, or a node
-- whose clock is behind), so the least recently used comes first.
local function save_producer(k, id, p, kept)
  local used = NOW_US
  local latest = redis.call('ZRANGE', k.use, -1, -1, 'WITHSCORES')
  if #latest == 2 and num(latest[2]) >= used then
    used = num(latest[2]) + 1
  end
  local parts = {str(used), p.next}
  for i = math.max(1, #p.frames - kept + 1), #p.frames do
    local f = p.frames[i]
    parts[#parts + 1] = f.seq .. ',' .. f.count .. ',' .. f.first .. ',' .. f.appended
  end
  redis.call('HSET', k.prod, id, table.concat(parts, ' '))
  redis.call('ZADD', k.use, str(used), id)
end

-- Makes room for one more producer under `max`: forgets the least
-- recently used ones.
local function room_for_producer(k, max)
  local over = redis.call('ZCARD', k.use) - max + 1
  if over > 0 then
    local lru = redis.call('ZPOPMIN', k.use, over)
    for i = 1, #lru, 2 do
      redis.call('HDEL', k.prod, lru[i])
    end
  end
end

-- Drops the oldest entry of the dedupe order, and its id unless the id
-- was appended again since.
local function pop_id(k)
  local head = redis.call('LPOP', k.order)
  if not head then
    return nil
  end
  local time, offset, id = string.match(head, '^(%d+) (%d+) (.*)$')
  local held = redis.call('HGET', k.ids, id)
  if held and string.match(held, '^%d+') == offset then
    redis.call('HDEL', k.ids, id)
  end
  return time
end

-- Forgets up to `limit` of the oldest ids appended at or before `cutoff`
-- (padded nanoseconds).
local function expire_ids(k, cutoff, limit)
  for _ = 1, limit do
    local head = redis.call('LINDEX', k.order, 0)
    if not head or string.match(head, '^%d+') > cutoff then
      return
    end
    pop_id(k)
  end
end

-- Forgets the oldest ids while the topic remembers more than `max`.
local function cap_ids(k, max)
  while redis.call('HLEN', k.ids) > max do
    if not pop_id(k) then
      return
    end
  end
end
