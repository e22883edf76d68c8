-- The push format, NDJSON: a header line {"version": ..., "base": ...}, then
-- one line per changed app route, or {"remove": id} for a removed app. Each
-- route line is kept as sent, so nothing is re-encoded. The agent's snapshot
-- file is a full push in the same format.

local cjson = require "cjson.safe"
local route_check = require "edgeroute.route_check"

local type = type
local find = string.find
local sub = string.sub
local json_decode = cjson.decode
local json_null = cjson.null

local _M = { _VERSION = "0.1.0" }


-- Returns version, base, routes (id → {raw, hash}), removed ids; or nil and a message.
function _M.parse(body)
    local pos = 1
    local header
    local routes, removed = {}, {}
    local line_number = 0
    while pos <= #body do
        local stop = find(body, "\n", pos, true) or #body + 1
        local line = sub(body, pos, stop - 1)
        pos = stop + 1
        if line ~= "" then
            line_number = line_number + 1
            local item, err = json_decode(line)
            if type(item) ~= "table" then
                return nil, "line " .. line_number .. " is not a JSON object: " .. (err or "wrong type")
            end
            if header == nil then
                header = item
            elseif item.remove ~= nil then
                if type(item.remove) ~= "string" or #item.remove > route_check.MAX_ID_BYTES then
                    return nil, "line " .. line_number .. ": remove must name an app id"
                end
                removed[#removed + 1] = item.remove
            else
                if type(item.id) ~= "string" then
                    return nil, "line " .. line_number .. ": an app route needs an id"
                end
                local problem = route_check.check(item.id, item)
                if problem then
                    return nil, problem
                end
                routes[item.id] = { raw = line, hash = item.hash }
            end
        end
    end
    if header == nil then
        return nil, "empty body"
    end
    if type(header.version) ~= "string" or header.version == "" then
        return nil, "version must be a non-empty string"
    end
    local base = header.base
    if base == json_null then
        base = nil
    elseif base ~= nil and type(base) ~= "string" then
        return nil, "base must be a string or null"
    end
    return header.version, base, routes, removed
end



return _M
