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


local function check_backend(backend, where)
    if type(backend) ~= "table" then
        return where .. " is not an object"
    end
    if type(backend.id) ~= "string" or backend.id == "" then
        return where .. ".id must be a non-empty string"
    end
    if not is_ip(backend.address) then
        return where .. ".address must be an IP address, got " .. shown(backend.address)
    end
    if not is_whole(backend.port, 1, 65535) then
        return where .. ".port must be a port number, got " .. shown(backend.port)
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
    local where = "apps[" .. shown(id) .. "]"
    if #id > MAX_ID_BYTES then
        return where .. ".id is longer than " .. MAX_ID_BYTES .. " bytes"
    end
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
        local err = check_version(version, where .. ".versions[" .. shown(name) .. "]")
        if err then
            return err
        end
    end
    if type(app.defaultVersion) ~= "string" or app.versions[app.defaultVersion] == nil then
        return where .. ".defaultVersion must name one of its versions"
    end
end


return _M
