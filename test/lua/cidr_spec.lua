package.path = "lua/?.lua;" .. package.path
local cidr = require "edgeroute.policy.cidr"

local function v4(a, b, c, d)
    return string.char(a, b, c, d)
end

local function v6(text)
    return assert(cidr.parse(text)).bytes
end

describe("cidr.parse", function()
    for _, text in ipairs({ "10.0.0.0/8", "192.168.1.7", "0.0.0.0/0", "2001:db8::/32", "::1", "::", "::ffff:10.1.2.3", "fe80::1:2:3:4:5/64", "1:2:3:4:5:6:7:8", "10.0.0.0/032" }) do
        it("accepts " .. text, function()
            assert.is_table(cidr.parse(text))
        end)
    end
    for _, text in ipairs({ "10.0.0/8", "300.0.0.0/8", "10.0.0.0/33", "010.0.0.0/8", "2001:db8::/129", "1::2::3", "1:2:3:4:5:6:7:8:9", "hello", "", "10.0.0.0/", "/8", "12345::", "10.0.0.0/0032", "fe80::1%eth0" }) do
        it("refuses " .. text, function()
            local parsed, err = cidr.parse(text)
            assert.is_nil(parsed)
            assert.are.equal("not an IPv4 or IPv6 CIDR", err)
        end)
    end
end)

describe("cidr.contains", function()
    it("matches IPv4 prefixes, whole and partial bytes", function()
        assert.is_true(cidr.contains(cidr.parse("10.0.0.0/8"), v4(10, 200, 3, 4)))
        assert.is_false(cidr.contains(cidr.parse("10.0.0.0/8"), v4(11, 0, 0, 1)))
        assert.is_true(cidr.contains(cidr.parse("172.16.0.0/12"), v4(172, 31, 255, 255)))
        assert.is_false(cidr.contains(cidr.parse("172.16.0.0/12"), v4(172, 32, 0, 0)))
        assert.is_true(cidr.contains(cidr.parse("0.0.0.0/0"), v4(8, 8, 8, 8)))
        assert.is_true(cidr.contains(cidr.parse("192.168.1.7"), v4(192, 168, 1, 7)))
        assert.is_false(cidr.contains(cidr.parse("192.168.1.7"), v4(192, 168, 1, 8)))
    end)

    it("matches IPv6 prefixes", function()
        assert.is_true(cidr.contains(cidr.parse("2001:db8::/32"), v6("2001:db8:ffff::1")))
        assert.is_false(cidr.contains(cidr.parse("2001:db8::/32"), v6("2001:db9::1")))
        assert.is_true(cidr.contains(cidr.parse("::1/128"), v6("::1")))
    end)

    it("matches IPv4 CIDRs against IPv4-mapped IPv6 clients", function()
        assert.is_true(cidr.contains(cidr.parse("10.0.0.0/8"), v6("::ffff:10.1.2.3")))
        assert.is_false(cidr.contains(cidr.parse("10.0.0.0/8"), v6("2001:db8::1")))
    end)
end)
