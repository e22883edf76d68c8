-- Host name → site: the apps served on one host, by path prefix. A site
-- whose only prefix is "/" keeps its app in `only`, so routing by Host alone
-- costs one table read more than before paths existed.
--
--   site = {
--       apps = { ["/api"] = app, ["/"] = app2 },   -- prefix → app
--       prefixes = { "/api", "/" },                -- longest first
--       only = app2 or nil,                        -- the app when "/" is the only prefix
--   }

local sub = string.sub
local byte = string.byte
local sort = table.sort
local pairs = pairs
local ipairs = ipairs
local next = next

local _M = { _VERSION = "0.1.0" }

local SLASH = byte("/")
local ROOT = { "/" }


local function longest_first(a, b)
    if #a ~= #b then
        return #a > #b
    end
    return a < b
end


-- The (index key, prefixes) pairs an app claims: exact hosts under their
-- name, wildcards under their suffix (".example.com").
local function each_host(app, fn)
    local paths = app.paths
    for _, vhost in ipairs(app.vhosts) do
        local prefixes = paths and paths[vhost] or ROOT
        if sub(vhost, 1, 2) == "*." then
            fn(true, sub(vhost, 2), prefixes)
        else
            fn(false, vhost, prefixes)
        end
    end
end


local function settle(site)
    local prefixes = {}
    for prefix in pairs(site.apps) do
        prefixes[#prefixes + 1] = prefix
    end
    sort(prefixes, longest_first)
    site.prefixes = prefixes
    site.only = (#prefixes == 1 and prefixes[1] == "/") and site.apps["/"] or nil
end


-- A fresh, empty index: { hosts = {}, wildcards = {} }.
function _M.new()
    return { hosts = {}, wildcards = {} }
end


function _M.add(index, app)
    each_host(app, function(wildcard, key, prefixes)
        local sites = wildcard and index.wildcards or index.hosts
        local site = sites[key]
        if site == nil then
            site = { apps = {} }
            sites[key] = site
        end
        for _, prefix in ipairs(prefixes) do
            site.apps[prefix] = app
        end
        settle(site)
    end)
end


-- Only entries still pointing at this app: another app may own them now.
function _M.remove(index, app)
    each_host(app, function(wildcard, key, prefixes)
        local sites = wildcard and index.wildcards or index.hosts
        local site = sites[key]
        if site == nil then
            return
        end
        for _, prefix in ipairs(prefixes) do
            if site.apps[prefix] == app then
                site.apps[prefix] = nil
            end
        end
        if next(site.apps) == nil then
            sites[key] = nil
        else
            settle(site)
        end
    end)
end


-- Whether `prefix` matches `uri` at a "/" boundary. The boundary first:
-- one byte read rules most prefixes out before a substring is hashed.
local function prefix_matches(prefix, uri)
    local n = #prefix
    if n == 1 then
        return true
    end
    local after = byte(uri, n + 1)
    return (after == nil or after == SLASH) and sub(uri, 1, n) == prefix
end


-- The app whose prefix is the longest to match `uri` (nginx's normalized
-- $uri) at a "/" boundary, and that prefix; nil when none does. The first
-- three prefixes (longest first) are tried without a loop, as cidr.any
-- does: a loop here made LuaJIT end the access phase's trace at it and run
-- the rest of the phase, after the loop's own trace, in its interpreter.
function _M.match(site, uri)
    local prefixes = site.prefixes
    local first, second, third = prefixes[1], prefixes[2], prefixes[3]
    if first == nil then
        return nil
    end
    if prefix_matches(first, uri) then
        return site.apps[first], first
    end
    if second == nil then
        return nil
    end
    if prefix_matches(second, uri) then
        return site.apps[second], second
    end
    if third == nil then
        return nil
    end
    if prefix_matches(third, uri) then
        return site.apps[third], third
    end
    for i = 4, #prefixes do
        local prefix = prefixes[i]
        if prefix_matches(prefix, uri) then
            return site.apps[prefix], prefix
        end
    end
    return nil
end


return _M
