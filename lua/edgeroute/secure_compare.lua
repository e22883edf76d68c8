-- Token comparison whose time does not depend on where the strings differ.

local byte = string.byte
local bxor = bit.bxor
local bor = bit.bor
local type = type

local _M = { _VERSION = "0.1.0" }


function _M.equals(a, b)
    if type(a) ~= "string" or type(b) ~= "string" or #a ~= #b then
        return false
    end
    local diff = 0
    for i = 1, #a do
        diff = bor(diff, bxor(byte(a, i), byte(b, i)))
    end
    return diff == 0
end


return _M
