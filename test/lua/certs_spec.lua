package.path = "lua/?.lua;" .. package.path

-- Just enough of nginx for certificate pushes and the SNI lookup; the nginx
-- integration test (test/integration/certs-by-sni.test.ts) does real handshakes.
local function new_dict()
    local data = {}
    return {
        data = data,
        get = function(_, key)
            return data[key]
        end,
        add = function(_, key, value)
            if data[key] ~= nil then
                return false, "exists"
            end
            data[key] = value
            return true
        end,
        safe_set = function(_, key, value)
            data[key] = value
            return true
        end,
        delete = function(_, key)
            data[key] = nil
        end,
        incr = function(_, key, by, init)
            data[key] = (data[key] or init) + by
            return data[key]
        end,
    }
end

local logged = {}
local sni
local served = {}
local parses = 0

_G.ngx = {
    log = function(_, ...)
        logged[#logged + 1] = table.concat({ ... })
    end,
    WARN = 5,
    ERR = 4,
    NOTICE = 6,
    ERROR = -1,
    null = nil,
    shared = { edgeroute = new_dict() },
    exit = function() end,
}

package.loaded["ngx.ssl"] = {
    server_name = function()
        return sni
    end,
    parse_pem_cert = function(pem)
        parses = parses + 1
        if pem == "bad" then
            return nil, "PEM_read_bio_X509_AUX() failed"
        end
        return { cert = pem }
    end,
    parse_pem_priv_key = function(pem)
        return { key = pem }
    end,
    clear_certs = function()
        return true
    end,
    set_cert = function(cdata)
        served[#served + 1] = cdata.cert
        return true
    end,
    set_priv_key = function()
        return true
    end,
}

local cjson = require "cjson.safe"
local certs = require "edgeroute.certs"

local function push(version, list)
    return certs.replace(cjson.encode({ version = version, certs = list }))
end

-- The certificate served for `name`, or nil when the static one would serve.
local function serve(name)
    sni = name
    local before = #served
    certs.serve()
    if #served == before then
        return nil
    end
    return served[#served]
end

local function cert(id, names, pem)
    return { id = id, names = names, cert_pem = pem or ("cert of " .. id), key_pem = "KEY-" .. id }
end

describe("certs", function()
    it("serves the exact name, then the wildcard of the parent, else nothing", function()
        assert.are.equal(2, push("v1", {
            cert("a", { "a.example.com", "www.a.example.com" }),
            cert("w", { "*.example.com" }),
        }))
        assert.are.equal("cert of a", serve("a.example.com"))
        assert.are.equal("cert of a", serve("A.Example.COM."))
        assert.are.equal("cert of w", serve("b.example.com"))
        -- A wildcard covers one label, as in TLS.
        assert.is_nil(serve("x.b.example.com"))
        assert.is_nil(serve("example.com"))
        assert.is_nil(serve("other.test"))
        assert.is_nil(serve(nil))
    end)

    it("parses a certificate once per version, however many handshakes", function()
        push("v2", { cert("p", { "p.test" }) })
        local before = parses
        for _ = 1, 20 do
            assert.are.equal("cert of p", serve("p.test"))
        end
        assert.are.equal(before + 1, parses)
        -- A new set with the same certificate keeps its version and its parsed copy.
        push("v3", { cert("p", { "p.test" }), cert("q", { "q.test" }) })
        serve("p.test")
        assert.are.equal(before + 1, parses)
        -- A replaced PEM is a new version: parsed again, and the new one serves.
        push("v4", { cert("p", { "p.test" }, "renewed p") })
        assert.are.equal("renewed p", serve("p.test"))
        assert.are.equal(before + 2, parses)
        assert.is_nil(serve("q.test"))
    end)

    it("never reuses a version when a certificate is removed and added again", function()
        push("v5", { cert("r", { "r.test" }) })
        local first = cjson.decode(ngx.shared.edgeroute.data["certs:set"]).certs[1].v
        serve("r.test")
        push("v6", {})
        assert.is_nil(serve("r.test"))
        push("v7", { cert("r", { "r.test" }, "another r") })
        local second = cjson.decode(ngx.shared.edgeroute.data["certs:set"]).certs[1].v
        assert.is_true(second > first)
        assert.are.equal("another r", serve("r.test"))
    end)

    it("leaves a certificate it cannot parse to the static one, logging it once", function()
        push("v8", { cert("bad", { "bad.test" }, "bad") })
        local before = #logged
        assert.is_nil(serve("bad.test"))
        assert.is_nil(serve("bad.test"))
        assert.are.equal(before + 1, #logged)
        assert.matches("cannot parse certificate bad", logged[#logged], 1, true)
        assert.is_nil(logged[#logged]:find("KEY-", 1, true))
    end)

    it("refuses a malformed set without quoting it, keeping the stored one", function()
        push("v9", { cert("k", { "k.test" }) })
        local count, status, err = certs.replace('{"version":"x","certs":[{"id":"k","names":["k.test"],"cert_pem":"c"}]}')
        assert.is_nil(count)
        assert.are.equal(400, status)
        assert.matches("needs cert_pem and key_pem", err, 1, true)
        count, status, err = certs.replace('{"version":"x","certs":[' .. cjson.encode(cert("d", { "d" })) .. "," .. cjson.encode(cert("d", { "e" })) .. "]}")
        assert.is_nil(count)
        assert.matches("repeats", err, 1, true)
        assert.is_nil(err:find("KEY-", 1, true))
        assert.are.equal("v9", certs.status().version)
        assert.are.equal(1, certs.status().certificates)
        assert.are.equal("cert of k", serve("k.test"))
    end)

    it("reports its version and count, never key material", function()
        push("v10", { cert("s", { "s.test" }) })
        local status = cjson.encode(certs.status())
        assert.is_nil(status:find("KEY-", 1, true))
        assert.is_nil(status:find("s.test", 1, true))
    end)
end)
