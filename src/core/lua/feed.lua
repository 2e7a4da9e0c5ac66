-- feed.lua: append one session_upserted frame to a user's session feed.
-- KEYS: 1 feed seq counter, 2 feed stream
-- ARGV: 1 frame JSON without its final "}", 2 stream maxlen, 3 notification payload
-- Returns the frame's feedSeq (per user, from 1, gapless while Redis keeps its data).
local seq = cgw_last_num(KEYS[1], KEYS[2])
seq = seq + 1
local s = string.format('%d', seq)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], s .. '-0', 'e', ARGV[1] .. ',"feedSeq":' .. s .. '}')
redis.call('SET', KEYS[1], s)
redis.call('PUBLISH', 'cgw:notify', ARGV[3] .. ' ' .. s)
return seq
