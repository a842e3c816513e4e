-- ARGV 7 the id.
local t = topic(GEN)
return info(t, ARGV[7], consumer(ARGV[7]))
