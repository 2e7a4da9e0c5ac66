-- set_runner.lua: record which process runs the running run.
-- KEYS: 1 run
-- ARGV: 1 runId, then field, value pairs (runnerHost, runnerPid; cliPgid)
-- Returns 1. Error "STALE ..." when runId is not the running run.
local run = redis.call('HMGET', KEYS[1], 'runId', 'status')
if run[1] ~= ARGV[1] or run[2] ~= 'running' then
    return redis.error_reply('STALE run ' .. ARGV[1] .. ' is not the running run')
end
for i = 2, #ARGV - 1, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
