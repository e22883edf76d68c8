-- The sticky percentage bucket: hash(seed, app, key) mod 10000, the same as
-- agent/policy/bucket.ts, so a user lands in the same bucket on every worker
-- and every routing node. FNV-1a over the bytes, then murmur3's finaliser.

local bit = require "bit"

local band = bit.band
local bxor = bit.bxor
local rshift = bit.rshift
local lshift = bit.lshift
local tobit = bit.tobit
local byte = string.byte

local _M = { _VERSION = "0.1.0", BUCKETS = 10000 }

local FNV_OFFSET = tobit(0x811c9dc5)
-- FNV's 32-bit prime is 2^24 + 403.
local FNV_PRIME_LOW = 403


-- 32-bit multiplication modulo 2^32 (Math.imul). A double holds integers
-- up to 2^53 exactly and tobit wraps one up to 2^51 to 32 bits, so `a`
-- (32 bits) times one 16-bit half of `b` at a time is exact: two products
-- instead of four and their carries.
local function imul(a, b)
    local low = a * band(b, 0xffff)
    local high = tobit(a * rshift(b, 16))
    return tobit(low + lshift(high, 16))
end
_M.imul = imul


-- One FNV-1a step: (hash ^ byte) times the prime, modulo 2^32. The sum is
-- under 2^41, exact in a double. Per byte of every percentage rule's key:
-- a shift and one product instead of imul's work.
local function fnv_step(hash, octet)
    local x = bxor(hash, octet)
    return tobit(x * FNV_PRIME_LOW + lshift(x, 24))
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


-- The bucket of `key` under a policy whose prefix_hash is `hash`. Four
-- bytes a turn and the last one to three without a loop: a loop inside the
-- request path can make LuaJIT give the path up to its interpreter (see
-- BENCHMARKS.md, "Not always compiled"), and this one turns a quarter as often.
function _M.bucket_from(hash, key)
    local length = #key
    local i = 1
    while i + 3 <= length do
        local a, b, c, d = byte(key, i, i + 3)
        hash = fnv_step(fnv_step(fnv_step(fnv_step(hash, a), b), c), d)
        i = i + 4
    end
    if i <= length then
        local a, b, c = byte(key, i, length)
        hash = fnv_step(hash, a)
        if b then
            hash = fnv_step(hash, b)
            if c then
                hash = fnv_step(hash, c)
            end
        end
    end
    hash = bxor(hash, rshift(hash, 16))
    hash = imul(hash, 0x85ebca6b)
    hash = bxor(hash, rshift(hash, 13))
    hash = imul(hash, 0xc2b2ae35)
    hash = bxor(hash, rshift(hash, 16))
    if hash < 0 then
        hash = hash + 4294967296
    end
    return hash % 10000
end


function _M.bucket(prefix, key)
    return _M.bucket_from(_M.prefix_hash(prefix), key)
end


function _M.prefix(seed, app)
    return seed .. "\0" .. app .. "\0"
end


return _M
