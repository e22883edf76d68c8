package.path = "lua/?.lua;" .. package.path
local check = require "edgeroute.policy.check"
local matcher = require "edgeroute.policy.matcher"
local bucket = require "edgeroute.policy.bucket"
local unrolled = require "edgeroute.policy.unrolled"

-- Unit tests have no PCRE: regexes here are Lua patterns; the nginx
-- integration tests exercise real PCRE.
local function regex_ok(pattern)
    if pattern == "(" then
        return false, "missing )"
    end
    if pattern:find("[\n\r]") then
        -- As PCRE's message does, repeating the pattern raw.
        return false, 'pcre_compile() failed: missing ) in "' .. pattern .. '"'
    end
    return true
end

local function re_find(subject, pattern)
    return string.find(subject, pattern) ~= nil
end

local function request(vars, region)
    return {
        get = function(name)
            return vars[name] or false
        end,
        re_find = re_find,
        -- As the plugin's: the region, and the address as given (none read here).
        region = function(addr)
            return region, addr
        end,
    }
end

-- Every case is decided twice, by the policy written out and by the walk,
-- and both must agree.
local function choose(policy, vars, region)
    assert.is_nil(check.check(policy, regex_ok))
    local compiled = matcher.compile(policy, "/shop")
    assert.is_function(compiled.run, compiled.walk_reason)
    local written = matcher.choose(compiled, request(vars, region))
    local walked = matcher.choose(matcher.compile(policy, "/shop", { walk = true }), request(vars, region))
    assert.are.equal(walked, written)
    return written
end

describe("policy check", function()
    local cases = {
        { "a non-object", "[]", nil },
        { "an unknown top-level field", { defualt = "x" }, '/: unknown field "defualt"' },
        { "a bad default", { default = "no spaces" }, "/default: must be a version name" },
        { "rules that are not an array", { rules = { a = 1 } }, "/rules: must be an array" },
        { "a rule without version", { rules = { { match = { ip = { "10.0.0.0/8" } } } } }, '/rules/0: missing field "version"' },
        { "an unknown matcher", { rules = { { match = { devcie = {} }, version = "g" } } }, '/rules/0/match: unknown field "devcie"' },
        { "an empty match", { rules = { { match = {}, version = "g" } } }, "/rules/0/match: must be an object with at least one matcher" },
        { "a bad CIDR", { rules = { { match = { ip = { "10.0.0.0/8", "10.0.0/8" } }, version = "g" } } }, '/rules/0/match/ip/1: "10.0.0/8" is not an IPv4 or IPv6 CIDR' },
        { "a bad regex", { rules = { { match = { device = { pattern = "(" } }, version = "g" } } }, '/rules/0/match/device/pattern: "(" is not a valid regex (missing ))' },
        { "values and pattern together", { rules = { { match = { cookie = { name = "c", values = { "1" }, pattern = "x" } }, version = "g" } } }, "/rules/0/match/cookie: needs exactly one of values, pattern or patterns" },
        { "a cookie without name", { rules = { { match = { cookie = { values = { "1" } } }, version = "g" } } }, '/rules/0/match/cookie: missing field "name"' },
        { "a percentage out of range", { rules = { { match = { percentage = { value = 101, by = "ip" } }, version = "g" } } }, "/rules/0/match/percentage/value: must be a number from 0 to 100" },
        { "a percentage finer than 0.01", { rules = { { match = { percentage = { value = 5.005, by = "ip" } }, version = "g" } } }, "/rules/0/match/percentage/value: 5.005 is not in steps of 0.01" },
        { "a bad percentage key", { rules = { { match = { percentage = { value = 5, by = "session" } }, version = "g" } } }, '/rules/0/match/percentage/by: must be "ip", "cookie:NAME" or "header:NAME"' },
        { "a string as ip list", { rules = { { match = { ip = "10.0.0.0/8" }, version = "g" } } }, "/rules/0/match/ip: must be a non-empty array" },
        { "a number as device", { rules = { { match = { device = 7 }, version = "g" } } }, "/rules/0/match/device: must be an object" },
    }
    for _, case in ipairs(cases) do
        it("refuses " .. case[1], function()
            local policy = case[2] == "[]" and { 1, 2 } or case[2]
            local err = check.check(policy, regex_ok)
            assert.is_string(err)
            if case[3] then
                assert.are.equal(case[3], err:sub(1, #case[3]))
            end
        end)
    end

    it("escapes the regex engine's message, which repeats the pattern raw", function()
        local err = check.check({ rules = { { match = { device = { pattern = "(a\n2026/11/22 [emerg] forged" } }, version = "g" } } }, regex_ok)
        assert.is_nil(err:find("[\n\r]"))
        assert.truthy(err:find('(pcre_compile() failed: missing ) in \\"(a\\n2026/11/22 [emerg] forged\\")', 1, true))
    end)

    it("accepts the documented example", function()
        assert.is_nil(check.check({
            default = "stable",
            seed = "checkout-2026-11",
            rules = {
                { name = "testers", match = { cookie = { name = "grey", values = { "1" } } }, version = "grey" },
                { name = "staff", match = { ip = { "10.0.0.0/8", "2001:db8::/32" } }, version = "grey" },
                { name = "xiaomi", match = { device = { header = "X-Device-Model", patterns = { "^MI %d" } } }, version = "grey" },
                { name = "north", match = { region = { "beijing", "tianjin" } }, version = "grey" },
                { name = "beta-arg", match = { arg = { name = "ab", values = { "b" } } }, version = "grey" },
                { name = "5pct", match = { percentage = { value = 5, by = "cookie:uid" } }, version = "grey" },
            },
        }, regex_ok))
    end)
end)

describe("policy choose", function()
    it("returns the first matching rule's version, in order", function()
        local policy = {
            rules = {
                { match = { header = { name = "X-Canary", values = { "always" } } }, version = "canary" },
                { match = { header = { name = "X-Canary", pattern = "^al" } }, version = "second" },
            },
        }
        assert.are.equal("canary", choose(policy, { http_x_canary = "always" }))
        assert.are.equal("second", choose(policy, { http_x_canary = "almost" }))
        assert.are.equal("stable", choose(policy, {}))
    end)

    it("needs every matcher of a rule to hold", function()
        local policy = { default = "blue", rules = { { match = { cookie = { name = "grey", values = { "1" } }, arg = { name = "ab", values = { "b" } } }, version = "grey" } } }
        assert.are.equal("grey", choose(policy, { cookie_grey = "1", arg_ab = "b" }))
        assert.are.equal("blue", choose(policy, { cookie_grey = "1" }))
    end)

    it("reads User-Agent, or the named device header", function()
        assert.are.equal("grey", choose({ rules = { { match = { device = { patterns = { "iPhone OS 1[78]_" } } }, version = "grey" } } }, { http_user_agent = "Mozilla (iPhone OS 17_2 like Mac OS X)" }))
        assert.are.equal("grey", choose({ rules = { { match = { device = { header = "X-Device-Model", pattern = "^MI %d" } }, version = "grey" } } }, { http_x_device_model = "MI 9" }))
    end)

    it("matches client addresses against CIDRs", function()
        local policy = { rules = { { match = { ip = { "10.0.0.0/8" } }, version = "staff" } } }
        assert.are.equal("staff", choose(policy, { binary_remote_addr = string.char(10, 1, 2, 3) }))
        assert.are.equal("stable", choose(policy, { binary_remote_addr = string.char(11, 1, 2, 3) }))
    end)

    it("matches the request's region", function()
        local policy = { rules = { { match = { region = { "beijing" } }, version = "north" } } }
        assert.are.equal("north", choose(policy, {}, "beijing"))
        assert.are.equal("stable", choose(policy, {}, "shanghai"))
        assert.are.equal("stable", choose(policy, {}, nil))
    end)

    it("takes a sticky percentage, and skips it when the key is absent", function()
        local policy = { seed = "s1", rules = { { match = { percentage = { value = 30, by = "cookie:uid" } }, version = "grey" } } }
        local prefix = bucket.prefix("s1", "/shop")
        for i = 1, 200 do
            local uid = "user-" .. i
            local expected = bucket.bucket(prefix, uid) < 3000 and "grey" or "stable"
            assert.are.equal(expected, choose(policy, { cookie_uid = uid }))
        end
        assert.are.equal("stable", choose(policy, {}))
    end)

    it("only adds users when the percentage grows", function()
        local function policy(value)
            return { rules = { { match = { percentage = { value = value, by = "cookie:uid" } }, version = "g" } } }
        end
        local at10, at25 = 0, 0
        for i = 1, 2000 do
            local vars = { cookie_uid = "u" .. i }
            local before, after = choose(policy(10), vars), choose(policy(25), vars)
            if before == "g" then
                at10 = at10 + 1
                assert.are.equal("g", after)
            end
            if after == "g" then
                at25 = at25 + 1
            end
        end
        assert.is_true(at10 > 100 and at25 > at10 * 2, at10 .. " then " .. at25)
    end)

    it("takes no one at 0% and everyone at 100%", function()
        for i = 1, 50 do
            assert.are.equal("stable", choose({ rules = { { match = { percentage = { value = 0, by = "ip" } }, version = "g" } } }, { remote_addr = "10.0.0." .. i }))
            assert.are.equal("g", choose({ rules = { { match = { percentage = { value = 100, by = "ip" } }, version = "g" } } }, { remote_addr = "10.0.0." .. i }))
        end
    end)
end)

describe("policy written out", function()
    local function both(policy, vars, region)
        local compiled = matcher.compile(policy, "/shop")
        local walked = matcher.compile(policy, "/shop", { walk = true })
        return matcher.choose(compiled, request(vars, region)), matcher.choose(walked, request(vars, region)), compiled
    end

    local function v6(...)
        return string.char(...)
    end
    local MAPPED = "\0\0\0\0\0\0\0\0\0\0\255\255"

    it("tests addresses as cidr.contains does: IPv4, IPv4-mapped, IPv6, odd prefix lengths, /0", function()
        local cidrs = { "10.0.0.0/8", "172.16.0.0/12", "192.168.1.128/25", "2001:db8::/32", "fe80::/10", "2001:db8:1::1/128", "0.0.0.0/0" }
        local addresses = {
            string.char(10, 9, 9, 9), string.char(11, 0, 0, 1), string.char(172, 31, 255, 255), string.char(172, 32, 0, 0),
            string.char(192, 168, 1, 200), string.char(192, 168, 1, 100), MAPPED .. string.char(10, 1, 1, 1),
            MAPPED .. string.char(172, 16, 0, 1), MAPPED .. string.char(192, 168, 1, 129),
            v6(0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), v6(0x20, 0x01, 0x0d, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
            v6(0xfe, 0xbf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), v6(0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
            v6(0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2), "", "abc",
        }
        for i, text in ipairs(cidrs) do
            -- Each CIDR alone (the last, /0, holds every IPv4 address and no IPv6 one), then all but it together.
            local alone = { rules = { { match = { ip = { text } }, version = "in" } } }
            local rest = {}
            for j = 1, #cidrs - 1 do
                if j ~= i then
                    rest[#rest + 1] = cidrs[j]
                end
            end
            local together = { rules = { { match = { ip = rest }, version = "in" } } }
            for _, addr in ipairs(addresses) do
                local written, walked = both(alone, { binary_remote_addr = addr })
                assert.are.equal(walked, written, text .. " and " .. addr:gsub(".", function(c) return string.format("%02x", c:byte()) end))
                written, walked = both(together, { binary_remote_addr = addr })
                assert.are.equal(walked, written, "all but " .. text)
            end
        end
        assert.are.equal("in", (both({ rules = { { match = { ip = { "10.0.0.0/8" } }, version = "in" } } }, { binary_remote_addr = MAPPED .. string.char(10, 1, 1, 1) })))
    end)

    it("decides random requests as the walk does, for a policy of every matcher kind", function()
        local policy = {
            seed = "bench",
            rules = {
                { match = { cookie = { name = "grey", values = { "1" } } }, version = "grey" },
                { match = { ip = { "10.0.0.0/8", "172.16.0.0/12", "2001:db8::/32" } }, version = "staff" },
                { match = { device = { header = "X-Device-Model", patterns = { "^MI %d" } } }, version = "xiaomi" },
                { match = { device = { patterns = { "iPhone OS 1[78]_", "iPad" } } }, version = "apple" },
                { match = { region = { "beijing", "tianjin" } }, version = "north" },
                { match = { arg = { name = "ab", values = { "b", "c" } }, cookie = { name = "beta", pattern = "^yes" } }, version = "both" },
                { match = { header = { name = "X-Canary", values = { "always" } } }, version = "canary" },
                { match = { percentage = { value = 12.5, by = "cookie:uid" }, device = { pattern = "Android" } }, version = "droid" },
                { match = { percentage = { value = 30, by = "ip" } }, version = "thirty" },
            },
        }
        math.randomseed(20261130)
        local function pick(list)
            return list[math.random(1, #list)]
        end
        local seen = {}
        for _ = 1, 5000 do
            local vars = {
                cookie_grey = pick({ nil, "1", "0" }),
                binary_remote_addr = pick({ string.char(10, 2, 3, 4), string.char(172, 20, 0, 1), string.char(8, 8, 8, 8), MAPPED .. string.char(10, 0, 0, 1) }),
                http_x_device_model = pick({ nil, "MI 9", "Pixel" }),
                http_user_agent = pick({ nil, "x iPhone OS 17_1", "iPad", "Android 14", "curl" }),
                arg_ab = pick({ nil, "b", "c", "a" }),
                cookie_beta = pick({ nil, "yes-please", "no" }),
                http_x_canary = pick({ nil, "always", "never" }),
                cookie_uid = pick({ nil, "", "u" .. math.random(1, 100000), string.rep("k", math.random(60, 70)) }),
                remote_addr = "10.0.0." .. math.random(1, 255),
            }
            local region = pick({ nil, "beijing", "shanghai" })
            local written, walked = both(policy, vars, region)
            assert.are.equal(walked, written)
            seen[written] = true
        end
        for _, version in ipairs({ "grey", "staff", "xiaomi", "apple", "north", "both", "canary", "droid", "thirty", "stable" }) do
            assert.is_true(seen[version], version .. " was never chosen")
        end
    end)

    it("reads each value once a request, however many rules test it", function()
        local policy = { rules = {
            { match = { device = { pattern = "iPhone" } }, version = "a" },
            { match = { device = { pattern = "iPad" } }, version = "b" },
            { match = { ip = { "10.0.0.0/8" } }, version = "c" },
            { match = { region = { "x" } }, version = "d" },
            { match = { ip = { "11.0.0.0/8" } }, version = "e" },
        } }
        local reads = {}
        local env = request({ http_user_agent = "curl", binary_remote_addr = string.char(12, 0, 0, 1) })
        local get = env.get
        env.get = function(name)
            reads[name] = (reads[name] or 0) + 1
            return get(name)
        end
        assert.are.equal("stable", matcher.choose(matcher.compile(policy, "/shop"), env))
        assert.are.same({ http_user_agent = 1, binary_remote_addr = 1 }, reads)
        -- Told to walk (a worker with many policies), it walks, asking for a value per test.
        reads = {}
        env.walk = true
        assert.are.equal("stable", matcher.choose(matcher.compile(policy, "/shop"), env))
        assert.are.same({ http_user_agent = 2, binary_remote_addr = 2 }, reads)
    end)

    it("writes out the largest policy it takes, with the same answers", function()
        local rules = {}
        for r = 1, 64 do
            local cidrs = {}
            for c = 1, 16 do
                cidrs[c] = string.format("2001:db8:%x:%x::1/127", r, c)
            end
            local patterns = {}
            for p = 1, 8 do
                patterns[p] = "^r" .. r .. "p" .. p .. "$"
            end
            rules[r] = { match = { ip = cidrs, device = { patterns = patterns } }, version = "v" .. r }
        end
        local policy = { rules = rules }
        assert.is_function(matcher.compile(policy, "/shop").run)
        local addr = v6(0x20, 0x01, 0x0d, 0xb8, 0, 64, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0)
        assert.are.equal("v64", (both(policy, { binary_remote_addr = addr, http_user_agent = "r64p8" })))
        assert.are.equal("stable", (both(policy, { binary_remote_addr = addr, http_user_agent = "r63p8" })))
    end)

    it("keeps the walk for a policy too large to write out, with the same answers", function()
        local many = {}
        for i = 1, 65 do
            many[i] = { match = { header = { name = "X-N", values = { tostring(i) } } }, version = "v" .. i }
        end
        local wide = {}
        for i = 1, 17 do
            wide[i] = "10." .. i .. ".0.0/16"
        end
        local values = {}
        for i = 1, 51 do
            values[i] = { match = { header = { name = "X-H" .. i, values = { "1" } }, cookie = { name = "c" .. i, values = { "1" } } }, version = "v" .. i }
        end
        for _, policy in ipairs({ { rules = many }, { rules = { { match = { ip = wide }, version = "in" } } }, { rules = values } }) do
            local compiled = matcher.compile(policy, "/shop")
            assert.is_nil(compiled.run)
            assert.are.equal(matcher.TOO_LARGE, compiled.walk_reason)
        end
        assert.are.equal("v65", (both({ rules = many }, { http_x_n = "65" })))
        assert.are.equal("in", (both({ rules = { { match = { ip = wide }, version = "in" } } }, { binary_remote_addr = string.char(10, 17, 1, 1) })))
        assert.are.equal("v51", (both({ rules = values }, { http_x_h51 = "1", cookie_c51 = "1" })))
    end)

    it("takes names, values and patterns from its constants, never from its source", function()
        local odd = "]] end os.exit(1) --[[\n\"'"
        local policy = { default = odd, rules = {
            { match = { cookie = { name = "c", values = { odd, "x" } } }, version = odd },
            { match = { header = { name = "X-Odd", pattern = odd }, percentage = { value = 50, by = "header:X-Odd" } }, version = odd },
        } }
        local compiled = matcher.compile(policy, "/shop")
        assert.is_function(compiled.run)
        local _, source = unrolled.build(compiled)
        -- No string literal, long string or comment: no text of the policy can be in it.
        assert.is_nil(source:find("[\"']"))
        assert.is_nil(source:find("%[=*%["))
        assert.is_nil(source:find("--", 1, true))
        assert.are.equal(odd, matcher.choose(compiled, request({ cookie_c = odd })))
        assert.are.equal(odd, matcher.choose(compiled, request({ cookie_c = "y" })))
    end)
end)

-- Found by fuzzing the plugin against the CLI's checker (test/fuzz): each
-- case below was decided differently on the two sides.
describe("policy check_text agrees with the CLI", function()
    local function problem(text)
        local policy, err = check.check_text(text, regex_ok)
        if policy then
            return nil
        end
        return err
    end

    it("refuses an empty array where an object belongs, and an empty object where an array does", function()
        assert.are.equal("/: must be a JSON object", problem("[]"))
        assert.are.equal("/rules: must be an array", problem('{"rules": {}}'))
        assert.is_nil(problem('{"rules": []}'))
        assert.is_nil(problem("{}"))
    end)

    it("refuses numbers and strings JSON.parse refuses", function()
        for _, text in ipairs({ '{"rules":[{"match":{"percentage":{"value":NaN,"by":"ip"}},"version":"g"}]}', '{"rules":[{"match":{"percentage":{"value":0x10,"by":"ip"}},"version":"g"}]}', '{"rules":[{"match":{"percentage":{"value":5.,"by":"ip"}},"version":"g"}]}', '{"seed":"a\tb"}' }) do
            assert.matches("^/: not valid JSON: ", problem(text))
        end
    end)

    it("counts lengths in characters, as JSON Schema's maxLength does", function()
        assert.is_nil(problem('{"seed":"' .. string.rep("é", 128) .. '"}'))
        assert.are.equal("/seed: longer than 128 characters", problem('{"seed":"' .. string.rep("é", 129) .. '"}'))
        assert.is_nil(problem('{"rules":[{"match":{"region":["' .. string.rep("😀", 128) .. '"]},"version":"g"}]}'))
    end)

    it("refuses text over 1 MiB, as the CLI does", function()
        local values = {}
        for i = 1, 300 do
            values[i] = '{"match":{"header":{"name":"X-A","values":["' .. string.rep("v", 4090) .. '"]}},"version":"g"}'
        end
        assert.are.equal("/: larger than 1048576 bytes", problem('{"rules":[' .. table.concat(values, ",", 1, 256) .. ']}'))
    end)

    it("quotes refused values on one line, cut short", function()
        local err = problem('{"rules":[{"match":{"ip":["10.0.0.1\\n2026/01/01 00:00:00 [emerg] forged"]},"version":"g"}]}')
        assert.are.equal('/rules/0/match/ip/0: "10.0.0.1\\n2026/01/01 00:00:00 [emerg] forged" is not an IPv4 or IPv6 CIDR', err)
        assert.is_nil(err:find("\n", 1, true))
        local long = problem('{"' .. string.rep("k", 5000) .. '": 1}')
        assert.is_true(#long < 200)
    end)
end)
