-- Shared by every GoStream script: the key and argument layout, the topic,
-- retention and the append. The plain publish's body follows it; every
-- other script's follows `shared.lua` (reads, positions, consumers,
-- exactly-once publishing), which follows it.
--
-- KEYS (all of one topic, so one hash tag and one cluster slot):
--   1 meta (hash), 2 log (stream), 3 consumers (hash: id -> state),
--   4 consumer ids (sorted set, for paging), 5 outstanding deliveries
--   (hash: id -> "end:us,end:us,..." of a manual-mode consumer); a
--   per-message consumer's keys (see `qkeys`) are named after KEYS[1], in
--   the same hash tag; `dl_append` also takes a dead-letter dedupe key;
--   the scripts that publish with options, create, update or delete a
--   topic, or sweep it take its idempotence keys as KEYS 6-9 (see `idem`).
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
-- `mx` is the size of the largest record appended since the topic was
-- last empty (nil when not known: a topic written by an earlier version).
local function topic(gen)
  local m = redis.call('HMGET', META, 'gen', 'start', 'end', 'bytes', 'last', 'rm', 'rb', 'ra', 'created', 'dw', 'mx')
  if not m[1] or (gen ~= '' and m[1] ~= gen) then
    fail('GSNOTFOUND')
  end
  return {
    gen = m[1], start = num(m[2]), stop = num(m[3]), bytes = num(m[4]), last = m[5] or '',
    rm = m[6], rb = m[7], ra = m[8], created = m[9] or '0', dw = m[10] or '', mx = m[11],
  }
end

local function save(t)
  if t.mx then
    redis.call('HSET', META, 'start', str(t.start), 'end', str(t.stop), 'bytes', str(t.bytes), 'last', t.last,
      'mx', t.mx)
  else
    redis.call('HSET', META, 'start', str(t.start), 'end', str(t.stop), 'bytes', str(t.bytes), 'last', t.last)
  end
end

-- What GetTopic shows: generation, creation time, start, end, bytes, the
-- retention overrides ('' = the broker default) and the dedupe window in
-- nanoseconds ('' = off).
local function describe(t)
  return {t.gen, t.created, str(t.start), str(t.stop), str(t.bytes), t.rm or '', t.rb or '', t.ra or '', t.dw}
end

-- Entries are stored with the ID '<offset>-1' and one field: its name is
-- the publish time, its value the record (a version byte, then the size as
-- a little-endian 32-bit number, ...; see the `codec` module). Entries
-- written before that layout have the fields t (publish time), s (size),
-- k (key), v (value) and, with headers, h.
local function entry_time(e)
  local f = e[2]
  if f[1] == 't' then
    return f[2]
  end
  return f[1]
end
local function record_size(record) return (struct.unpack('<I4', record, 2)) end
local function entry_size(e)
  local f = e[2]
  if f[1] == 't' then
    return num(f[4])
  end
  return record_size(f[2])
end

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

-- Appends the records ARGV holds from index `first` on, one per record
-- (encoded as the entry's field value), but those whose number (1 for the
-- first) `skip` holds, if given; applies retention and saves the topic;
-- returns the first record's offset. Without `skip`, `sizes` may give the
-- records' total size and the largest one's ({total, largest}), which
-- saves reading each record's.
local function append(t, first, skip, sizes)
  local time = NOW
  if t.last > time then
    time = t.last
  end
  local start = t.stop
  local mx = nil
  if t.mx then
    mx = num(t.mx)
  elseif t.start == t.stop then
    mx = 0
  end
  if sizes then
    for b = first, #ARGV do
      redis.call('XADD', LOG, str(t.stop) .. '-1', time, ARGV[b])
      t.stop = t.stop + 1
    end
    t.bytes = t.bytes + sizes[1]
    if mx and sizes[2] > mx then
      mx = sizes[2]
    end
  else
    for b = first, #ARGV do
      if not (skip and skip[b - first + 1]) then
        local record = ARGV[b]
        local size = record_size(record)
        redis.call('XADD', LOG, str(t.stop) .. '-1', time, record)
        t.stop = t.stop + 1
        t.bytes = t.bytes + size
        if mx and size > mx then
          mx = size
        end
      end
    end
  end
  if mx then
    t.mx = str(mx)
  end
  t.last = time
  retain(t)
  save(t)
  return start
end
