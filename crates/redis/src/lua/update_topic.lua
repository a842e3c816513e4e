-- ARGV 7-9 for messages, bytes and age: 'keep', 'default', or the new
-- override. Applies the retention in force at once.
local t = topic(GEN)
for i, name in ipairs({'rm', 'rb', 'ra'}) do
  local v = ARGV[6 + i]
  if v == 'default' then
    redis.call('HDEL', META, name)
    t[name] = false
  elseif v ~= 'keep' then
    redis.call('HSET', META, name, v)
    t[name] = v
  end
end
if retain(t) > 0 then
  save(t)
end
return describe(t)
