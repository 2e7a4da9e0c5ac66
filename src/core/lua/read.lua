-- read.lua: one consistent look at a session: counter, stream bounds, run, new events.
-- KEYS: 1 seq, 2 events, 3 run
-- ARGV: 1 after seq, 2 max count (0 = none, only "more"), 3 max bytes (0 = no limit)
-- Returns {lastSeq, firstSeq (0 = empty stream), status, runId, more (0|1),
--          {id1, json1, id2, json2, ...}}.
local last = cgw_last_num(KEYS[1], KEYS[2])
local first = 0
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #head > 0 then
    first = cgw_entry_num(head[1][1])
end
local run = redis.call('HMGET', KEYS[3], 'status', 'runId')

local after = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local out = {}
local more = 0
if after < last and first > 0 then
    local from = string.format('%d-0', after + 1)
    local got = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', count + 1)
    local bytes = 0
    for i, ent in ipairs(got) do
        local e = ent[2][2] or ''
        -- Always at least one event, so one large event cannot block a reader.
        if i > count or (#out > 0 and budget > 0 and bytes + #e > budget) then
            more = 1
            break
        end
        bytes = bytes + #e
        out[#out + 1] = ent[1]
        out[#out + 1] = e
    end
end
return {last, first, run[1] or '', run[2] or '', more, out}
