package.path = "lua/?.lua;" .. package.path
local push_format = require "edgeroute.push_format"

local function route(id, extra)
    local backend = extra or '{"id":"t1","address":"127.0.0.1","port":8080,"weight":1}'
    return '{"id":' .. string.format("%q", id) .. ',"hash":"h","vhosts":["x.test"],"defaultVersion":"stable","versions":{"stable":{"backends":[' .. backend .. ']}}}'
end

local HEADER = '{"version":"v2","base":null}\n'

describe("push_format.parse", function()
    it("reads a header, routes and removals", function()
        local version, base, routes, removed = push_format.parse(HEADER .. route("/a") .. '\n{"remove":"/b"}\n')
        assert.are.equal("v2", version)
        assert.is_nil(base)
        assert.is_table(routes["/a"])
        assert.are.same({ "/b" }, removed)
    end)

    -- Found by fuzzing: the shared dict refuses keys over 64 KiB, so such an
    -- id failed the push with a 507, after storing the routes before it.
    it("refuses an app id over 4096 bytes before anything is stored", function()
        local version, err = push_format.parse(HEADER .. route(string.rep("l", 70000)))
        assert.is_nil(version)
        assert.matches("id is longer than 4096 bytes", err, 1, true)
        assert.is_true(#err < 200)
        assert.is_string(push_format.parse(HEADER .. route("/" .. string.rep("l", 4095))))
        version, err = push_format.parse(HEADER .. '{"remove":"' .. string.rep("l", 5000) .. '"}\n')
        assert.is_nil(version)
        assert.matches("remove must name an app id", err, 1, true)
    end)

    it("names a bad value on one line, cut short", function()
        local version, err = push_format.parse(HEADER .. route("/a", '{"id":"t1","address":"srv1\\nforged line' .. string.rep("x", 500) .. '","port":8080,"weight":1}'))
        assert.is_nil(version)
        assert.is_nil(err:find("\n", 1, true))
        assert.matches("address must be an IP address, got srv1\\x0aforged line", err, 1, true)
        assert.is_true(#err < 250)
    end)

    -- The places in messages are built only for a refused route, and
    -- addresses already found to be IPs are remembered: neither may change
    -- what is refused, nor how the place is named.
    it("names the full place of a bad backend among good ones, after many good pushes", function()
        local good = '{"id":"t1","address":"127.0.0.1","port":8080,"weight":1}'
        for i = 1, 3 do
            assert.is_string(push_format.parse(HEADER .. route("/ok" .. i, good .. "," .. good)))
        end
        local bad = '{"id":"t3","address":"127.0.0.1x","port":8080,"weight":1}'
        local version, err = push_format.parse(HEADER .. route("/ok1", good) .. "\n" .. route("/b", good .. "," .. good .. "," .. bad))
        assert.is_nil(version)
        assert.are.equal('apps[/b].versions[stable].backends[3].address must be an IP address, got 127.0.0.1x', err)
        version, err = push_format.parse(HEADER .. route("/c", '{"id":"t1","address":"::1","port":0,"weight":1}'))
        assert.is_nil(version)
        assert.are.equal("apps[/c].versions[stable].backends[1].port must be a port number, got 0", err)
        assert.is_string(push_format.parse(HEADER .. route("/d", '{"id":"t1","address":"::1","port":1,"weight":1}')))
    end)

    local function flat_route(id, list)
        return '{"id":' .. string.format("%q", id) .. ',"hash":"h","vhosts":["x.test"],"defaultVersion":"stable","versions":{"stable":{"backendsFlat":[' .. list .. ']}}}'
    end

    it("reads backends as one flat array (id, address, port, weight, ...)", function()
        local version, _, routes = push_format.parse(HEADER .. flat_route("/f", '"t1","127.0.0.1",8080,1,"t2","::1",8081,3'))
        assert.are.equal("v2", version)
        assert.is_table(routes["/f"])
        assert.is_string(push_format.parse(HEADER .. flat_route("/empty", "")))
    end)

    it("names the backend of a flat array that is refused, counted in backends", function()
        local version, err = push_format.parse(HEADER .. flat_route("/f", '"t1","127.0.0.1",8080,1,"t2","127.0.0.1",70000,1'))
        assert.is_nil(version)
        assert.are.equal("apps[/f].versions[stable].backendsFlat[2].port must be a port number, got 70000", err)
        version, err = push_format.parse(HEADER .. flat_route("/f", '"t1","127.0.0.1",8080'))
        assert.is_nil(version)
        assert.matches("backendsFlat must be an array of id, address, port, weight", err, 1, true)
        version, err = push_format.parse(HEADER .. '{"id":"/g","hash":"h","vhosts":["x.test"],"defaultVersion":"s","versions":{"s":{"backends":[],"backendsFlat":[]}}}')
        assert.is_nil(version)
        assert.matches("backends or backendsFlat, not both", err, 1, true)
    end)

end)

describe("push_format.reader", function()
    local function read_in_pieces(body, cuts)
        local reader = push_format.reader()
        local from = 1
        for _, cut in ipairs(cuts) do
            reader:feed(body:sub(from, cut))
            from = cut + 1
        end
        reader:feed(body:sub(from))
        return reader:finish()
    end

    -- nginx hands the body over as the agent's chunks arrive: a line may be
    -- cut anywhere, even inside a multi-byte character or right at its newline.
    local body = HEADER .. route("/a") .. "\n\n" .. route("/é", '{"id":"t1","address":"::1","port":1,"weight":2}') .. '\n{"remove":"/b"}'

    it("reads the same push however the body is cut, once or twice", function()
        local version, base, routes, removed = push_format.parse(body)
        for first = 0, #body do
            for _, second in ipairs({ first, first + 1, first + 7, #body }) do
                local v, b, r, gone = read_in_pieces(body, { first, math.min(second, #body) })
                assert.are.equal(version, v)
                assert.are.equal(base, b)
                assert.are.same(routes, r)
                assert.are.same(removed, gone)
            end
        end
    end)

    it("reads a line cut into many pieces, each without a newline", function()
        local long = HEADER .. route("/long", string.rep('{"id":"t1","address":"127.0.0.1","port":8080,"weight":1},', 200) .. '{"id":"t2","address":"127.0.0.1","port":8081,"weight":1}')
        local cuts = {}
        for cut = 40, #long, 97 do
            cuts[#cuts + 1] = cut
        end
        local version, _, routes = read_in_pieces(long, cuts)
        assert.are.equal("v2", version)
        assert.are.equal(select(3, push_format.parse(long))["/long"].raw, routes["/long"].raw)
    end)

    it("refuses with the same message and line number, and ignores what comes after", function()
        local bad = HEADER .. route("/a") .. "\n" .. '{"id":"/b","hash":"h"' .. "\n" .. route("/c")
        local _, expected = push_format.parse(bad)
        assert.matches("^line 3 is not a JSON object", expected)
        for cut = 0, #bad do
            local version, err = read_in_pieces(bad, { cut })
            assert.is_nil(version)
            assert.are.equal(expected, err)
        end
        local reader = push_format.reader()
        reader:feed(bad .. "\n")
        reader:feed("not json either\n")
        assert.are.equal(expected, select(2, reader:finish()))
    end)

    it("refuses an empty body and a header without a version", function()
        assert.are.equal("empty body", select(2, read_in_pieces("\n\n", { 1 })))
        assert.are.equal("version must be a non-empty string", select(2, read_in_pieces('{"base":null}', { 3 })))
    end)
end)
