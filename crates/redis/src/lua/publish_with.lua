-- A publish with options (a producer and sequence, record ids), on the
-- topic's keys and its idempotence keys (KEYS 6-9, see `idem`).
-- ARGV 7 the change channel, 8 the topic's name, 9 the producer id ('' =
-- none), 10 its sequence and 11 the sequence after this publish (both
-- zero-padded to 20 digits; '' without a producer), 12 the producer idle
-- timeout (microseconds), 13 the most producers a topic remembers, 14 how
-- many publishes of a producer it remembers, 15 the most ids it
-- remembers, 16 how many ids follow (0, or one per record), then the ids
-- ('' = none), then the records as in `publish`.
--
-- Returns {'retry', first offset, count} for a producer's retry (nothing
-- appended), else {'new', first offset, count, duplicates} with the
-- duplicates as index (from 0), offset, index, offset, ...
-- Checks everything before it writes: a publish refused (GSSEQ, the
-- expected sequence) changes nothing but what expired anyway.
local t = topic(GEN)
local k = idem()
local producer, seq, after = ARGV[9], ARGV[10], ARGV[11]
local idle_cutoff = NOW_US - num(ARGV[12])
local max_producers, kept, max_ids = num(ARGV[13]), num(ARGV[14]), num(ARGV[15])
local n_ids = num(ARGV[16])
local first_record = 17 + n_ids
local count = #ARGV - first_record + 1

-- The producer: a retry, the next publish, or out of sequence.
local p = nil
if producer ~= '' then
  expire_producers(k, idle_cutoff, 16)
  p = producer_state(k, producer, idle_cutoff)
  local expected = p and p.next or pad('0')
  if seq ~= expected then
    if p then
      for _, f in ipairs(p.frames) do
        if f.seq == seq and num(f.count) == count then
          return {'retry', f.first, f.appended}
        end
      end
    end
    fail('GSSEQ', expected)
  end
end

-- The ids: those appended within the window, and repeats within the
-- publish, are duplicates.
local skip, duplicates, remember = nil, {}, {}
local window = t.dw
if n_ids > 0 and string.match(window, '[1-9]') and max_ids > 0 then
  local cutoff = ns_minus(NOW, window)
  expire_ids(k, cutoff, 2 * n_ids + 16)
  skip = {}
  local seen, next_offset = {}, t.stop
  for i = 1, count do
    local id = ARGV[16 + i]
    local offset = nil
    if id ~= '' then
      offset = seen[id]
      if not offset then
        local held = redis.call('HGET', k.ids, id)
        if held then
          local o, time = string.match(held, '^(%d+) (%d+)$')
          if time and time > cutoff then
            offset = o
          end
        end
      end
    end
    if offset then
      skip[i] = true
      duplicates[#duplicates + 1] = i - 1
      duplicates[#duplicates + 1] = offset
      seen[id] = offset
    else
      if id ~= '' then
        seen[id] = str(next_offset)
        remember[#remember + 1] = {id, str(next_offset)}
      end
      next_offset = next_offset + 1
    end
  end
end

-- The append.
local first, appended = t.stop, count - #duplicates / 2
if appended > 0 then
  first = append(t, first_record, skip)
  if #remember > 0 then
    for _, r in ipairs(remember) do
      redis.call('HSET', k.ids, r[1], r[2] .. ' ' .. t.last)
      redis.call('RPUSH', k.order, t.last .. ' ' .. r[2] .. ' ' .. r[1])
    end
    cap_ids(k, max_ids)
  end
  redis.call('PUBLISH', ARGV[7], ARGV[8])
end

-- The producer's new state.
if producer ~= '' then
  if not p then
    redis.call('ZREM', k.use, producer)
    room_for_producer(k, max_producers)
    p = {frames = {}}
  end
  p.next = after
  p.frames[#p.frames + 1] = {seq = seq, count = str(count), first = str(first), appended = str(appended)}
  save_producer(k, producer, p, kept)
end
return {'new', str(first), str(appended), duplicates}
