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

-- The functions below return `(f(...))`, not `f(...)`: a tail call counts
-- towards LuaJIT's loop-unrolling limit while it records a trace, and a
-- key's few dozen of them aborted the trace of the request path around the
-- hash ("loop unroll limit reached").
-- FNV's 32-bit prime is 2^24 + 403.
local FNV_PRIME_LOW = 403


-- 32-bit multiplication modulo 2^32 (Math.imul). A double holds integers
-- up to 2^53 exactly and tobit wraps one up to 2^51 to 32 bits, so `a`
-- (32 bits) times one 16-bit half of `b` at a time is exact: two products
-- instead of four and their carries.
local function imul(a, b)
    local low = a * band(b, 0xffff)
    local high = tobit(a * rshift(b, 16))
    return (tobit(low + lshift(high, 16)))
end
_M.imul = imul


-- One FNV-1a step: (hash ^ byte) times the prime, modulo 2^32. The sum is
-- under 2^41, exact in a double. Per byte of every percentage rule's key:
-- a shift and one product instead of imul's work.
local function fnv_step(hash, octet)
    local x = bxor(hash, octet)
    return (tobit(x * FNV_PRIME_LOW + lshift(x, 24)))
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


local function four_bytes(hash, key, i)
    local a, b, c, d = byte(key, i, i + 3)
    return (fnv_step(fnv_step(fnv_step(fnv_step(hash, a), b), c), d))
end


-- The first whole four-byte groups of a key of up to UNROLLED bytes, with
-- no loop: LuaJIT cannot compile a loop inside the trace of the request
-- path around it (it aborts that trace, and after a few tries leaves the
-- path to its interpreter; see BENCHMARKS.md, "Not always compiled"), but
-- it compiles each length's way through these tests. Returns the hash and
-- the index of the first byte left.
local UNROLLED = 64

local function head(hash, key, length)
    if length < 4 then
        return hash, 1
    end
    hash = four_bytes(hash, key, 1)
    if length < 8 then
        return hash, 5
    end
    hash = four_bytes(hash, key, 5)
    if length < 12 then
        return hash, 9
    end
    hash = four_bytes(hash, key, 9)
    if length < 16 then
        return hash, 13
    end
    hash = four_bytes(hash, key, 13)
    if length < 20 then
        return hash, 17
    end
    hash = four_bytes(hash, key, 17)
    if length < 24 then
        return hash, 21
    end
    hash = four_bytes(hash, key, 21)
    if length < 28 then
        return hash, 25
    end
    hash = four_bytes(hash, key, 25)
    if length < 32 then
        return hash, 29
    end
    hash = four_bytes(hash, key, 29)
    if length < 36 then
        return hash, 33
    end
    hash = four_bytes(hash, key, 33)
    if length < 40 then
        return hash, 37
    end
    hash = four_bytes(hash, key, 37)
    if length < 44 then
        return hash, 41
    end
    hash = four_bytes(hash, key, 41)
    if length < 48 then
        return hash, 45
    end
    hash = four_bytes(hash, key, 45)
    if length < 52 then
        return hash, 49
    end
    hash = four_bytes(hash, key, 49)
    if length < 56 then
        return hash, 53
    end
    hash = four_bytes(hash, key, 53)
    if length < 60 then
        return hash, 57
    end
    hash = four_bytes(hash, key, 57)
    if length < 64 then
        return hash, 61
    end
    hash = four_bytes(hash, key, 61)
    return hash, 65
end


-- The bucket of `key` under a policy whose prefix_hash is `hash`. Keys of
-- up to 64 bytes (a user id, a session cookie, an address) go without a
-- loop; longer ones take four bytes a turn.
function _M.bucket_from(hash, key)
    local length = #key
    local i
    if length <= UNROLLED then
        hash, i = head(hash, key, length)
    else
        i = 1
        while i + 3 <= length do
            hash = four_bytes(hash, key, i)
            i = i + 4
        end
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
