package.path = "lua/?.lua;" .. package.path

-- A scripted stand-in for lua-resty-redis and its cosocket: the order of
-- connect, TLS handshake, AUTH and SELECT, and what each answers. Real TLS
-- and a real Redis are in test/integration/redis-security.test.ts.
local clock = 1000

_G.ngx = {
    now = function()
        return clock
    end,
    log = function() end,
    ERR = 4,
    WARN = 5,
    NOTICE = 6,
}

local calls, script

local function record(...)
    calls[#calls + 1] = table.concat({ ... }, " ")
end

local fake_redis = {}

function fake_redis.new()
    local closed = false
    local sock = {
        sslhandshake = function(_, reused_session, server_name, verify)
            record("sslhandshake", tostring(reused_session), tostring(server_name), tostring(verify))
            if script.handshake_closes then
                closed = true
                return true
            end
            return script.handshake_ok ~= false or nil, script.handshake_err
        end,
        getreusedtimes = function()
            if closed then
                return nil, "closed"
            end
            return script.reused or 0
        end,
    }
    return {
        _sock = sock,
        set_timeout = function() end,
        connect = function(_, host, port)
            record("connect", host, port)
            return true
        end,
        get_reused_times = function()
            return script.reused or 0
        end,
        auth = function(_, ...)
            record("auth", ...)
            return script.auth_ok, script.auth_err
        end,
        select = function(_, db)
            record("select", db)
            return true
        end,
        close = function()
            record("close")
        end,
    }
end

package.loaded["resty.redis"] = fake_redis
package.loaded["edgeroute.redis_client"] = nil
local config = require "edgeroute.config"
local redis_client = require "edgeroute.redis_client"

local TLS = { host = "127.0.0.1", port = 6380, db = 2, username = "edge", password = "s3cret", tls = true, server_name = "127.0.0.1" }

local function settings(overrides)
    local copy = {}
    for k, v in pairs(TLS) do
        copy[k] = v
    end
    for k, v in pairs(overrides or {}) do
        copy[k] = v
    end
    return copy
end

describe("redis_client.connect", function()
    before_each(function()
        calls = {}
        script = { auth_ok = true }
        -- Past any refusal an earlier case left.
        clock = clock + 60
        config.redis = settings()
    end)

    it("verifies the certificate and its name before AUTH USER PASS, then SELECT", function()
        local red, err = redis_client.connect()
        assert.is_nil(err)
        assert.is_table(red)
        assert.same({
            "connect 127.0.0.1 6380",
            "sslhandshake false 127.0.0.1 true",
            "auth edge s3cret",
            "select 2",
        }, calls)
    end)

    it("checks the configured name, not the IP, when one is given", function()
        config.redis = settings({ server_name = "redis.internal" })
        assert.is_table(redis_client.connect())
        assert.equal("sslhandshake false redis.internal true", calls[2])
    end)

    it("does nothing again on a pooled connection", function()
        script.reused = 3
        assert.is_table(redis_client.connect())
        assert.same({ "connect 127.0.0.1 6380" }, calls)
    end)

    it("sends no TLS to a redis:// server, and AUTH with the password alone without a user", function()
        config.redis = settings({ tls = false, username = false, db = 0 })
        assert.is_table(redis_client.connect())
        assert.same({ "connect 127.0.0.1 6380", "auth s3cret" }, calls)
    end)

    it("names a failed handshake, sends no password, and waits before trying again", function()
        script.handshake_ok, script.handshake_err = false, "19: self-signed certificate in certificate chain"
        local red, err, refused = redis_client.connect()
        assert.is_nil(red)
        assert.equal("redis TLS handshake with 127.0.0.1:6380 failed: 19: self-signed certificate in certificate chain"
            .. " (expected a certificate for 127.0.0.1)", err)
        assert.is_true(refused)
        assert.same({ "connect 127.0.0.1 6380", "sslhandshake false 127.0.0.1 true", "close" }, calls)

        calls = {}
        clock = clock + 4
        local _, again = redis_client.connect()
        assert.equal(err, again)
        assert.same({}, calls)

        clock = clock + 2
        script.handshake_ok, script.handshake_err = nil, nil
        assert.is_table(redis_client.connect())
        assert.equal("sslhandshake false 127.0.0.1 true", calls[2])
    end)

    it("treats a handshake that claims success on a closed connection as refused (ngx_lua 0.10.23)", function()
        script.handshake_closes = true
        local red, err, refused = redis_client.connect()
        assert.is_nil(red)
        assert.matches("redis TLS handshake with 127.0.0.1:6380 failed: the certificate was refused", err, 1, true)
        assert.is_true(refused)
        for _, call in ipairs(calls) do
            assert.is_nil(call:find("auth", 1, true))
        end
    end)

    it("a timeout in the handshake is not a refusal", function()
        script.handshake_ok, script.handshake_err = false, "timeout"
        local _, err, refused = redis_client.connect()
        assert.matches("failed: timeout", err, 1, true)
        assert.is_nil(refused)
    end)

    it("says which user Redis refused, without the password", function()
        script.auth_ok, script.auth_err = false, "WRONGPASS invalid username-password pair or user is disabled."
        local red, err, refused = redis_client.connect()
        assert.is_nil(red)
        assert.equal("redis refused the password for user edge: WRONGPASS invalid username-password pair or user is disabled.", err)
        assert.is_true(refused)
        assert.is_nil(err:find("s3cret", 1, true))
    end)

    it("a connection closed at AUTH on a redis:// URL hints at a TLS port", function()
        config.redis = settings({ tls = false, host = "::1" })
        script.auth_ok, script.auth_err = nil, "closed"
        local _, err, refused = redis_client.connect()
        assert.equal("redis at [::1]:6380 closed the connection at AUTH: closed (a TLS port? use rediss://)", err)
        assert.is_nil(refused)
    end)
end)
