-- Strict JSON (RFC 8259) for policies typed by hand, accepting exactly what
-- JavaScript's JSON.parse accepts on UTF-8 text (the CLI's check), except
-- strings holding a lone UTF-16 surrogate, which both sides refuse.
--
-- cjson is lenient where a policy must not be: it takes NaN, Infinity, 0x1F,
-- -.5, 1. and raw control characters in strings, and decodes [] and {} to
-- the same empty table. So a policy the CLI refuses could load in nginx, and
-- {"rules": {}} or a top-level [] passed as valid. Here arrays and objects
-- carry a metatable saying which they are (see kind()).
--
-- Only worker 0 decodes a policy, once per change; the request path never
-- runs this.

local cjson = require "cjson.safe"

local byte = string.byte
local sub = string.sub
local find = string.find
local char = string.char
local tonumber = tonumber
local setmetatable = setmetatable
local getmetatable = getmetatable
local floor = math.floor
local concat = table.concat

local _M = { _VERSION = "0.1.0" }

-- cjson's null, so that code written against cjson output reads this too.
_M.null = cjson.null
_M.MAX_DEPTH = 1000

local ARRAY_MT = { __jsontype = "array" }
local OBJECT_MT = { __jsontype = "object" }


-- "array", "object", or nil for a table that did not come from decode().
function _M.kind(value)
    local mt = getmetatable(value)
    return mt and mt.__jsontype
end


-- Whether `text` is well-formed UTF-8: no overlong forms, no surrogates,
-- nothing past U+10FFFF. Returns true, or false and the byte offset.
local function valid_utf8(text)
    local pos = 1
    local len = #text
    while true do
        pos = find(text, "[\128-\255]", pos)
        if not pos then
            return true
        end
        local c = byte(text, pos)
        local need, min
        if c >= 0xC2 and c <= 0xDF then
            need, min = 1, 0x80
        elseif c >= 0xE0 and c <= 0xEF then
            need, min = 2, 0x800
        elseif c >= 0xF0 and c <= 0xF4 then
            need, min = 3, 0x10000
        else
            return false, pos
        end
        if pos + need > len then
            return false, pos
        end
        local code = c % (2 ^ (6 - need))
        for i = 1, need do
            local cc = byte(text, pos + i)
            if cc < 0x80 or cc > 0xBF then
                return false, pos
            end
            code = code * 64 + cc % 64
        end
        if code < min or code > 0x10FFFF or (code >= 0xD800 and code <= 0xDFFF) then
            return false, pos
        end
        pos = pos + need + 1
    end
end


local function utf8_char(code)
    if code < 0x80 then
        return char(code)
    elseif code < 0x800 then
        return char(0xC0 + floor(code / 64), 0x80 + code % 64)
    elseif code < 0x10000 then
        return char(0xE0 + floor(code / 4096), 0x80 + floor(code / 64) % 64, 0x80 + code % 64)
    end
    return char(0xF0 + floor(code / 262144), 0x80 + floor(code / 4096) % 64, 0x80 + floor(code / 64) % 64, 0x80 + code % 64)
end


local ESCAPES = {
    [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t",
}


-- Decodes `text`; returns the value, or nil and a message naming the
-- character where it went wrong.
function _M.decode(text)
    if type(text) ~= "string" then
        return nil, "not a string"
    end
    local ok_utf8, bad_at = valid_utf8(text)
    if not ok_utf8 then
        return nil, "invalid UTF-8 at byte " .. bad_at
    end

    local pos = 1
    local depth = 0
    local problem

    local function fail(message)
        problem = problem or (message .. " at character " .. pos)
        return nil
    end

    local function skip_space()
        pos = find(text, "[^ \t\r\n]", pos) or #text + 1
    end

    local function hex4(at)
        local digits = sub(text, at, at + 3)
        if #digits ~= 4 or not find(digits, "^%x%x%x%x$") then
            return nil
        end
        return tonumber(digits, 16)
    end

    local function read_string()
        -- pos is on the opening quote.
        local parts = {}
        pos = pos + 1
        while true do
            local stop = find(text, '["\\%z\1-\31]', pos)
            if not stop then
                return fail("unterminated string")
            end
            if stop > pos then
                parts[#parts + 1] = sub(text, pos, stop - 1)
            end
            pos = stop
            local c = byte(text, stop)
            if c == 34 then
                pos = stop + 1
                return concat(parts)
            elseif c ~= 92 then
                return fail("control character in a string")
            end
            local e = byte(text, stop + 1)
            if e == 117 then
                local code = hex4(stop + 2)
                if not code then
                    return fail("bad \\u escape")
                end
                pos = stop + 6
                if code >= 0xD800 and code <= 0xDBFF then
                    local low = sub(text, pos, pos + 1) == "\\u" and hex4(pos + 2)
                    if not low or low < 0xDC00 or low > 0xDFFF then
                        return fail("lone surrogate in a \\u escape")
                    end
                    code = 0x10000 + (code - 0xD800) * 1024 + (low - 0xDC00)
                    pos = pos + 6
                elseif code >= 0xDC00 and code <= 0xDFFF then
                    return fail("lone surrogate in a \\u escape")
                end
                parts[#parts + 1] = utf8_char(code)
            elseif e and ESCAPES[e] then
                parts[#parts + 1] = ESCAPES[e]
                pos = stop + 2
            else
                return fail("bad escape")
            end
        end
    end

    local function read_number()
        local start = pos
        if byte(text, pos) == 45 then
            pos = pos + 1
        end
        local c = byte(text, pos)
        if c == 48 then
            pos = pos + 1
        elseif c and c >= 49 and c <= 57 then
            pos = find(text, "[^0-9]", pos) or #text + 1
        else
            return fail("bad number")
        end
        if byte(text, pos) == 46 then
            pos = pos + 1
            if not find(text, "^[0-9]", pos) then
                return fail("bad number")
            end
            pos = find(text, "[^0-9]", pos) or #text + 1
        end
        c = byte(text, pos)
        if c == 101 or c == 69 then
            pos = pos + 1
            c = byte(text, pos)
            if c == 43 or c == 45 then
                pos = pos + 1
            end
            if not find(text, "^[0-9]", pos) then
                return fail("bad number")
            end
            pos = find(text, "[^0-9]", pos) or #text + 1
        end
        return tonumber(sub(text, start, pos - 1))
    end

    local read_value

    local function read_array()
        depth = depth + 1
        if depth > _M.MAX_DEPTH then
            return fail("nested deeper than " .. _M.MAX_DEPTH .. " levels")
        end
        pos = pos + 1
        local array = setmetatable({}, ARRAY_MT)
        skip_space()
        if byte(text, pos) == 93 then
            pos = pos + 1
            depth = depth - 1
            return array
        end
        while true do
            local value = read_value()
            if value == nil then
                return nil
            end
            array[#array + 1] = value
            skip_space()
            local c = byte(text, pos)
            pos = pos + 1
            if c == 93 then
                depth = depth - 1
                return array
            elseif c ~= 44 then
                pos = pos - 1
                return fail("expected , or ]")
            end
        end
    end

    local function read_object()
        depth = depth + 1
        if depth > _M.MAX_DEPTH then
            return fail("nested deeper than " .. _M.MAX_DEPTH .. " levels")
        end
        pos = pos + 1
        local object = setmetatable({}, OBJECT_MT)
        skip_space()
        if byte(text, pos) == 125 then
            pos = pos + 1
            depth = depth - 1
            return object
        end
        while true do
            skip_space()
            if byte(text, pos) ~= 34 then
                return fail("expected a key")
            end
            local key = read_string()
            if key == nil then
                return nil
            end
            skip_space()
            if byte(text, pos) ~= 58 then
                return fail("expected :")
            end
            pos = pos + 1
            local value = read_value()
            if value == nil then
                return nil
            end
            object[key] = value
            skip_space()
            local c = byte(text, pos)
            pos = pos + 1
            if c == 125 then
                depth = depth - 1
                return object
            elseif c ~= 44 then
                pos = pos - 1
                return fail("expected , or }")
            end
        end
    end

    local LITERALS = { [116] = { "true", true }, [102] = { "false", false }, [110] = { "null", _M.null } }

    read_value = function()
        skip_space()
        local c = byte(text, pos)
        if c == 123 then
            return read_object()
        elseif c == 91 then
            return read_array()
        elseif c == 34 then
            return read_string()
        elseif c == 45 or (c and c >= 48 and c <= 57) then
            return read_number()
        end
        local literal = c and LITERALS[c]
        if literal and sub(text, pos, pos + #literal[1] - 1) == literal[1] then
            pos = pos + #literal[1]
            return literal[2]
        end
        return fail(c and "unexpected character" or "unexpected end")
    end

    local value = read_value()
    if value == nil then
        return nil, problem
    end
    skip_space()
    if pos <= #text then
        return nil, "unexpected text after the value at character " .. pos
    end
    return value
end


return _M
