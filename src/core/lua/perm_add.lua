-- perm_add.lua: record an open permission request of the running run.
-- KEYS: 1 run, 2 pending, 3 resolved, 4 pendorder
-- ARGV: 1 runId, 2 requestId, 3 permission_request JSON
-- Returns 1. Errors: "STALE ..." when runId is not the running run, "CONFLICT ..."
-- when the request was already answered.
local run = redis.call('HMGET', KEYS[1], 'runId', 'status')
if run[1] ~= ARGV[1] or run[2] ~= 'running' then
    return redis.error_reply('STALE run ' .. ARGV[1] .. ' is not the running run')
end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then
    return redis.error_reply('CONFLICT permission request ' .. ARGV[2] .. ' was already answered')
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
-- The order of arrival, for listing oldest first (a retry keeps the first place).
if not redis.call('ZSCORE', KEYS[4], ARGV[2]) then
    local n = redis.call('HINCRBY', KEYS[1], 'permSeq', 1)
    redis.call('ZADD', KEYS[4], n, ARGV[2])
end
return 1
