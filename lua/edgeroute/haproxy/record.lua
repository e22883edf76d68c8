-- The records the agent writes into HAProxy's rules.map (see
-- agent/dataplane/haproxy/lua-records.ts): fields separated by "|", each
-- "name=value"; a value is a list separated by ",", an item may have parts
-- separated by ":"; every item and part is percent-encoded, so none of the
-- separators (nor a space or ";", which HAProxy's CLI would split on)
-- occurs inside one. Decoded once per record and rules version, never per
-- request.

local gsub = string.gsub
local gmatch = string.gmatch
local char = string.char
local find = string.find
local sub = string.sub
local tonumber = tonumber

local _M = { _VERSION = "0.1.0" }


local function hex_char(hex)
    return char(tonumber(hex, 16))
end


function _M.unescape(text)
    return (gsub(text, "%%(%x%x)", hex_char))
end
local unescape = _M.unescape


-- Every (name, raw value) of a record, in order (names may repeat).
function _M.fields(text)
    local out = {}
    for field in gmatch(text, "[^|]+") do
        local eq = find(field, "=", 1, true)
        if eq then
            out[#out + 1] = { sub(field, 1, eq - 1), sub(field, eq + 1) }
        end
    end
    return out
end


-- A raw value's items, decoded; "" is an empty list.
function _M.list(raw)
    local out = {}
    if raw == "" then
        return out
    end
    for item in gmatch(raw .. ",", "([^,]*),") do
        out[#out + 1] = unescape(item)
    end
    return out
end


-- A raw item's parts ("a:b:c"), decoded.
function _M.parts(raw)
    local out = {}
    for part in gmatch(raw .. ":", "([^:]*):") do
        out[#out + 1] = unescape(part)
    end
    return out
end


-- The raw items of a value, each still holding its ":" parts.
function _M.raw_items(raw)
    local out = {}
    if raw == "" then
        return out
    end
    for item in gmatch(raw .. ",", "([^,]*),") do
        out[#out + 1] = item
    end
    return out
end


-- A record as the map holds it: the text itself, or "#N" and the text in
-- N more entries, `key#1` ... `key#N` (a runtime-API line has a length
-- limit). `lookup(key)` returns the entry or nil.
function _M.read(lookup, key)
    local text = lookup(key)
    if text == nil or sub(text, 1, 1) ~= "#" then
        return text
    end
    local n = tonumber(sub(text, 2))
    if n == nil then
        return nil
    end
    local parts = {}
    for i = 1, n do
        local part = lookup(key .. "#" .. i)
        if part == nil then
            return nil
        end
        parts[i] = part
    end
    return table.concat(parts)
end


return _M
