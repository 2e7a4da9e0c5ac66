-- prelude.lua: helpers that build-aux/embed.sh puts before every script (one copy).
-- Numbers never go backwards: a counter key may be gone after a Redis data loss while
-- its stream survives, so the last number is the larger of the two.

-- The number in a stream entry id "<n>-0" (0 when it has none).
local function cgw_entry_num(id)
    return tonumber(string.match(id, '^(%d+)')) or 0
end

-- The last number assigned through counter key ckey and stream skey: the larger of
-- the counter and the newest entry id.
local function cgw_last_num(ckey, skey)
    local n = tonumber(redis.call('GET', ckey) or '0')
    local top = redis.call('XREVRANGE', skey, '+', '-', 'COUNT', 1)
    if #top > 0 then
        local t = cgw_entry_num(top[1][1])
        if t > n then
            n = t
        end
    end
    return n
end
-- end of prelude.lua
