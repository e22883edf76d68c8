-- The sticky percentage bucket on HAProxy nodes: hash(seed, app, key) mod
-- 10000, the same as agent/policy/bucket.ts and the nginx plugin's
-- lua/edgeroute/policy/bucket.lua, so a user lands in the same bucket on
-- every routing node. HAProxy embeds Lua 5.3 (no LuaJIT "bit"): bit32 is
-- there (LUA_COMPAT_5_2), and the arithmetic stays below 2^53 so it also
-- runs on Lua 5.2, where the unit tests run.

local bxor = bit32.bxor
local rshift = bit32.rshift
local byte = string.byte
local floor = math.floor

local _M = { _VERSION = "0.1.0", BUCKETS = 10000 }

local FNV_OFFSET = 0x811c9dc5
local TWO_16 = 65536
local TWO_32 = 4294967296


-- 32-bit multiplication modulo 2^32 of two unsigned 32-bit numbers, built
-- from 16-bit halves so no product passes 2^49.
local function imul(a, b)
    local alo, ahi = a % TWO_16, floor(a / TWO_16)
    local blo, bhi = b % TWO_16, floor(b / TWO_16)
    return (alo * blo + ((ahi * blo + alo * bhi) % TWO_16) * TWO_16) % TWO_32
end
_M.imul = imul


-- One FNV-1a step: (hash ^ byte) times the prime, 2^24 + 403, modulo 2^32.
-- x * 2^24 modulo 2^32 is (x modulo 2^8) * 2^24, and the sum stays under
-- 2^42, exact in a double: three operations instead of imul's dozen.
local function fnv_step(hash, octet)
    local x = bxor(hash, octet)
    return (x * 403 + (x % 256) * 16777216) % TWO_32
end


-- The FNV state after `prefix` (seed .. "\0" .. app .. "\0"): the same for
-- every request of a policy, so computed once per policy.
function _M.prefix_hash(prefix)
    local hash = FNV_OFFSET
    for i = 1, #prefix do
        hash = fnv_step(hash, byte(prefix, i))
    end
    return hash
end


-- The bucket of `key` under a policy whose prefix_hash is `hash`.
function _M.bucket_from(hash, key)
    for i = 1, #key do
        hash = fnv_step(hash, byte(key, i))
    end
    hash = bxor(hash, rshift(hash, 16))
    hash = imul(hash, 0x85ebca6b)
    hash = bxor(hash, rshift(hash, 13))
    hash = imul(hash, 0xc2b2ae35)
    hash = bxor(hash, rshift(hash, 16))
    return floor(hash % 10000)
end


function _M.bucket(prefix, key)
    return _M.bucket_from(_M.prefix_hash(prefix), key)
end


function _M.prefix(seed, app)
    return seed .. "\0" .. app .. "\0"
end


return _M
