-- perm_resolve.lua: answer (or cancel) a permission request; the first answer wins.
-- KEYS: 1 pending, 2 resolved, 3 ctl, 4 pendorder
-- ARGV: 1 requestId, 2 outcome ("allow", "deny", "cancelled"), 3 decision JSON to push
--       onto the control list ("" = push nothing)
-- Returns 1, or 0 for a repeated cancel. Errors: "CONFLICT <outcome>" when it was
-- answered already, "NOT_FOUND ..." when it is not known.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('ZREM', KEYS[4], ARGV[1])
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
    if ARGV[3] ~= '' then
        redis.call('RPUSH', KEYS[3], ARGV[3])
    end
    return 1
end
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev then
    -- Cancelling twice is what a retried cancel looks like: not a conflict.
    if prev == 'cancelled' and ARGV[2] == 'cancelled' then
        return 0
    end
    return redis.error_reply('CONFLICT ' .. prev)
end
return redis.error_reply('NOT_FOUND permission request ' .. ARGV[1] .. ' is not pending')
