-- ARGV 7 the id, 8 the offset below which everything is processed.
local t = topic(GEN)
local id = ARGV[7]
local c = consumer(id)
if c.mode == 'p' then
  fail('GSPERMSG')
end
catch_up(c, t.start)
local o = tonumber(ARGV[8])
if o > c.offset then
  fail('GSBEYOND', str(c.offset))
end
if o > c.committed then
  c.committed = o
  while #c.out > 0 and c.out[1][1] <= o do
    table.remove(c.out, 1)
  end
end
store_consumer(id, c)
return info(t, id, c)
