-- ARGV 7 the offset, 8 the most messages, 9 the most bytes. Returns the
-- generation, how many were skipped, the next offset, the end offset, and
-- the entries.
local t = topic(GEN)
local offset = tonumber(ARGV[7])
if offset > t.stop then
  fail('GSRANGE', str(t.start) .. ' ' .. str(t.stop))
end
local from = math.max(offset, t.start)
local entries = collect(t, from, tonumber(ARGV[8]), tonumber(ARGV[9]))
return {t.gen, str(from - offset), str(from + #entries), str(t.stop), entries}
