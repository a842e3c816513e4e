-- Applies retention, forgets idle producers and the ids past the dedupe
-- window (KEYS 6-9, see `idem`), then brings every per-message consumer
-- up to now (expired leases released or dead-lettered). ARGV 7 the
-- producer idle timeout (microseconds). Returns how many messages
-- retention dropped, then for each per-message consumer with dead-letter
-- moves under way, its id and the moves (see `moves`).
local t = topic(GEN)
local dropped = retain(t)
if dropped > 0 then
  save(t)
end
local k = idem()
expire_producers(k, NOW_US - num(ARGV[7]), 1000)
if string.match(t.dw, '[1-9]') then
  expire_ids(k, ns_minus(NOW, t.dw), 10000)
end
local pending = {}
local all = redis.call('HGETALL', CONS)
for i = 1, #all, 2 do
  if string.match(all[i + 1], '^%S+ %S+ p ') then
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
return {dropped, pending}
