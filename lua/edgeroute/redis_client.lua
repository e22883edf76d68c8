-- Connections to Redis for the plugin's timers (never the request path):
-- pooled with set_keepalive, closed instead when in an unknown state.

local config = require "edgeroute.config"

local ok, redis = pcall(require, "resty.redis")
if not ok then
    -- Debian packages lua-resty-redis as nginx.redis.
    redis = require "nginx.redis"
end

local _M = { _VERSION = "0.1.0" }

local TIMEOUT_MS = 1000
local POOL_IDLE_MS = 30000
local POOL_SIZE = 4


-- Returns a connected client, or nil and a message.
function _M.connect(timeout_ms)
    local settings = config.redis
    if not settings then
        return nil, "redis is not configured"
    end
    local red = redis:new()
    red:set_timeout(timeout_ms or TIMEOUT_MS)
    local connected, err = red:connect(settings.host, settings.port)
    if not connected then
        return nil, "cannot connect to redis at " .. settings.host .. ":" .. settings.port .. ": " .. err
    end
    -- A pooled connection was authenticated and selected already.
    if red:get_reused_times() == 0 then
        if settings.password and settings.password ~= "" then
            local authed, auth_err
            if settings.username then
                authed, auth_err = red:auth(settings.username, settings.password)
            else
                authed, auth_err = red:auth(settings.password)
            end
            if not authed then
                red:close()
                return nil, "redis refused the password: " .. auth_err
            end
        end
        if settings.db and settings.db ~= 0 then
            local selected, select_err = red:select(settings.db)
            if not selected then
                red:close()
                return nil, "redis refused select " .. settings.db .. ": " .. select_err
            end
        end
    end
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
