-- Connections to Redis for the plugin's timers (never the request path):
-- pooled with set_keepalive, closed instead when in an unknown state. With
-- TLS the handshake comes before AUTH, so the password only travels
-- encrypted, to a server whose certificate was verified.

local config = require "edgeroute.config"
local sentinel = require "edgeroute.redis_sentinel"

local ok, redis = pcall(require, "resty.redis")
if not ok then
    -- Debian packages lua-resty-redis as nginx.redis.
    redis = require "nginx.redis"
end

local ngx = ngx
local ngx_now = ngx.now
local rawget = rawget
local tostring = tostring
local find = string.find

local _M = { _VERSION = "0.2.0" }

local TIMEOUT_MS = 1000
local POOL_IDLE_MS = 30000
local POOL_SIZE = 4
-- A refused certificate or password does not fix itself within a second, and
-- every attempt at a refused certificate makes nginx log it again: the
-- refusal stands this long before the next attempt.
local REFUSED_RETRY_S = 5

local refused_err
local refused_until = 0


local function where(settings, host, port)
    host, port = host or settings.host, port or settings.port
    if not host then
        return "master " .. tostring(settings.master_name)
    end
    if find(host, ":", 1, true) then
        return "[" .. host .. "]:" .. port
    end
    return host .. ":" .. port
end


local function refuse(err)
    refused_err = err
    refused_until = ngx_now() + REFUSED_RETRY_S
    return nil, err, true
end


-- lua-resty-redis 0.27 (Debian) has no ssl option in connect(): the handshake
-- runs on its socket. The certificate must carry settings.server_name, or,
-- through Sentinel without one, the address connected to (each sentinel's,
-- the master's: they differ, and a failover changes the master's).
local function handshake(red, settings, host, port)
    local sock = rawget(red, "_sock")
    local name = settings.server_name or host
    -- false: no session object to keep (pooled connections are reused whole),
    -- so success is a plain true.
    local done, err = sock:sslhandshake(false, name, true)
    if done and not sock:getreusedtimes() then
        -- ngx_lua 0.10.23 reports a certificate refused in a handshake that
        -- finished at once as a success, with the connection already closed;
        -- nginx has logged why ("lua ssl certificate ...").
        done, err = nil, "the certificate was refused (nginx's \"lua ssl\" line says why)"
    end
    if not done then
        return nil, "redis TLS handshake with " .. where(settings, host, port) .. " failed: " .. tostring(err)
            .. " (expected a certificate for " .. name .. ")", err ~= "timeout"
    end
    return true
end


-- SENTINEL get-master-addr-by-name on one sentinel (never pooled: asked rarely).
local function ask_sentinel(s)
    local settings = config.redis
    local red = redis:new()
    red:set_timeout(TIMEOUT_MS)
    local connected, err = red:connect(s.host, s.port)
    if not connected then
        return nil, "cannot connect: " .. tostring(err)
    end
    if settings.tls then
        local shaken, tls_err, refused = handshake(red, settings, s.host, s.port)
        if not shaken then
            red:close()
            if refused then
                -- Held off like a refused master: nginx logs every refused certificate itself.
                -- Another sentinel that answers (asked next, in the same round) lifts it.
                refuse(tls_err)
            end
            return nil, tls_err
        end
    end
    if settings.sentinel_password and settings.sentinel_password ~= "" then
        local authed, auth_err = red:auth(settings.sentinel_password)
        if not authed then
            red:close()
            return nil, "refused the sentinel password: " .. tostring(auth_err)
        end
    end
    local res, ask_err = red:sentinel("get-master-addr-by-name", settings.master_name)
    red:close()
    if not res then
        return nil, tostring(ask_err)
    end
    if res == ngx.null then
        return nil, "does not know the master"
    end
    return res
end


local function authenticate(red, settings)
    local authed, err
    if settings.username then
        authed, err = red:auth(settings.username, settings.password)
    else
        authed, err = red:auth(settings.password)
    end
    if authed then
        return true
    end
    if authed == false then
        -- Redis answered: a refusal, not a transport problem.
        if settings.username then
            return nil, "redis refused the password for user " .. settings.username .. ": " .. err, true
        end
        return nil, "redis refused the password: " .. err, true
    end
    local hint = ""
    if not settings.tls and err == "closed" then
        hint = " (a TLS port? use rediss://)"
    end
    return nil, "redis at " .. where(settings) .. " closed the connection at AUTH: " .. tostring(err) .. hint
end


-- Returns a connected client, or nil, a message, and true when Redis refused
-- (certificate or password) rather than being unreachable.
function _M.connect(timeout_ms)
    local settings = config.redis
    if not settings then
        return nil, "redis is not configured"
    end
    if refused_err and ngx_now() < refused_until then
        return nil, refused_err, true
    end
    local host, port = settings.host, settings.port
    if settings.sentinels then
        local found_err
        host, port, found_err = sentinel.master(settings, ask_sentinel)
        if not host then
            -- refused_err: every sentinel refused by its certificate (see ask_sentinel).
            return nil, found_err, refused_err ~= nil
        end
    end
    local red = redis:new()
    red:set_timeout(timeout_ms or TIMEOUT_MS)
    local connected, err = red:connect(host, port)
    if not connected then
        if settings.sentinels then
            -- A failover may have moved the master: ask the sentinels on the next attempt.
            sentinel.forget()
        end
        return nil, "cannot connect to redis at " .. where(settings, host, port) .. ": " .. err
    end
    -- A pooled connection was encrypted, authenticated and selected already.
    if red:get_reused_times() == 0 then
        if settings.tls then
            local shaken, tls_err, refused = handshake(red, settings, host, port)
            if not shaken then
                red:close()
                if refused then
                    return refuse(tls_err)
                end
                return nil, tls_err
            end
        end
        if settings.password and settings.password ~= "" then
            local authed, auth_err, refused = authenticate(red, settings)
            if not authed then
                red:close()
                if refused then
                    return refuse(auth_err)
                end
                return nil, auth_err
            end
        end
        if settings.db and settings.db ~= 0 then
            local selected, select_err = red:select(settings.db)
            if not selected then
                red:close()
                return nil, "redis refused select " .. settings.db .. ": " .. tostring(select_err)
            end
        end
    end
    refused_err = nil
    return red
end


function _M.release(red)
    local kept, err = red:set_keepalive(POOL_IDLE_MS, POOL_SIZE)
    if not kept then
        red:close()
    end
    return kept, err
end


return _M
