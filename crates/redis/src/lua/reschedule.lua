-- Records when swept topics next have work, in the due index (a sorted
-- set of topic -> microseconds since the epoch), on that key alone.
-- KEYS 1 the due index; ARGV in threes: a topic, its score when the sweep
-- read it ('' = absent), its next due time ('' = none). A topic whose
-- score changed meanwhile (a node noted a change to it) keeps the new
-- one: the next sweep looks at it again.
for i = 1, #ARGV, 3 do
  local topic, read, due = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local now = redis.call('ZSCORE', KEYS[1], topic)
  if (now == false and read == '') or (now ~= false and read ~= '' and tonumber(now) == tonumber(read)) then
    if due == '' then
      redis.call('ZREM', KEYS[1], topic)
    else
      redis.call('ZADD', KEYS[1], due, topic)
    end
  end
end
return #ARGV / 3
