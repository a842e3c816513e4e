-- Takes or renews a lease. KEYS 1 the lease, ARGV 1 the node asking,
-- 2 the lease's length (ms). Returns 1 when that node holds it now, 0
-- when another does.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
