-- set_runner.lua: record which process runs the running run.
-- KEYS: 1 run
-- ARGV: 1 runId, 2 runner host, 3 runner pid
-- Returns 1. Error "STALE ..." when runId is not the running run.
local run = redis.call('HMGET', KEYS[1], 'runId', 'status')
if run[1] ~= ARGV[1] or run[2] ~= 'running' then
    return redis.error_reply('STALE run ' .. ARGV[1] .. ' is not the running run')
end
redis.call('HSET', KEYS[1], 'runnerHost', ARGV[2], 'runnerPid', ARGV[3])
return 1
