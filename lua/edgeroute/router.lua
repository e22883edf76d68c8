-- (Host, path) → app lookup for the access phase. Exact names win, then the
-- longest matching wildcard suffix, as nginx's server_name does; inside a
-- host, the longest path prefix that matches at a "/" boundary. A path that
-- no prefix of the exact host serves is tried on the wildcard's site.

local lrucache = require "resty.lrucache"
local config = require "edgeroute.config"
local table_sync = require "edgeroute.table_sync"
local host_index = require "edgeroute.host_index"

local find = string.find
local sub = string.sub

local _M = { _VERSION = "0.1.0" }

local state = table_sync.state
local match_path = host_index.match
local wildcard_cache

-- false marks a host known to have no route, so unknown hosts cost one
-- cache hit too.
local NO_ROUTE = false


local function match_wildcard(host)
    local wildcards = state.wildcards
    local dot = find(host, ".", 1, true)
    while dot do
        local site = wildcards[sub(host, dot)]
        if site then
            return site
        end
        dot = find(host, ".", dot + 1, true)
    end
    return NO_ROUTE
end


local function wildcard_site(host)
    local site = wildcard_cache:get(host)
    if site == nil then
        site = match_wildcard(host)
        wildcard_cache:set(host, site)
    end
    return site or nil
end


function _M.init_worker()
    wildcard_cache = lrucache.new(config.host_cache_size)
    table_sync.on_change(function()
        wildcard_cache:flush_all()
    end)
end


-- Returns the app for `host` (nginx's lower-cased $host) and `get_uri()`
-- (nginx's normalized $uri, read only when the host routes by path), and the
-- prefix it matched (nil when the host's only prefix is "/"); nil and
-- whether some app serves the host at another path when none serves them.
-- The site's app for the request, and the prefix it matched; nil when no
-- prefix of the site matches.
local function route_in(site, get_uri)
    local only = site.only
    if only then
        return only
    end
    return match_path(site, get_uri())
end


function _M.find_route(host, get_uri)
    local site = state.hosts[host]
    if site then
        local app, prefix = route_in(site, get_uri)
        if app then
            return app, prefix
        end
    end
    local wildcard = wildcard_site(host)
    if wildcard == nil then
        return nil, site ~= nil
    end
    local app, prefix = route_in(wildcard, get_uri)
    if app then
        return app, prefix
    end
    return nil, true
end


function _M.loaded()
    return state.version ~= nil
end


return _M
