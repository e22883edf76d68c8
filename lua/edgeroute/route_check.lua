-- Validates a pushed app route before anything is stored, so a bad push is
-- refused whole and never reaches the workers.

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local floor = math.floor
local find = string.find

local _M = { _VERSION = "0.1.0" }

local MAX_WEIGHT = 10000


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


local function check_backend(backend, where)
    if type(backend) ~= "table" then
        return where .. " is not an object"
    end
    if type(backend.id) ~= "string" or backend.id == "" then
        return where .. ".id must be a non-empty string"
    end
    if not is_ip(backend.address) then
        return where .. ".address must be an IP address, got " .. tostring(backend.address)
    end
    if not is_whole(backend.port, 1, 65535) then
        return where .. ".port must be a port number, got " .. tostring(backend.port)
    end
    if not is_whole(backend.weight, 1, MAX_WEIGHT) then
        return where .. ".weight must be a whole number from 1 to " .. MAX_WEIGHT
    end
end


local function check_version(version, where)
    if type(version) ~= "table" then
        return where .. " is not an object"
    end
    if type(version.backends) ~= "table" then
        return where .. ".backends must be an array"
    end
    for i, backend in ipairs(version.backends) do
        local err = check_backend(backend, where .. ".backends[" .. i .. "]")
        if err then
            return err
        end
    end
end


-- Returns nil when `app` is a valid route for `id`, else a message naming the field.
function _M.check(id, app)
    local where = "apps[" .. id .. "]"
    if type(app) ~= "table" then
        return where .. " must be an object or null"
    end
    if app.id ~= id then
        return where .. ".id must equal its key"
    end
    if type(app.hash) ~= "string" or app.hash == "" then
        return where .. ".hash must be a non-empty string"
    end
    if type(app.vhosts) ~= "table" or #app.vhosts == 0 then
        return where .. ".vhosts must be a non-empty array"
    end
    for i, vhost in ipairs(app.vhosts) do
        if type(vhost) ~= "string" or vhost == "" then
            return where .. ".vhosts[" .. i .. "] must be a host name"
        end
    end
    if type(app.versions) ~= "table" then
        return where .. ".versions must be an object"
    end
    for name, version in pairs(app.versions) do
        local err = check_version(version, where .. ".versions[" .. tostring(name) .. "]")
        if err then
            return err
        end
    end
    if type(app.defaultVersion) ~= "string" or app.versions[app.defaultVersion] == nil then
        return where .. ".defaultVersion must name one of its versions"
    end
end


return _M
