-- edgeroute.basicAuth on HAProxy nodes (marathon-lb's HAPROXY_n_AUTH): the
-- Lua action lets a request of such an app through only with Basic
-- credentials whose password matches the user's crypt(3) hash; anything else
-- gets 401 with the app's realm. The setting comes in the app's rules.map
-- record, like every other per-route setting, so a new or changed password
-- needs no reload (HAProxy's own userlists would: they are config).
--
-- HAProxy's Lua has no FFI to libcrypt, so crypt.lua chains HAProxy's C
-- digests: a $6$ hash of 5,000 rounds costs about 4.8 ms of this thread
-- (HAProxy's Lua yields every tune.lua.forced-yield instructions meanwhile,
-- so the thread's other requests go on). Each Lua state (one per thread)
-- remembers the Authorization values it checked, right and wrong apart, so
-- a known value costs one SHA-256 and a table lookup. The tables are keyed
-- by a SHA-256 of a random per-state key, the app's setting and the value:
-- no raw credential is kept, one app's password opens no other app, and a
-- changed setting is checked afresh. Each table is emptied when full.

local credentials = require "edgeroute.basic_credentials"
local crypt = require "edgeroute.haproxy.crypt"

local concat = table.concat

local _M = { _VERSION = "0.1.0" }

local GOOD_ENTRIES = 4096
local BAD_ENTRIES = 1024
local TEXT = "text/plain"

local good, good_count = {}, 0
local bad, bad_count = {}, 0
-- Made on first use, from HAProxy's random generator.
local key


local function digests_of(conv)
    return {
        sha512 = function(bytes) return conv:sha2(bytes, 512) end,
        sha256 = function(bytes) return conv:sha2(bytes, 256) end,
        md5 = function(bytes) return conv:digest(bytes, "MD5") end,
    }
end


local function verify(txn, auth, value)
    local conv = txn.c
    local user, password = credentials.parse(value, function(text) return conv:b64dec(text) end)
    if user == nil then
        return false
    end
    local digests = digests_of(conv)
    -- A plain comparison: its time could only tell how much of a crypt
    -- output a guess shares with the hash, which helps no one find a password.
    return credentials.check(auth, user, password, function(pw, hash)
        return crypt.crypt(pw, hash, digests) == hash
    end)
end


local function remember(cache_key, ok)
    if ok then
        if good_count >= GOOD_ENTRIES then
            good, good_count = {}, 0
        end
        good[cache_key] = true
        good_count = good_count + 1
    else
        if bad_count >= BAD_ENTRIES then
            bad, bad_count = {}, 0
        end
        bad[cache_key] = true
        bad_count = bad_count + 1
    end
end


-- Answers 401 and returns true, unless the request carries credentials
-- `auth` (from router.lua's record, compiled by basic_credentials) accepts.
function _M.deny(txn, auth)
    local value = txn.sf:req_fhdr("authorization", 1)
    if value ~= nil then
        local conv = txn.c
        if key == nil then
            local f = txn.f
            key = concat({ f:rand(), f:rand(), f:rand(), f:rand() }, ".")
        end
        local id = auth.id
        if id == nil then
            id = conv:sha2(auth.fingerprint, 256)
            auth.id = id
        end
        local cache_key = conv:sha2(key .. "\0" .. id .. value, 256)
        if good[cache_key] then
            return false
        end
        if not bad[cache_key] then
            local ok = verify(txn, auth, value) == true
            remember(cache_key, ok)
            if ok then
                return false
            end
        end
    end
    txn:done(txn:reply({
        status = 401,
        body = "edgeroute: this app needs a user name and password\n",
        headers = { ["content-type"] = { TEXT }, ["www-authenticate"] = { auth.challenge } },
    }))
    return true
end


return _M
