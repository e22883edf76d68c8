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
