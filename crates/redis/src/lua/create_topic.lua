-- ARGV 7 creation time (ns), 8-10 retention overrides: messages, bytes,
-- age in ns ('' = the broker default), 11 the dedupe window in ns ('' =
-- off). GEN is the new topic's generation. KEYS 6-9: the idempotence keys
-- (see `idem`), which start empty.
if redis.call('EXISTS', META) == 1 then
  fail('GSEXISTS')
end
redis.call('DEL', LOG, CONS, IDS, OUT)
forget_all(idem())
local fields = {'HSET', META, 'gen', GEN, 'created', ARGV[7], 'start', '0', 'end', '0', 'bytes', '0', 'last', ''}
for i, name in ipairs({'rm', 'rb', 'ra', 'dw'}) do
  if ARGV[7 + i] ~= '' then
    fields[#fields + 1] = name
    fields[#fields + 1] = ARGV[7 + i]
  end
end
redis.call(unpack(fields))
return describe(topic(''))
