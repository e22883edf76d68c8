-- The Lua that runs inside HAProxy (Lua 5.3 there; these specs run on Lua
-- 5.2: busted --lua=lua5.2 test/lua-haproxy). The records are the ones
-- agent/dataplane/haproxy/lua-records.ts writes (test/unit/haproxy-lua-records.test.ts
-- checks the same texts from the agent's side).
package.path = "lua/?.lua;" .. package.path
local bucket = require "edgeroute.haproxy.bucket"
local record = require "edgeroute.haproxy.record"
local uri = require "edgeroute.haproxy.uri"
local request = require "edgeroute.haproxy.request"
local router_mod = require "edgeroute.haproxy.router"
local cidr = require "edgeroute.policy.cidr"

-- A regex stand-in with HAProxy's Regex interface, on Lua patterns: enough for these specs.
local function compile_regex(pattern)
    if pattern == "(" then
        return nil, "missing closing parenthesis"
    end
    return { exec = function(_, subject) return string.find(subject, pattern) ~= nil end }
end

describe("bucket on HAProxy nodes", function()
    -- The same cases as test/lua/bucket_spec.lua and agent/policy/bucket.ts.
    local cases = {
        { "", "/web", "user-1", 9214 },
        { "checkout-2026-11", "shop", "uid=42", 8191 },
        { "s", "a", "", 7883 },
        { "seed", "/app", "10.0.0.1", 3011 },
        { "ünï", "app", "ключ", 3747 },
    }
    for _, case in ipairs(cases) do
        it("matches the agent and nginx for " .. case[3], function()
            assert.are.equal(case[4], bucket.bucket(bucket.prefix(case[1], case[2]), case[3]))
        end)
    end

    it("multiplies modulo 2^32", function()
        assert.are.equal(1, bucket.imul(0x7fffffff, 0x7fffffff))
        assert.are.equal(4294967294, bucket.imul(0x7fffffff, 2))
        assert.are.equal(0, bucket.imul(65536, 65536))
    end)

    it("steps FNV by the prime's parts: the same bucket as imul byte by byte, for random keys", function()
        local function byte_by_byte(prefix, key)
            local hash = 0x811c9dc5
            local text = prefix .. key
            for i = 1, #text do
                hash = bucket.imul(bit32.bxor(hash, text:byte(i)), 0x01000193)
            end
            hash = bit32.bxor(hash, bit32.rshift(hash, 16))
            hash = bucket.imul(hash, 0x85ebca6b)
            hash = bit32.bxor(hash, bit32.rshift(hash, 13))
            hash = bucket.imul(hash, 0xc2b2ae35)
            hash = bit32.bxor(hash, bit32.rshift(hash, 16))
            return math.floor(hash % 10000)
        end
        math.randomseed(20261130)
        for n = 1, 500 do
            local bytes = {}
            for i = 1, math.random(0, 40) do
                bytes[i] = string.char(math.random(0, 255))
            end
            local prefix = bucket.prefix("seed" .. n, "/app")
            local key = table.concat(bytes)
            assert.are.equal(byte_by_byte(prefix, key), bucket.bucket_from(bucket.prefix_hash(prefix), key))
        end
    end)
end)

describe("records", function()
    it("decodes fields, lists and parts", function()
        local fields = record.fields("d=st%7Cable|v=a:pool-1,b%3Ax:pool-2|s=1")
        assert.are.same({ { "d", "st%7Cable" }, { "v", "a:pool-1,b%3Ax:pool-2" }, { "s", "1" } }, fields)
        assert.are.same({ "a:pool-1", "b%3Ax:pool-2" }, record.raw_items(fields[2][2]))
        assert.are.same({ "b:x", "pool-2" }, record.parts("b%3Ax:pool-2"))
        assert.are.same({ "x,y", "" }, record.list("x%2Cy,"))
        assert.are.same({}, record.list(""))
    end)

    it("reads a record split over several entries", function()
        local map = { ["a:x"] = "#3", ["a:x#1"] = "d=", ["a:x#2"] = "sta", ["a:x#3"] = "ble" }
        local lookup = function(k) return map[k] end
        assert.are.equal("d=stable", record.read(lookup, "a:x"))
        map["a:x#2"] = nil
        assert.is_nil(record.read(lookup, "a:x"))
        assert.is_nil(record.read(lookup, "a:y"))
    end)
end)

describe("uri", function()
    it("normalizes as nginx's $uri", function()
        assert.are.equal("/api/x", uri.normalize("/web/../api/x"))
        assert.are.equal("/api/x", uri.normalize("/x/%2e%2e/api//x"))
        assert.are.equal("/api/secret", uri.normalize("/api%2Fsecret"))
        assert.are.equal("/a/", uri.normalize("/a/."))
        assert.are.equal("/", uri.normalize("/a/.."))
        assert.are.equal("/a/b/", uri.normalize("/a/b/"))
        assert.are.equal("/", uri.normalize(""))
        assert.is_nil(uri.normalize("/../etc"))
    end)

    it("strips the routing prefix and escapes what may not go on the request line", function()
        assert.are.equal("/x", uri.strip("/api/x", "/api"))
        assert.are.equal("/", uri.strip("/api", "/api"))
        assert.are.equal("/api", uri.strip("/api", "/"))
        assert.are.equal("/a%20b%3F%25", uri.escape("/a b?%"))
        assert.is_truthy(uri.may_differ("/a//b"))
        assert.is_falsy(uri.may_differ("/a/b"))
    end)
end)

describe("request values", function()
    it("takes the first cookie of a name, without case", function()
        local c = request.cookies({ "uid=1; Grey=yes", "uid=2" })
        assert.are.equal("1", c.uid)
        assert.are.equal("yes", c.grey)
    end)

    it("takes the first argument of a name, raw, and only with =", function()
        local a = request.args("AB=b&ab=c&flag&x=%41")
        assert.are.equal("b", a.ab)
        assert.is_nil(a.flag)
        assert.are.equal("%41", a.x)
        assert.are.same({}, request.args(nil))
    end)
end)

describe("the router", function()
    local map
    local warnings
    local router
    before_each(function()
        warnings = {}
        map = {
            v = "1",
            ["h:shop.test"] = "p=%2F:%2Fweb,%2Fapi:%2Fapi",
            ["h:*.shop.test"] = "p=%2F:%2Fweb",
            ["h:only.test"] = "p=%2F:%2Fweb",
            ["a:%2Fweb"] = "d=stable|v=stable:pool-1,grey:pool-2|f=10.0.0.0%2F8|r=1|o=%2Fmy%2Fcontent%3Fa%3D1|h=1",
            ["a:%2Fapi"] = "d=stable|v=stable:pool-3|s=1|m=100|t=1500",
            ["a:%2Fops"] = "d=stable|v=stable:pool-5|b=Grafana%20(ops)|u=admin:%246%24salt%24abc,bob:%241%24s%24d",
            ["a:%2Fcut"] = "d=stable|v=stable:pool-6|b=ops",
            ["p:%2Fweb"] = "d=stable|s=seed|r=grey|c=grey:v:1|r=grey|q=5000:c:uid|r=bad|h=x:x:(",
        }
        router = router_mod.new(function(k) return map[k] end, compile_regex, function(m) warnings[#warnings + 1] = m end)
        router:refresh()
    end)

    local function path(p) return function() return p end end

    it("routes by the longest prefix at a / boundary, then the wildcard", function()
        assert.are.same({ "%2Fapi", "/api" }, { router:find("shop.test", path("/api/x")) })
        assert.are.same({ "%2Fweb", "/" }, { router:find("shop.test", path("/apix")) })
        assert.are.same({ "%2Fweb", "/" }, { router:find("a.b.shop.test", path("/x")) })
        assert.are.same({ nil, false }, { router:find("nobody.test", path("/")) })
    end)

    it("decodes the app's settings", function()
        local api = router:app("%2Fapi")
        assert.is_true(api.strip_path)
        assert.are.equal(100, api.max_body)
        assert.are.equal(1500, api.server_timeout)
        local web = router:app("%2Fweb")
        assert.is_true(web.redirect_https)
        assert.are.equal("/my/content?a=1", web.redirect_root)
        assert.is_true(web.hsts)
        assert.is_nil(api.redirect_root)
        assert.is_nil(api.hsts)
        assert.is_true(cidr.contains(web.allow[1], cidr.parse("10.1.2.3").bytes))
    end)

    it("decodes basic auth: realm, users, their hashes; a realm without users lets no one in", function()
        local ops = router:app("%2Fops")
        assert.is_true(ops.checks)
        assert.are.equal('Basic realm="Grafana (ops)"', ops.basic_auth.challenge)
        assert.are.same({ admin = "$6$salt$abc", bob = "$1$s$d" }, ops.basic_auth.users)
        assert.are.equal("$6$salt$abc", ops.basic_auth.decoy)
        assert.is_nil(router:app("%2Fapi").basic_auth)
        local cut = router:app("%2Fcut")
        assert.is_true(cut.checks)
        assert.are.same({}, cut.basic_auth.users)
        local credentials = require "edgeroute.basic_credentials"
        assert.is_false(credentials.check(cut.basic_auth, "admin", "x", function() return true end))
    end)

    it("splits by the policy, skipping a rule whose regex HAProxy refuses, with a warning", function()
        local web = router:app("%2Fweb")
        local env = function(cookies) return {
            cookie = function(n) return cookies[n] end, header = function() return nil end,
            arg = function() return nil end, ip_text = function() return nil end, ip_bytes = function() return nil end,
        } end
        assert.are.same({ "pool-2", "grey" }, { router_mod.backend(web, env({ grey = "1" })) })
        assert.are.same({ "pool-1", "stable" }, { router_mod.backend(web, env({})) })
        -- 5000 of 10000 buckets: some users each way, by the same hash as the agent's.
        local seen = {}
        for i = 1, 40 do
            seen[(router_mod.backend(web, env({ uid = "u" .. i })))] = true
        end
        assert.is_true(seen["pool-1"] and seen["pool-2"])
        assert.are.equal(1, #warnings)
        assert.is_truthy(warnings[1]:find("rule 3 (bad)", 1, true))
    end)

    it("forgets decoded records when the agent bumps v", function()
        assert.is_not_nil(router:app("%2Fapi"))
        map["a:%2Fapi"] = nil
        assert.is_not_nil(router:app("%2Fapi"))
        map.v = "2"
        router:refresh()
        assert.is_nil(router:app("%2Fapi"))
    end)

    it("matches region rules by the CIDR table, the most specific CIDR first, and caches per address", function()
        map["x:regions"] = "e=10.0.0.0%2F8:north,10.1.0.0%2F16:south,2001%3Adb8%3A%3A%2F32:east"
        map["p:%2Fweb"] = "d=stable|r=grey|g=south,east"
        map.v = "4"
        router:refresh()
        local web = router:app("%2Fweb")
        local function env_at(addr)
            return { region = function() return router:region_of(cidr.parse(addr).bytes) end }
        end
        assert.are.equal("north", router:region_of(cidr.parse("10.2.0.1").bytes))
        assert.are.equal("south", router:region_of(cidr.parse("10.1.2.3").bytes))
        assert.is_nil(router:region_of(cidr.parse("192.0.2.1").bytes))
        assert.is_nil(router:region_of(nil))
        assert.are.same({ "pool-2", "grey" }, { router_mod.backend(web, env_at("10.1.2.3")) })
        assert.are.same({ "pool-2", "grey" }, { router_mod.backend(web, env_at("2001:db8::7")) })
        assert.are.same({ "pool-1", "stable" }, { router_mod.backend(web, env_at("10.2.0.1")) })
        -- A changed table takes effect with the next version, cache included.
        map["x:regions"] = "e=10.0.0.0%2F8:south"
        assert.are.equal("north", router:region_of(cidr.parse("10.2.0.1").bytes))
        map.v = "5"
        router:refresh()
        assert.are.equal("south", router:region_of(cidr.parse("10.2.0.1").bytes))
    end)

    it("falls back to the policy's default, then stable, when the version is gone", function()
        map["p:%2Fweb"] = "d=gone|r=missing|c=grey:v:1"
        map.v = "3"
        router:refresh()
        local web = router:app("%2Fweb")
        local env = { cookie = function() return "1" end }
        assert.are.same({ "pool-1", "stable" }, { router_mod.backend(web, env) })
    end)
end)
