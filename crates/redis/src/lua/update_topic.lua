-- ARGV 7-9 for messages, bytes and age: 'keep', 'default', or the new
-- override; 10 for the dedupe window: 'keep', 'default' (off) or the new
-- window in ns. Applies the retention in force at once; turning the
-- window off forgets every id (KEYS 6-9, see `idem`), and a shorter one
-- applies from the next lookup on.
local t = topic(GEN)
for i, name in ipairs({'rm', 'rb', 'ra', 'dw'}) do
  local v = ARGV[6 + i]
  if v == 'default' then
    redis.call('HDEL', META, name)
    t[name] = false
  elseif v ~= 'keep' then
    redis.call('HSET', META, name, v)
    t[name] = v
  end
end
if not string.match(t.dw or '', '[1-9]') then
  t.dw = ''
  redis.call('HDEL', META, 'dw')
  forget_ids(idem())
end
if retain(t) > 0 then
  save(t)
end
return describe(t)
