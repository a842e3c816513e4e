-- ARGV 7 the kind of position, 8 its value. Returns the generation and
-- the offset.
local t = topic(GEN)
return {t.gen, str(resolve(t, ARGV[7], ARGV[8]))}
