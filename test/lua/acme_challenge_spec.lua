package.path = "lua/?.lua;" .. package.path

-- Just enough of nginx for the challenge set and its answers; the ACME
-- integration test (test/integration/acme.test.ts) has pebble fetch them
-- through real nginx.
local data = {}
local dict = {
    get = function(_, key)
        return data[key]
    end,
    set = function(_, key, value)
        data[key] = value
        return true
    end,
    delete = function(_, key)
        data[key] = nil
    end,
}

local printed, exited, routed
local uri

_G.ngx = {
    shared = { edgeroute = dict },
    var = setmetatable({}, { __index = function(_, name) return name == "uri" and uri or nil end }),
    header = {},
    HTTP_OK = 200,
    print = function(text)
        printed = text
    end,
    exit = function(status)
        exited = status
    end,
}
package.loaded["edgeroute.plugin"] = { access = function() routed = true end }

local acme_challenge = require "edgeroute.acme_challenge"
local cjson = require "cjson"

local function serve(path)
    printed, exited, routed = nil, nil, false
    uri = path
    acme_challenge.serve()
    return printed, exited, routed
end

describe("acme_challenge", function()
    it("answers a pending token with its key authorization, and routes any other", function()
        assert.are.equal(2, acme_challenge.replace(cjson.encode({ challenges = { tok1 = "tok1.thumb", ["tok-2_"] = "tok-2_.thumb" } })))
        local body, status, went_on = serve("/.well-known/acme-challenge/tok1")
        assert.are.same({ "tok1.thumb", 200, false }, { body, status, went_on })
        assert.are.equal("text/plain", ngx.header["Content-Type"])
        body, status, went_on = serve("/.well-known/acme-challenge/other")
        assert.are.same({ nil, nil, true }, { body, status, went_on })
        body, status, went_on = serve("/.well-known/acme-challenge/")
        assert.are.same({ nil, nil, true }, { body, status, went_on })
    end)

    it("replaces the whole set: a token no longer pending is routed", function()
        assert.are.equal(1, acme_challenge.replace(cjson.encode({ challenges = { tok3 = "tok3.thumb" } })))
        local _, _, went_on = serve("/.well-known/acme-challenge/tok1")
        assert.is_true(went_on)
        local body = serve("/.well-known/acme-challenge/tok3")
        assert.are.equal("tok3.thumb", body)
        assert.are.equal(0, acme_challenge.replace('{"challenges": {}}'))
        _, _, went_on = serve("/.well-known/acme-challenge/tok3")
        assert.is_true(went_on)
    end)

    it("refuses what is not a challenge set, keeping the set in force", function()
        acme_challenge.replace(cjson.encode({ challenges = { keep = "keep.thumb" } }))
        for _, raw in ipairs({
            "",
            "[]",
            '{"challenges": 1}',
            cjson.encode({ challenges = { ["bad/token"] = "bad/token.x" } }),
            cjson.encode({ challenges = { tok = "other.thumb" } }),
            cjson.encode({ challenges = { tok = "tok.thumb\nX-Injected: 1" } }),
        }) do
            local count, status = acme_challenge.replace(raw)
            assert.is_nil(count)
            assert.are.equal(400, status)
        end
        assert.are.equal("keep.thumb", serve("/.well-known/acme-challenge/keep"))
    end)
end)
