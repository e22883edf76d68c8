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

    -- Bit by bit, as the definition says: the first `bits` bits agree.
    local function reference(network, bits, addr)
        for i = 0, bits - 1 do
            local byte_index = math.floor(i / 8) + 1
            local shift = 2 ^ (7 - i % 8)
            if math.floor(network:byte(byte_index) / shift) % 2 ~= math.floor(addr:byte(byte_index) / shift) % 2 then
                return false
            end
        end
        return true
    end

    it("agrees with a bit-by-bit comparison at every prefix length, across word boundaries", function()
        math.randomseed(17)
        for _, length in ipairs({ 4, 16 }) do
            for bits = 0, length * 8 do
                for _ = 1, 20 do
                    local network, addr = {}, {}
                    for i = 1, length do
                        network[i] = math.random(0, 255)
                        addr[i] = network[i]
                    end
                    -- Flip one bit (or none): inside the prefix, on its edge, or after it.
                    local flip = math.random(0, length * 8)
                    if flip > 0 then
                        local i = math.floor((flip - 1) / 8) + 1
                        local mask = 2 ^ (7 - (flip - 1) % 8)
                        addr[i] = math.floor(addr[i] / mask) % 2 == 1 and addr[i] - mask or addr[i] + mask
                    end
                    local packed_network = string.char(unpack(network))
                    local packed_addr = string.char(unpack(addr))
                    local text
                    if length == 4 then
                        text = table.concat(network, ".") .. "/" .. bits
                    else
                        local groups = {}
                        for g = 1, 8 do
                            groups[g] = string.format("%x", network[2 * g - 1] * 256 + network[2 * g])
                        end
                        text = table.concat(groups, ":") .. "/" .. bits
                    end
                    local parsed = assert(cidr.parse(text))
                    assert.are.equal(reference(packed_network, bits, packed_addr), cidr.contains(parsed, packed_addr), text)
                end
            end
        end
    end)
end)


describe("cidr.any", function()
    local function list(...)
        local out = {}
        for i, text in ipairs({ ... }) do
            out[i] = assert(cidr.parse(text))
        end
        return out
    end

    it("is true when any CIDR of the list holds the address, at every place in lists of 0 to 5", function()
        local addr = v4(10, 1, 2, 3)
        assert.is_false(cidr.any({}, addr))
        for size = 1, 5 do
            for at = 1, size do
                local texts = {}
                for i = 1, size do
                    texts[i] = i == at and "10.1.0.0/16" or ("192.0." .. i .. ".0/24")
                end
                assert.is_true(cidr.any(list(unpack(texts)), addr), table.concat(texts, ","))
            end
            local none = {}
            for i = 1, size do
                none[i] = "192.0." .. i .. ".0/24"
            end
            assert.is_false(cidr.any(list(unpack(none)), addr), table.concat(none, ","))
        end
    end)
end)
