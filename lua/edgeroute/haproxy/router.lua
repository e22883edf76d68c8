-- (Host, path) → app → version → backend on HAProxy nodes, from the records
-- the agent keeps in rules.map. Records are decoded on first use and kept
-- until the map's "v" entry changes (the agent bumps it after every edit),
-- so a request costs one map lookup for "v" and table reads. Same rules as
-- the nginx plugin's router.lua: exact host, then the longest wildcard; in a
-- host the longest prefix at a "/" boundary (lua/edgeroute/host_index.lua).
--
--   h:HOST   p=PREFIX:APP,PREFIX:APP...             (HOST may be *.suffix)
--   a:APP    d=DEFAULT|v=VERSION:BACKEND,...|s=1|r=1|m=BYTES|t=MS|f=CIDR,...|k=COOKIE
--            |b=REALM|u=USER:HASH,...   (edgeroute.basicAuth)
--   p:APP    the app's split policy (policy.lua)
--   x:regions  e=CIDR:REGION,...  the Redis CIDR→region table, for region rules

local record = require "edgeroute.haproxy.record"
local policy = require "edgeroute.haproxy.policy"
local host_index = require "edgeroute.host_index"
local cidr = require "edgeroute.policy.cidr"
local credentials = require "edgeroute.basic_credentials"

local find = string.find
local match = string.match
local sub = string.sub
local sort = table.sort
local tonumber = tonumber
local ipairs = ipairs
local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

local match_path = host_index.match


local function longest_first(a, b)
    if #a ~= #b then
        return #a > #b
    end
    return a < b
end


local function decode_site(text)
    local site = { apps = {} }
    local prefixes = {}
    for _, field in ipairs(record.fields(text)) do
        if field[1] == "p" then
            -- The app stays encoded: it is the key of its a: and p: records.
            for _, item in ipairs(record.raw_items(field[2])) do
                local raw_prefix, app_key = match(item, "^([^:]*):(.+)$")
                local prefix = raw_prefix and record.unescape(raw_prefix)
                if prefix and site.apps[prefix] == nil then
                    site.apps[prefix] = app_key
                    prefixes[#prefixes + 1] = prefix
                end
            end
        end
    end
    sort(prefixes, longest_first)
    site.prefixes = prefixes
    site.only = (#prefixes == 1 and prefixes[1] == "/") and site.apps["/"] or nil
    return site
end


local function decode_app(id, text)
    local app = { id = id, backends = {}, default = "stable" }
    local auth_realm, auth_users
    for _, field in ipairs(record.fields(text)) do
        local name, raw = field[1], field[2]
        if name == "d" then
            app.default = record.unescape(raw)
        elseif name == "v" then
            for _, item in ipairs(record.raw_items(raw)) do
                local parts = record.parts(item)
                app.backends[parts[1]] = parts[2]
            end
        elseif name == "s" then
            app.strip_path = true
        elseif name == "r" then
            app.redirect_https = true
        elseif name == "o" then
            app.redirect_root = record.unescape(raw)
        elseif name == "h" then
            app.hsts = true
        elseif name == "m" then
            app.max_body = tonumber(raw)
        elseif name == "t" then
            app.server_timeout = tonumber(raw)
        elseif name == "f" then
            local allow = {}
            for _, text in ipairs(record.list(raw)) do
                allow[#allow + 1] = cidr.parse(text)
            end
            app.allow = allow
        elseif name == "k" then
            app.sticky_cookie = record.unescape(raw)
        elseif name == "b" then
            auth_realm = record.unescape(raw)
        elseif name == "u" then
            auth_users = {}
            for _, item in ipairs(record.raw_items(raw)) do
                local parts = record.parts(item)
                auth_users[parts[1]] = parts[2]
            end
        end
    end
    -- A realm without users lets no one in: the app stays closed.
    if auth_realm or auth_users then
        app.basic_auth = credentials.compile(auth_realm or "", auth_users or {})
    end
    app.checks = app.redirect_https or app.max_body ~= nil or app.allow ~= nil or app.redirect_root ~= nil
        or app.basic_auth ~= nil
    return app
end


-- `lookup(key)` reads rules.map (nil when absent); `compile_regex(pattern)`
-- returns a regex object or nil and why; `warn(message)` logs.
function _M.new(lookup, compile_regex, warn)
    return setmetatable({ lookup = lookup, compile_regex = compile_regex, warn = warn, version = false, sites = {}, apps = {},
                          region_cache = {}, region_cached = 0 }, mt)
end


-- Drops every decoded record when the agent changed the map.
function _M.refresh(self)
    local version = self.lookup("v")
    if version ~= self.version then
        self.version = version
        self.sites = {}
        self.apps = {}
        self.regions = nil
        self.region_cache = {}
        self.region_cached = 0
    end
end


local function decode_regions(text)
    local list = {}
    for _, field in ipairs(record.fields(text or "")) do
        if field[1] == "e" then
            for _, item in ipairs(record.raw_items(field[2])) do
                local parts = record.parts(item)
                local parsed = cidr.parse(parts[1])
                if parsed and parts[2] then
                    list[#list + 1] = { cidr = parsed, region = parts[2] }
                end
            end
        end
    end
    -- The most specific CIDR names the region (the agent sorts them too).
    sort(list, function(a, b)
        return a.cidr.bits > b.cidr.bits
    end)
    return list
end


-- A cache of this many addresses per Lua state, emptied when full or
-- when the agent changes the map: a client's region costs one scan.
local REGION_CACHE_MAX = 10000
local NO_REGION = false


-- The region of a client address (binary, 4 or 16 bytes) by the CIDR table.
function _M.region_of(self, addr)
    if addr == nil then
        return nil
    end
    local cache = self.region_cache
    local region = cache[addr]
    if region == nil then
        local regions = self.regions
        if regions == nil then
            regions = decode_regions(record.read(self.lookup, "x:regions"))
            self.regions = regions
        end
        region = NO_REGION
        for i = 1, #regions do
            if cidr.contains(regions[i].cidr, addr) then
                region = regions[i].region
                break
            end
        end
        if self.region_cached >= REGION_CACHE_MAX then
            cache = {}
            self.region_cache = cache
            self.region_cached = 0
        end
        cache[addr] = region
        self.region_cached = self.region_cached + 1
    end
    return region or nil
end


-- false marks a key known to have no record.
function _M.site(self, key)
    local site = self.sites[key]
    if site == nil then
        local text = record.read(self.lookup, "h:" .. key)
        site = text and decode_site(text) or false
        self.sites[key] = site
    end
    return site or nil
end


-- `key`: the app's id, percent-encoded as the records name it.
function _M.app(self, key)
    local app = self.apps[key]
    if app == nil then
        local text = record.read(self.lookup, "a:" .. key)
        if text then
            local id = record.unescape(key)
            app = decode_app(id, text)
            local policy_text = record.read(self.lookup, "p:" .. key)
            if policy_text then
                local problems
                app.policy, problems = policy.compile(policy_text, id, self.compile_regex)
                for _, problem in ipairs(problems) do
                    self.warn("edgeroute: split policy of app " .. id .. ": " .. problem .. "; that rule is skipped")
                end
            end
        else
            app = false
        end
        self.apps[key] = app
    end
    return app or nil
end


local function route_in(site, get_path)
    local only = site.only
    if only then
        return only, "/"
    end
    local path = get_path()
    if path == nil then
        return nil
    end
    return match_path(site, path)
end


-- The app (its record key) serving `host` (lower case, no port) at the path get_path()
-- returns (normalized; called only when the host routes by path), and the
-- prefix it matched; else nil and whether some app serves the host.
function _M.find(self, host, get_path)
    local site = self:site(host)
    if site then
        local id, prefix = route_in(site, get_path)
        if id then
            return id, prefix
        end
    end
    local dot = find(host, ".", 1, true)
    while dot do
        local wildcard = self:site("*" .. sub(host, dot))
        if wildcard then
            local id, prefix = route_in(wildcard, get_path)
            if id then
                return id, prefix
            end
            return nil, true
        end
        dot = find(host, ".", dot + 1, true)
    end
    return nil, site ~= nil
end


-- The backend of the version a request gets: the policy's pick, else its
-- default, else stable, else the app's default version (nginx's order).
function _M.backend(app, env)
    local backends = app.backends
    local compiled = app.policy
    if compiled then
        local name = policy.choose(compiled, env)
        local backend = backends[name] or backends[compiled.default] or backends.stable
        if backend then
            return backend, backends[name] and name or backends[compiled.default] and compiled.default or "stable"
        end
    end
    return backends[app.default], app.default
end


return _M
