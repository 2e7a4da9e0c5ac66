-- lease.lua: refresh the lease of the running run, or restore the run after Redis lost it.
-- KEYS: 1 run, 2 lease; restore: 3 seq, 4 events, 5 the owner's running set
-- ARGV: 1 runId, 2 lease ms; restore: 3 floor (the runner's last published seq),
--       4 provider, 5 owner, 6 request JSON, 7 startedMs, 8 now ms, 9 session id, then
--       field, value pairs (runnerHost, runnerPid, cliPgid)
-- Returns 1 (refresh), or the seq counter (restore). Errors: "STALE ..." when runId is
-- not the running run (reaped, completed or replaced); "NOT_FOUND ..." (refresh only)
-- when there is no run hash at all: a Redis that lost its data (restarted without
-- persistence, a replica promoted before it had the claim).
-- A restore writes only when the run hash is absent entirely: a hash that records
-- another run, or this one completed, is never overwritten (the run is not ours then).
local run = redis.call('HMGET', KEYS[1], 'runId', 'status')
if not run[1] and #ARGV > 2 and redis.call('EXISTS', KEYS[1]) == 0 then
    local seq = cgw_last_num(KEYS[3], KEYS[4])
    local floor = tonumber(ARGV[3])
    if floor > seq then
        seq = floor
    end
    local s = string.format('%d', seq)
    redis.call('SET', KEYS[3], s)
    redis.call('HSET', KEYS[1], 'runId', ARGV[1], 'status', 'running', 'provider', ARGV[4],
               'owner', ARGV[5], 'request', ARGV[6], 'startedMs', ARGV[7], 'claimSeq', s,
               'restoredMs', ARGV[8])
    for i = 10, #ARGV - 1, 2 do
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
    redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
    redis.call('PERSIST', KEYS[4])
    if KEYS[5] == 'cgw:{u:' .. ARGV[5] .. '}:running' then
        redis.call('SADD', KEYS[5], ARGV[9])
    end
    return seq
end
if not run[1] and redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.error_reply('NOT_FOUND the run hash of run ' .. ARGV[1] .. ' is gone')
end
if run[1] ~= ARGV[1] or run[2] ~= 'running' then
    return redis.error_reply('STALE run ' .. ARGV[1] .. ' is not the running run')
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
if #ARGV > 2 then
    return tonumber(redis.call('GET', KEYS[3]) or '0')
end
return 1
