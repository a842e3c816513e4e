-- Applies retention, forgets idle producers and the ids past the dedupe
-- window (KEYS 6-9, see `idem`), then brings every per-message consumer
-- up to now (expired leases released or dead-lettered). ARGV 7 the
-- producer idle timeout (microseconds). Returns how many messages
-- retention dropped; for each per-message consumer with dead-letter
-- moves under way, its id and the moves (see `moves`); and when the
-- topic next has work for a sweep, in microseconds since the epoch (''
-- when nothing here expires by time; now when it has per-message
-- consumers, whose leases and redeliveries are brought up to date at
-- every sweep).
local t = topic(GEN)
local dropped = retain(t)
if dropped > 0 then
  save(t)
end
local k = idem()
local idle_us = num(ARGV[7])
expire_producers(k, NOW_US - idle_us, 1000)
if string.match(t.dw, '[1-9]') then
  expire_ids(k, ns_minus(NOW, t.dw), 10000)
end
local pending = {}
local per_message = false
local all = redis.call('HGETALL', CONS)
for i = 1, #all, 2 do
  if string.match(all[i + 1], '^%S+ %S+ p ') then
    per_message = true
    local id = all[i]
    local c = consumer(id)
    refresh(t, c)
    store_consumer(id, c)
    local m = moves(c)
    if #m > 0 then
      pending[#pending + 1] = id
      pending[#pending + 1] = m
    end
  end
end

-- When the next sweep of this topic has work: the earliest of its oldest
-- message ageing out, its least recently used producer going idle, its
-- oldest remembered id leaving the dedupe window (nanosecond times
-- rounded down to microseconds: early rather than late).
local next_us = nil
local function sooner(us)
  if next_us == nil or us < next_us then
    next_us = us
  end
end
if per_message then
  sooner(NOW_US)
end
local age = t.ra or D_AGE
if age ~= '' and string.match(age, '[1-9]') and t.stop > t.start then
  local first = redis.call('XRANGE', LOG, str(t.start), '+', 'COUNT', 1)
  if #first > 0 then
    sooner(math.floor((num(entry_time(first[1])) + num(age)) / 1000))
  end
end
local oldest = redis.call('ZRANGE', k.use, 0, 0, 'WITHSCORES')
if #oldest == 2 then
  sooner(num(oldest[2]) + idle_us)
end
if string.match(t.dw, '[1-9]') then
  local head = redis.call('LINDEX', k.order, 0)
  if head then
    sooner(math.floor((num(string.match(head, '^%d+')) + num(t.dw)) / 1000))
  end
end
return {dropped, pending, next_us and str(next_us) or ''}
