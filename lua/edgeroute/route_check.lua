-- Validates a pushed app route before anything is stored, so a bad push is
-- refused whole and never reaches the workers.

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local floor = math.floor
local find = string.find
local sub = string.sub
local gsub = string.gsub
local byte = string.byte
local format = string.format
local cidr = require "edgeroute.policy.cidr"

local _M = { _VERSION = "0.1.0" }

local MAX_WEIGHT = 10000
-- The shared dict refuses keys over 64 KiB ("route:" .. id): a longer id
-- would fail the push half-stored, as a 507. The agent skips Marathon ids
-- over 1,024 characters, far below this.
local MAX_ID_BYTES = 4096
_M.MAX_ID_BYTES = MAX_ID_BYTES
-- Values in messages are cut: a refused push is logged, and answered.
local SHOWN_BYTES = 80


-- How a pushed value appears in a message: cut, and with control characters
-- escaped so that it cannot split the "push refused" line in the error log.
local function shown(value)
    local text = tostring(value)
    if #text > SHOWN_BYTES then
        text = sub(text, 1, SHOWN_BYTES) .. "... (" .. #text .. " bytes)"
    end
    return (gsub(text, "[%z\1-\31\127]", function(c)
        return format("\\x%02x", byte(c))
    end))
end
_M.shown = shown


local function is_whole(n, min, max)
    return type(n) == "number" and n == floor(n) and n >= min and n <= max
end


-- nginx peers are IP addresses; a host name here would fail at request time.
local function is_ip(address)
    if type(address) ~= "string" then
        return false
    end
    return find(address, "^%d+%.%d+%.%d+%.%d+$") ~= nil
        or find(address, "^[%x:.]+$") ~= nil and find(address, ":", 1, true) ~= nil
end


-- Addresses already found to be IPs: a cluster has few hosts, and a full
-- push names each in thousands of backends. Bounded, in case of churn.
local KNOWN_IPS_MAX = 4096
local known_ips, known_ip_count = {}, 0

local function is_known_ip(address)
    if known_ips[address] then
        return true
    end
    if not is_ip(address) then
        return false
    end
    if known_ip_count >= KNOWN_IPS_MAX then
        known_ips, known_ip_count = {}, 0
    end
    known_ips[address] = true
    known_ip_count = known_ip_count + 1
    return true
end


-- The checks below return a message that starts where the field's place in
-- the route ends (".port must be ..."); the caller prefixes the place only
-- when there is a message: a full push checks 100,000 backends, and building
-- each one's place ("apps[...].versions[...].backends[i]") up front cost more
-- than the checks.
local function check_backend_fields(id, address, port, weight)
    if type(id) ~= "string" or id == "" then
        return ".id must be a non-empty string"
    end
    if type(address) ~= "string" or not is_known_ip(address) then
        return ".address must be an IP address, got " .. shown(address)
    end
    if not is_whole(port, 1, 65535) then
        return ".port must be a port number, got " .. shown(port)
    end
    if not is_whole(weight, 1, MAX_WEIGHT) then
        return ".weight must be a whole number from 1 to " .. MAX_WEIGHT
    end
end


-- A version's backends come as objects ("backends"), or as one flat array
-- ("backendsFlat": id, address, port, weight, id, ...) from an agent that
-- read push_features in the plugin's status: a full push then decodes one table per
-- version instead of one per backend (100,000 fewer at 10,000 apps).
local function check_version(version)
    if type(version) ~= "table" then
        return " is not an object"
    end
    local flat = version.backendsFlat
    if flat ~= nil then
        if version.backends ~= nil then
            return " must have backends or backendsFlat, not both"
        end
        if type(flat) ~= "table" or #flat % 4 ~= 0 then
            return ".backendsFlat must be an array of id, address, port, weight, ..."
        end
        for i = 1, #flat, 4 do
            local err = check_backend_fields(flat[i], flat[i + 1], flat[i + 2], flat[i + 3])
            if err then
                return ".backendsFlat[" .. (i + 3) / 4 .. "]" .. err
            end
        end
        return
    end
    if type(version.backends) ~= "table" then
        return ".backends must be an array"
    end
    for i, backend in ipairs(version.backends) do
        if type(backend) ~= "table" then
            return ".backends[" .. i .. "] is not an object"
        end
        local err = check_backend_fields(backend.id, backend.address, backend.port, backend.weight)
        if err then
            return ".backends[" .. i .. "]" .. err
        end
    end
end


-- Path prefixes as the agent writes them: "/" or "/a/b" without a trailing
-- "/", so that a match at a "/" boundary is one comparison.
local function is_prefix(path)
    return type(path) == "string" and #path <= 1024
        and (path == "/" or (find(path, "^/[^%s%%?#]*[^/%s%%?#]$") ~= nil
            and not find(path, "//", 1, true)))
end


local function check_paths(app)
    local paths = app.paths
    if paths == nil then
        return
    end
    if type(paths) ~= "table" then
        return ".paths must be an object of host → prefixes"
    end
    local hosts = {}
    for _, vhost in ipairs(app.vhosts) do
        hosts[vhost] = true
    end
    for host, prefixes in pairs(paths) do
        if not hosts[host] then
            return ".paths[" .. shown(host) .. "] names a host not in vhosts"
        end
        if type(prefixes) ~= "table" or #prefixes == 0 then
            return ".paths[" .. shown(host) .. "] must be a non-empty array"
        end
        for i, prefix in ipairs(prefixes) do
            if not is_prefix(prefix) then
                return ".paths[" .. shown(host) .. "][" .. i .. "] is not a path prefix: " .. shown(prefix)
            end
        end
    end
end


-- edgeroute.basicAuth as the agent pushes it: { realm, users = { name = hash } }.
-- The agent checks the hashes fully; here: crypt(3) strings of the forms
-- both planes check, and a realm that cannot break the challenge header.
-- A refusal never quotes the setting: it holds password hashes.
local MAX_AUTH_USERS = 64
local function valid_basic_auth(v)
    if type(v) ~= "table" or type(v.realm) ~= "string" or type(v.users) ~= "table" then
        return false
    end
    if #v.realm > 128 or find(v.realm, '[%z\1-\31\127"\\]') then
        return false
    end
    local count = 0
    for name, hash in pairs(v.users) do
        count = count + 1
        if type(name) ~= "string" or name == "" or #name > 128 or find(name, "[%z\1-\31\127:,]")
            or type(hash) ~= "string" or #hash > 256 or not find(hash, "^%$[156]%$[%w./$=]+$") then
            return false
        end
    end
    return count > 0 and count <= MAX_AUTH_USERS
end


local SETTING_CHECKS = {
    stripPath = function(v) return v == true end,
    redirectHttps = function(v) return v == true end,
    -- The agent checks it fully; here: a path or URL without control bytes or spaces (it becomes a Location header).
    redirectRoot = function(v) return type(v) == "string" and #v <= 1024 and find(v, "^[/h][%w%._~!%$&'()*+,;=:@/?%%#%[%]%-]*$") ~= nil end,
    hsts = function(v) return v == true end,
    sticky = function(v) return type(v) == "string" and find(v, "^[%w_.-]+$") ~= nil and #v <= 64 end,
    balance = function(v) return v == "leastconn" end,
    connectTimeout = function(v) return type(v) == "number" and v > 0 and v <= 86400 end,
    readTimeout = function(v) return type(v) == "number" and v > 0 and v <= 86400 end,
    sendTimeout = function(v) return type(v) == "number" and v > 0 and v <= 86400 end,
    maxBodySize = function(v) return is_whole(v, 1, 2 ^ 53) end,
    basicAuth = valid_basic_auth,
    allowFrom = function(v)
        if type(v) ~= "table" or #v == 0 then
            return false
        end
        for _, text in ipairs(v) do
            if type(text) ~= "string" or not cidr.parse(text) then
                return false
            end
        end
        return true
    end,
}


local function check_settings(app)
    local settings = app.settings
    if settings == nil then
        return
    end
    if type(settings) ~= "table" then
        return ".settings must be an object"
    end
    for name, value in pairs(settings) do
        local valid = SETTING_CHECKS[name]
        if valid == nil then
            return ".settings has an unknown setting " .. shown(name)
        end
        if not valid(value) then
            return ".settings." .. name .. " is not valid" .. (name == "basicAuth" and "" or ": " .. shown(value))
        end
    end
end


local function check_route(id, app)
    if #id > MAX_ID_BYTES then
        return ".id is longer than " .. MAX_ID_BYTES .. " bytes"
    end
    if type(app) ~= "table" then
        return " must be an object or null"
    end
    if app.id ~= id then
        return ".id must equal its key"
    end
    if type(app.hash) ~= "string" or app.hash == "" then
        return ".hash must be a non-empty string"
    end
    if type(app.vhosts) ~= "table" or #app.vhosts == 0 then
        return ".vhosts must be a non-empty array"
    end
    for i, vhost in ipairs(app.vhosts) do
        if type(vhost) ~= "string" or vhost == "" then
            return ".vhosts[" .. i .. "] must be a host name"
        end
    end
    if type(app.versions) ~= "table" then
        return ".versions must be an object"
    end
    for name, version in pairs(app.versions) do
        local err = check_version(version)
        if err then
            return ".versions[" .. shown(name) .. "]" .. err
        end
    end
    if type(app.defaultVersion) ~= "string" or app.versions[app.defaultVersion] == nil then
        return ".defaultVersion must name one of its versions"
    end
    return check_paths(app) or check_settings(app)
end


-- Returns nil when `app` is a valid route for `id`, else a message naming the field.
function _M.check(id, app)
    local err = check_route(id, app)
    if err then
        return "apps[" .. shown(id) .. "]" .. err
    end
end


return _M
