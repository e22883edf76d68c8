package.path = "lua/?.lua;" .. package.path
local bucket = require "edgeroute.policy.bucket"

describe("bucket", function()
    -- The same cases give the same buckets in agent/policy/bucket.ts.
    local cases = {
        { "", "/web", "user-1", 9214 },
        { "checkout-2026-11", "shop", "uid=42", 8191 },
        { "s", "a", "", 7883 },
        { "seed", "/app", "10.0.0.1", 3011 },
        { "ünï", "app", "ключ", 3747 },
    }
    for _, case in ipairs(cases) do
        it("matches the agent for " .. case[3], function()
            assert.are.equal(case[4], bucket.bucket(bucket.prefix(case[1], case[2]), case[3]))
        end)
    end

    it("multiplies modulo 2^32 like Math.imul", function()
        assert.are.equal(1, bucket.imul(0x7fffffff, 0x7fffffff))
        assert.are.equal(-2, bucket.imul(0x7fffffff, 2))
        assert.are.equal(0, bucket.imul(65536, 65536))
    end)

    it("multiplies like the four 16-bit partial products, for random operands", function()
        -- The schoolbook product of 16-bit halves, each part well under 2^53.
        local function reference(a, b)
            a, b = a % 4294967296, b % 4294967296
            local alo, ahi = a % 65536, math.floor(a / 65536)
            local blo, bhi = b % 65536, math.floor(b / 65536)
            local product = (alo * blo + ((ahi * blo + alo * bhi) % 65536) * 65536) % 4294967296
            return bit.tobit(product)
        end
        math.randomseed(20261130)
        for _ = 1, 20000 do
            local a = math.random(0, 4294967295) - 2147483648
            local b = math.random(0, 4294967295)
            assert.are.equal(reference(a, b), bucket.imul(a, b))
        end
    end)

    it("without a loop up to 64 bytes, four bytes a turn past them: the same bucket as byte by byte", function()
        local function byte_by_byte(prefix, key)
            local hash = bit.tobit(0x811c9dc5)
            local text = prefix .. key
            for i = 1, #text do
                hash = bucket.imul(bit.bxor(hash, text:byte(i)), 0x01000193)
            end
            hash = bit.bxor(hash, bit.rshift(hash, 16))
            hash = bucket.imul(hash, 0x85ebca6b)
            hash = bit.bxor(hash, bit.rshift(hash, 13))
            hash = bucket.imul(hash, 0xc2b2ae35)
            hash = bit.bxor(hash, bit.rshift(hash, 16))
            return (hash < 0 and hash + 4294967296 or hash) % 10000
        end
        local prefix = bucket.prefix("seed", "/app")
        for length = 0, 140 do
            local key = ("k\255\0" .. length):rep(40):sub(1, length)
            assert.are.equal(byte_by_byte(prefix, key), bucket.bucket(prefix, key), "a key of " .. length .. " bytes")
        end
    end)

    it("puts 5.00% of 100,000 users under a 5% bound, within a tenth of a point", function()
        local prefix = bucket.prefix("seed-1", "/shop")
        local taken = 0
        for i = 1, 100000 do
            if bucket.bucket(prefix, "user-" .. i) < 500 then
                taken = taken + 1
            end
        end
        assert.is_true(math.abs(taken / 1000 - 5) < 0.25, "took " .. taken / 1000 .. "%")
    end)
end)
