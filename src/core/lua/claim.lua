-- claim.lua: atomically claim session S for a new run (DESIGN §5 invariant 1), within
-- the owner's limit of running runs (count and claim in one script).
-- KEYS: 1 run, 2 seq, 3 events, 4 lease, 5 ctl, 6 pending, 7 resolved, 8 pendorder,
--       9 the owner's running set (cgw:{u:U}:running: session ids), 10.. the run hashes
--       of the set's members as the caller read them (declared only when asked: below)
-- ARGV: 1 runId, 2 provider, 3 owner, 4 request JSON, 5 hwm seq (SQLite), 6 lease ms,
--       7 now ms, 8 the owner's limit of running runs (0 = none), 9 session id S,
--       10.. the member session ids of KEYS[10..]
-- Returns the seq counter after the claim (the high-water mark before the run), or -1
-- when the set may be full and its members were not declared, or changed since the
-- caller read them: the caller reads them and calls again with them.
-- Errors: "CONFLICT <runId>" while another run runs; "STALE ..." when runId already
-- completed (an id is never reused); "LIMIT <n>" when the owner has n >= limit runs
-- running (nothing claimed).
-- The set's members are only hints: a member counts while its run hash says running
-- for this owner; the others (completed, reaped, expired) are dropped here.
local run = redis.call('HMGET', KEYS[1], 'runId', 'status', 'claimSeq')
if run[2] == 'running' and run[1] == ARGV[1] then
    -- The same claim again (a retry after a lost reply): answer as the first time.
    redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[6])
    redis.call('SADD', KEYS[9], ARGV[9])
    return tonumber(run[3] or '0')
end

-- The limit first, as the send handler always did: a user at the limit hears so even
-- for a session that runs. Below the set's size there is nothing to count.
local limit = tonumber(ARGV[8])
if limit > 0 and redis.call('SCARD', KEYS[9]) >= limit then
    -- Maybe full: count the members that really run, which needs their run hashes
    -- declared (KEYS[10..]), exactly for the members the set holds now.
    local declared = {}
    local ndeclared = #ARGV - 9
    for i = 1, ndeclared do
        declared[ARGV[9 + i]] = KEYS[9 + i]
    end
    local members = redis.call('SMEMBERS', KEYS[9])
    if #members ~= ndeclared then
        return -1
    end
    for _, m in ipairs(members) do
        if not declared[m] then
            return -1
        end
    end
    local n = 0
    for _, m in ipairs(members) do
        local r = redis.call('HMGET', declared[m], 'status', 'owner')
        if r[1] == 'running' and r[2] == ARGV[3] then
            n = n + 1
        else
            redis.call('SREM', KEYS[9], m)
        end
    end
    if n >= limit then
        return redis.error_reply('LIMIT ' .. n)
    end
end

if run[2] == 'running' then
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
redis.call('SADD', KEYS[9], ARGV[9])
return seq
