-- What a policy reads from a request, the way nginx's variables give it
-- (so one user gets one version on both kinds of node): the first cookie or
-- query argument of that name, names compared without case, values raw.

local lower = string.lower
local gmatch = string.gmatch
local match = string.match
local find = string.find
local sub = string.sub

local _M = { _VERSION = "0.1.0" }


-- Cookie header values → { lower-case name → first value }.
function _M.cookies(headers)
    local out = {}
    for i = 1, #headers do
        for pair in gmatch(headers[i], "[^;]+") do
            local name, value = match(pair, "^%s*([^=]-)%s*=(.*)$")
            if name and name ~= "" then
                name = lower(name)
                if out[name] == nil then
                    out[name] = match(value, "^%s*(.-)%s*$")
                end
            end
        end
    end
    return out
end


-- A query string → { lower-case name → first raw value }.
function _M.args(query)
    local out = {}
    if query == nil or query == "" then
        return out
    end
    for pair in gmatch(query, "[^&]+") do
        -- nginx's $arg_NAME needs "NAME=": a bare "NAME" is no value.
        local eq = find(pair, "=", 1, true)
        if eq then
            local name = lower(sub(pair, 1, eq - 1))
            if out[name] == nil then
                out[name] = sub(pair, eq + 1)
            end
        end
    end
    return out
end


return _M
