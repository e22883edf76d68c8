-- Host → app lookup for the access phase. Exact names win; then the longest
-- matching wildcard suffix, as nginx's server_name does.

local lrucache = require "resty.lrucache"
local config = require "edgeroute.config"
local table_sync = require "edgeroute.table_sync"

local find = string.find
local sub = string.sub

local _M = { _VERSION = "0.1.0" }

local state = table_sync.state
local wildcard_cache

-- false marks a host known to have no route, so unknown hosts cost one
-- cache hit too.
local NO_ROUTE = false


local function match_wildcard(host)
    local wildcards = state.wildcards
    local dot = find(host, ".", 1, true)
    while dot do
        local app = wildcards[sub(host, dot)]
        if app then
            return app
        end
        dot = find(host, ".", dot + 1, true)
    end
    return NO_ROUTE
end


function _M.init_worker()
    wildcard_cache = lrucache.new(config.host_cache_size)
    table_sync.on_change(function()
        wildcard_cache:flush_all()
    end)
end


-- Returns the app for `host` (nginx's lower-cased $host), or nil.
function _M.find_app(host)
    local app = state.hosts[host]
    if app then
        return app
    end
    app = wildcard_cache:get(host)
    if app == nil then
        app = match_wildcard(host)
        wildcard_cache:set(host, app)
    end
    return app or nil
end


function _M.loaded()
    return state.version ~= nil
end


return _M
