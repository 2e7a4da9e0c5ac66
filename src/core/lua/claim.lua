-- claim.lua: atomically claim session S for a new run (DESIGN §5 invariant 1).
-- KEYS: 1 run, 2 seq, 3 events, 4 lease, 5 ctl, 6 pending, 7 resolved, 8 pendorder
-- ARGV: 1 runId, 2 provider, 3 owner, 4 request JSON, 5 hwm seq (SQLite), 6 lease ms,
--       7 now ms
-- Returns the seq counter after the claim (the high-water mark before the run).
-- Errors: "CONFLICT <runId>" while another run runs; "STALE ..." when runId already
-- completed (an id is never reused).
local run = redis.call('HMGET', KEYS[1], 'runId', 'status', 'claimSeq')
if run[2] == 'running' then
    if run[1] == ARGV[1] then
        -- The same claim again (a retry after a lost reply): answer as the first time.
        redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[6])
        return tonumber(run[3] or '0')
    end
    return redis.error_reply('CONFLICT ' .. tostring(run[1]))
end
if run[1] == ARGV[1] then
    return redis.error_reply('STALE run ' .. ARGV[1] .. ' has already completed')
end

-- seq never goes backwards: take the largest of the counter, the newest stream entry
-- and the high-water mark SQLite knows (the counter may be gone after a Redis loss).
local seq = cgw_last_num(KEYS[2], KEYS[3])
local hwm = tonumber(ARGV[5])
if hwm > seq then
    seq = hwm
end
local s = string.format('%d', seq)
redis.call('SET', KEYS[2], s)

redis.call('DEL', KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
redis.call('HSET', KEYS[1], 'runId', ARGV[1], 'status', 'running', 'provider', ARGV[2],
           'owner', ARGV[3], 'request', ARGV[4], 'startedMs', ARGV[7], 'claimSeq', s)
redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[6])
redis.call('PERSIST', KEYS[3])
return seq
