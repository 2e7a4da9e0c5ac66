-- publish.lua: publish one event of the running run, or its complete (invariants 2, 3).
-- KEYS: 1 run, 2 seq, 3 events, 4 lease, 5 ctl, 6 pending, 7 resolved, 8 pendorder,
--       9 (complete and reap, when the run has an owner) the owner's running set
-- ARGV: 1 runId, 2 eventId, 3 event JSON without its final "}", 4 stream maxlen,
--       5 mode ("publish", "complete", "reap" = complete only if the lease expired, or
--       "batch"), 6 now ms, 7 stream ttl s (0 = none), 8 session id (for the notification),
--       9 floor: the highest seq the caller knows was assigned (its own last publish, or
--       the store's high-water mark; 0 = none);
--       batch: ARGV[2] is the id of the batch's last event, ARGV[3] is unused, and
--       ARGV[10], ARGV[11], ... are eventId, JSON pairs, published in order with
--       consecutive seqs, all or none (one notification).
-- Returns the (last) event's seq. Errors: "STALE ..." when runId is not the running run,
-- "NOT_FOUND ..." when there is no run hash at all (Redis lost its data: the runner
-- restores it with lease.lua), "CONFLICT ..." when reaping a run whose lease is alive.
local run = redis.call('HMGET', KEYS[1], 'runId', 'status', 'lastEventId', 'lastEventSeq', 'owner')
if not run[1] and redis.call('EXISTS', KEYS[1]) == 0 then
    return redis.error_reply('NOT_FOUND the run hash of run ' .. ARGV[1] .. ' is gone')
end
if run[1] ~= ARGV[1] then
    return redis.error_reply('STALE run ' .. ARGV[1] .. ' is not the running run')
end
-- The same event again (a retry after a lost reply) gets its first seq and adds nothing.
if run[3] == ARGV[2] then
    return tonumber(run[4])
end
if run[2] ~= 'running' then
    return redis.error_reply('STALE run ' .. ARGV[1] .. ' has completed')
end
local mode = ARGV[5]
if mode == 'reap' and redis.call('EXISTS', KEYS[4]) == 1 then
    return redis.error_reply('CONFLICT the lease of run ' .. ARGV[1] .. ' is alive')
end

-- Next seq after the counter, the newest entry and the caller's floor: XADD (the only
-- command here that can fail) never meets a smaller id, and a seq that a client may
-- have seen before Redis lost its last writes is never handed out again.
local seq = cgw_last_num(KEYS[2], KEYS[3])
local floor = tonumber(ARGV[9]) or 0
if floor > seq then
    seq = floor
end
local s
if mode == 'batch' then
    -- A retried batch is recognised by its last event id (above): the script is
    -- atomic, so either every event of it was added or none.
    for i = 10, #ARGV - 1, 2 do
        seq = seq + 1
        s = string.format('%d', seq)
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], s .. '-0', 'e',
                   ARGV[i + 1] .. ',"seq":' .. s .. '}')
    end
else
    seq = seq + 1
    s = string.format('%d', seq)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], s .. '-0', 'e', ARGV[3] .. ',"seq":' .. s .. '}')
end
redis.call('SET', KEYS[2], s)
redis.call('HSET', KEYS[1], 'lastEventId', ARGV[2], 'lastEventSeq', s)

if mode ~= 'publish' and mode ~= 'batch' then
    redis.call('HSET', KEYS[1], 'status', 'completed', 'completedMs', ARGV[6])
    redis.call('DEL', KEYS[4])
    local open = redis.call('HKEYS', KEYS[6])
    for _, id in ipairs(open) do
        redis.call('HSET', KEYS[7], id, 'cancelled')
    end
    redis.call('DEL', KEYS[5], KEYS[6], KEYS[8])
    -- The owner's running set counts this run no more (claim.lua would drop it too).
    if KEYS[9] and KEYS[9] == 'cgw:{u:' .. tostring(run[5]) .. '}:running' then
        redis.call('SREM', KEYS[9], ARGV[8])
    end
    -- The seq counter stays: it is tiny, and seq must not go backwards while Redis lives.
    local ttl = tonumber(ARGV[7])
    if ttl > 0 then
        redis.call('EXPIRE', KEYS[3], ttl)
        redis.call('EXPIRE', KEYS[1], ttl)
        redis.call('EXPIRE', KEYS[7], ttl)
    end
end
redis.call('PUBLISH', 'cgw:notify', ARGV[8] .. ' ' .. s)
return seq
