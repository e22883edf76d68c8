-- The sticky percentage bucket: hash(seed, app, key) mod 10000, the same as
-- agent/policy/bucket.ts, so a user lands in the same bucket on every worker
-- and every routing node. FNV-1a over the bytes, then murmur3's finaliser.

local bit = require "bit"

local band = bit.band
local bxor = bit.bxor
local rshift = bit.rshift
local tobit = bit.tobit
local byte = string.byte

local _M = { _VERSION = "0.1.0", BUCKETS = 10000 }

local FNV_OFFSET = tobit(0x811c9dc5)
local FNV_PRIME = 0x01000193


-- 32-bit multiplication modulo 2^32 (Math.imul): doubles hold 53 bits, so
-- the product is built from 16-bit halves.
local function imul(a, b)
    local alo, ahi = band(a, 0xffff), band(rshift(a, 16), 0xffff)
    local blo, bhi = band(b, 0xffff), band(rshift(b, 16), 0xffff)
    return tobit(alo * blo + tobit((ahi * blo + alo * bhi) * 65536))
end
_M.imul = imul


-- The FNV state after `prefix` (seed .. "\0" .. app .. "\0"): the same for
-- every request of a policy, so computed once per policy.
function _M.prefix_hash(prefix)
    local hash = FNV_OFFSET
    for i = 1, #prefix do
        hash = imul(bxor(hash, byte(prefix, i)), FNV_PRIME)
    end
    return hash
end


-- The bucket of `key` under a policy whose prefix_hash is `hash`.
function _M.bucket_from(hash, key)
    for i = 1, #key do
        hash = imul(bxor(hash, byte(key, i)), FNV_PRIME)
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
