local t = topic(GEN)
local dropped = retain(t)
if dropped > 0 then
  save(t)
end
return dropped
