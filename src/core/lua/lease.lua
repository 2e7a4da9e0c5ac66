-- lease.lua: refresh the lease of the running run.
-- KEYS: 1 run, 2 lease
-- ARGV: 1 runId, 2 lease ms
-- Returns 1. Error "STALE ..." when runId is not the running run (reaped or replaced).
local run = redis.call('HMGET', KEYS[1], 'runId', 'status')
if run[1] ~= ARGV[1] or run[2] ~= 'running' then
    return redis.error_reply('STALE run ' .. ARGV[1] .. ' is not the running run')
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
