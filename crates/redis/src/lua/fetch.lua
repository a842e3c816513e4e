-- ARGV 7 the consumer, 8 the most messages, 9 the most bytes, 10 '1' on
-- the last try of a wait (an empty batch is then the answer).
-- Returns the generation, whether it is an answer (1) or the caller should
-- wait (0), skipped, next offset, end offset, when a redelivery falls due
-- (microseconds, -1 for none), and the entries.
local t = topic(GEN)
local id = ARGV[7]
local c = consumer(id)
local d = due(c)
if d and NOW_US >= d then
  c.offset = c.committed
  c.out = {}
end
local skipped = catch_up(c, t.start)
local entries = collect(t, c.offset, tonumber(ARGV[8]), tonumber(ARGV[9]))
if #entries == 0 and ARGV[10] ~= '1' then
  store_consumer(id, c)
  return {t.gen, 0, str(skipped), str(c.offset), str(t.stop), str(due(c) or -1), {}}
end
if #entries > 0 then
  c.offset = c.offset + #entries
  if c.mode == 'a' then
    c.committed = c.offset
  elseif #c.out >= MAX_OUTSTANDING then
    c.out[#c.out][1] = c.offset
  else
    c.out[#c.out + 1] = {c.offset, NOW_US}
  end
end
store_consumer(id, c)
return {t.gen, 1, str(skipped), str(c.offset), str(t.stop), '-1', entries}
