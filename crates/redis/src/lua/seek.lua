-- ARGV 7 the id, 8-9 the position (kind, value).
local t = topic(GEN)
local id = ARGV[7]
local c = consumer(id)
catch_up(c, t.start)
local o = resolve(t, ARGV[8], ARGV[9])
c.offset = o
c.committed = o
c.out = {}
store_consumer(id, c)
return info(t, id, c)
