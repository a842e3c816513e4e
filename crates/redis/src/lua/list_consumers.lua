-- ARGV 7 the id to list after ('' = from the first), 8 how many.
local t = topic(GEN)
local min = '-'
if ARGV[7] ~= '' then
  min = '(' .. ARGV[7]
end
local ids = redis.call('ZRANGEBYLEX', IDS, min, '+', 'LIMIT', 0, tonumber(ARGV[8]))
local out = {}
for i, id in ipairs(ids) do
  out[i] = info(t, id, consumer(id))
end
return out
