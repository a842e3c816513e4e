-- Shared by every GoStream script; the script's own body follows.
--
-- KEYS (all of one topic, so one hash tag and one cluster slot):
--   1 meta (hash), 2 log (stream), 3 consumers (hash: id -> state),
--   4 consumer ids (sorted set, for paging), 5 outstanding deliveries
--   (hash: id -> "end:us,end:us,..." of a manual-mode consumer).
-- ARGV 1-6 (every script):
--   1 the topic generation expected ('' = any; create_topic: the new one),
--   2 now, nanoseconds since the epoch, zero-padded to 20 digits,
--   3 now, whole microseconds since the epoch,
--   4-6 the broker's default retention: messages, bytes, age in nanoseconds.
-- Script arguments follow from ARGV[7].
--
-- Numbers in Lua are doubles: offsets, sizes and microseconds are exact;
-- nanosecond times are kept as zero-padded strings, which compare like numbers.
local META, LOG, CONS, IDS, OUT = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local GEN, NOW, NOW_US = ARGV[1], ARGV[2], tonumber(ARGV[3])
local D_MSGS, D_BYTES, D_AGE = ARGV[4], ARGV[5], ARGV[6]
local MAX_OUTSTANDING = 1024

local function fail(code, detail)
  error({err = code .. ' ' .. (detail or '')})
end

local function str(n)
  return string.format('%.0f', n)
end

local function num(s)
  return tonumber(s) or 0
end

local function pad(s)
  return string.rep('0', 20 - #s) .. s
end

-- a - b for decimal strings of nanoseconds, at least 0, zero-padded.
local function ns_minus(a, b)
  a, b = pad(a), pad(b)
  local hi = tonumber(string.sub(a, 1, 11)) - tonumber(string.sub(b, 1, 11))
  local lo = tonumber(string.sub(a, 12)) - tonumber(string.sub(b, 12))
  if lo < 0 then
    lo = lo + 1000000000
    hi = hi - 1
  end
  if hi < 0 then
    return pad('0')
  end
  return string.format('%011d%09d', hi, lo)
end

-- The topic, or GSNOTFOUND when it is absent or of another generation.
local function topic(gen)
  local m = redis.call('HMGET', META, 'gen', 'start', 'end', 'bytes', 'last', 'rm', 'rb', 'ra', 'created')
  if not m[1] or (gen ~= '' and m[1] ~= gen) then
    fail('GSNOTFOUND')
  end
  return {
    gen = m[1], start = num(m[2]), stop = num(m[3]), bytes = num(m[4]), last = m[5] or '',
    rm = m[6], rb = m[7], ra = m[8], created = m[9] or '0',
  }
end

local function save(t)
  redis.call('HSET', META, 'start', str(t.start), 'end', str(t.stop), 'bytes', str(t.bytes), 'last', t.last)
end

-- What GetTopic shows: generation, creation time, start, end, bytes, and
-- the retention overrides ('' = the broker default).
local function describe(t)
  return {t.gen, t.created, str(t.start), str(t.stop), str(t.bytes), t.rm or '', t.rb or '', t.ra or ''}
end

-- Entries are stored with the ID '<offset>-1' and the fields
-- t (publish time), s (size), k (key), v (value) and, with headers, h.
local function entry_time(e) return e[2][2] end
local function entry_size(e) return num(e[2][4]) end

-- Drops the messages below offset `upto`, which hold `freed` bytes.
local function drop_below(t, upto, freed)
  if upto <= t.start then
    return
  end
  redis.call('XTRIM', LOG, 'MINID', str(upto))
  t.bytes = t.bytes - freed
  t.start = upto
end

-- Walks from the start while `drop(entry)` says so; drops what it passed.
local function drop_while(t, drop)
  local upto, freed, count = t.start, 0, 1
  while upto < t.stop do
    local batch = redis.call('XRANGE', LOG, str(upto), '+', 'COUNT', count)
    if #batch == 0 then
      break
    end
    for _, e in ipairs(batch) do
      if not drop(e, freed) then
        drop_below(t, upto, freed)
        return
      end
      freed = freed + entry_size(e)
      upto = upto + 1
    end
    count = math.min(count * 4, 256)
  end
  drop_below(t, upto, freed)
end

-- Applies the retention in force (the topic's overrides over the broker
-- defaults); returns how many messages it dropped.
local function retain(t)
  local before = t.start
  local msgs = num(t.rm or D_MSGS)
  local bytes = num(t.rb or D_BYTES)
  local age = t.ra or D_AGE
  if msgs > 0 and t.stop - t.start > msgs then
    local keep_from = t.stop - msgs
    drop_while(t, function(e) return num(string.match(e[1], '^(%d+)')) < keep_from end)
  end
  if bytes > 0 and t.bytes > bytes then
    local held = t.bytes
    drop_while(t, function(_, freed) return held - freed > bytes end)
  end
  if age ~= '' and string.match(age, '[1-9]') then
    local cutoff = ns_minus(NOW, age)
    drop_while(t, function(e) return entry_time(e) < cutoff end)
  end
  return t.start - before
end

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

-- A consumer: offset, committed offset, mode ('a'uto or 'm'anual), ack
-- timeout in nanoseconds, creation time, and (manual mode) the outstanding
-- deliveries, oldest first, as {end offset, microseconds delivered at}.
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
  end
  return c
end

local function store_consumer(id, c)
  local v = str(c.offset) .. ' ' .. str(c.committed) .. ' ' .. c.mode .. ' ' .. str(c.ack) .. ' ' .. c.created
  if v ~= c.raw then
    redis.call('HSET', CONS, id, v)
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
    end
  end
end

-- Moves a consumer up to the start if retention removed what it had not
-- read; returns how many messages it skipped.
local function catch_up(c, start)
  local skipped = math.max(0, start - c.offset)
  c.offset = math.max(c.offset, start)
  c.committed = math.max(c.committed, start)
  return skipped
end

-- When the oldest outstanding delivery falls due (microseconds), or nil.
local function due(c)
  if c.mode ~= 'm' or #c.out == 0 then
    return nil
  end
  return c.out[1][2] + math.ceil(c.ack / 1000)
end

-- What GetConsumer shows: id, offset, committed, lag, mode, ack timeout
-- (ns), creation time; a consumer left behind shows where it resumes.
local function info(t, id, c)
  local committed = math.max(c.committed, t.start)
  return {id, str(math.max(c.offset, t.start)), str(committed), str(math.max(0, t.stop - committed)),
    c.mode, str(c.ack), c.created}
end
