-- Validates a decoded policy the way schemas/policy.schema.json and the CLI
-- do, with the same JSON-pointer paths in messages ("/rules/0/match/ip/1:
-- ..."). Policies come from Redis, often typed by hand: nothing in them is
-- trusted, and nothing in them is ever run as code.

local cidr = require "edgeroute.policy.cidr"
local json = require "edgeroute.policy.json"

local type = type
local pairs = pairs
local next = next
local tostring = tostring
local floor = math.floor
local abs = math.abs
local find = string.find
local sub = string.sub
local gsub = string.gsub
local byte = string.byte
local format = string.format

local _M = { _VERSION = "0.1.0" }

local NAME = "^[A-Za-z0-9][A-Za-z0-9._/%-]*$"
local MAX_NAME = 128
local TOKEN = "^[A-Za-z0-9!#$%%&'*+.^_`|~%-]+$"
local MATCHERS = { device = true, ip = true, region = true, cookie = true, header = true, arg = true, percentage = true }
local TEST_FIELDS = { values = true, pattern = true, patterns = true }
local LIMITS = { rules = 256, ip = 4096, region = 1024, values = 1024, patterns = 64 }


-- A policy is at most this big (the CLI refuses the same).
_M.MAX_POLICY_BYTES = 1024 * 1024
local QUOTE_MAX = 128

local QUOTE_ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function escape_char(c)
    return QUOTE_ESCAPES[c] or format("\\u%04x", byte(c))
end


-- Text cut to QUOTE_MAX bytes, with control characters, quotes and
-- backslashes escaped as JSON writes them: refused text goes into nginx's
-- error log, where a newline in it could forge a log line.
local function escaped(text)
    local cut = #text > QUOTE_MAX and sub(text, 1, QUOTE_MAX) .. "..." or text
    return (gsub(cut, '[%z\1-\31"\\\127]', escape_char))
end


local function quote(value)
    if type(value) == "string" then
        return '"' .. escaped(value) .. '"'
    end
    return tostring(value)
end


-- Characters (code points) in UTF-8 text, as JSON Schema's maxLength counts
-- them: every byte except continuation bytes starts one.
local function char_length(text)
    local _, continuations = gsub(text, "[\128-\191]", "")
    return #text - continuations
end


-- Tables from json.decode say whether they were an array or an object.
-- Without that mark (a table built by hand, or by cjson), arrays have keys
-- 1..n and objects string keys, and an empty table is accepted as both.
local function is_array(value)
    if type(value) ~= "table" then
        return false
    end
    local kind = json.kind(value)
    if kind then
        return kind == "array"
    end
    local n = #value
    for key in pairs(value) do
        if type(key) ~= "number" or key < 1 or key > n or key ~= floor(key) then
            return false
        end
    end
    return true
end


local function is_object(value)
    if type(value) ~= "table" then
        return false
    end
    local kind = json.kind(value)
    if kind then
        return kind == "object"
    end
    for key in pairs(value) do
        if type(key) ~= "string" then
            return next(value) == nil
        end
    end
    return true
end


local function unknown_field(object, allowed, at)
    for key in pairs(object) do
        if not allowed[key] then
            return format("%s: unknown field %s", at, quote(key))
        end
    end
end


local function check_string(value, at, max)
    if type(value) ~= "string" then
        return at .. ": must be a string"
    end
    if #value > max and char_length(value) > max then
        return format("%s: longer than %d characters", at, max)
    end
end


local function check_name(value, at)
    if type(value) ~= "string" or #value > MAX_NAME or not find(value, NAME) then
        return at .. ": must be a version name (letters, digits, . _ / -)"
    end
end


local function check_token(value, at)
    if type(value) ~= "string" or #value == 0 or #value > 128 or not find(value, TOKEN) then
        return at .. ": must be a header, cookie or argument name"
    end
end


local function check_list(value, at, limit, each)
    if not is_array(value) or #value == 0 then
        return at .. ": must be a non-empty array"
    end
    if #value > limit then
        return format("%s: more than %d items", at, limit)
    end
    for i = 1, #value do
        local err = each(value[i], at .. "/" .. (i - 1))
        if err then
            return err
        end
    end
end


local function check_value_test(test, at, regex_ok, extra)
    if not is_object(test) then
        return at .. ": must be an object"
    end
    for key in pairs(test) do
        if not TEST_FIELDS[key] and key ~= extra then
            return format("%s: unknown field %s", at, quote(key))
        end
    end
    local count = (test.values ~= nil and 1 or 0) + (test.pattern ~= nil and 1 or 0) + (test.patterns ~= nil and 1 or 0)
    if count ~= 1 then
        return at .. ": needs exactly one of values, pattern or patterns"
    end
    local function check_regex(pattern, where)
        local err = check_string(pattern, where, 1024)
        if err then
            return err
        end
        if pattern == "" then
            return where .. ": must not be empty"
        end
        local ok, why = regex_ok(pattern)
        if not ok then
            -- PCRE's message repeats the pattern, raw.
            return format("%s: %s is not a valid regex (%s)", where, quote(pattern), escaped(tostring(why)))
        end
    end
    if test.values ~= nil then
        return check_list(test.values, at .. "/values", LIMITS.values, function(v, where)
            return check_string(v, where, 4096)
        end)
    elseif test.pattern ~= nil then
        return check_regex(test.pattern, at .. "/pattern")
    end
    return check_list(test.patterns, at .. "/patterns", LIMITS.patterns, check_regex)
end


local function check_named_test(test, at, regex_ok)
    if not is_object(test) then
        return at .. ": must be an object"
    end
    if test.name == nil then
        return at .. ': missing field "name"'
    end
    local err = check_token(test.name, at .. "/name")
    if err then
        return err
    end
    return check_value_test(test, at, regex_ok, "name")
end


local function check_percentage(p, at)
    if not is_object(p) then
        return at .. ": must be an object"
    end
    local err = unknown_field(p, { value = true, by = true }, at)
    if err then
        return err
    end
    if type(p.value) ~= "number" or p.value ~= p.value or p.value < 0 or p.value > 100 then
        return at .. "/value: must be a number from 0 to 100"
    end
    if abs(p.value * 100 - floor(p.value * 100 + 0.5)) > 1e-6 then
        return format("%s/value: %s is not in steps of 0.01", at, tostring(p.value))
    end
    local by = p.by
    if by == nil then
        return at .. ': missing field "by"'
    end
    if by ~= "ip" then
        local kind = type(by) == "string" and (sub(by, 1, 7) == "cookie:" and 8 or sub(by, 1, 7) == "header:" and 8)
        if not kind or check_token(sub(by, kind), "") then
            return at .. '/by: must be "ip", "cookie:NAME" or "header:NAME"'
        end
    end
end


local function check_match(match, at, regex_ok)
    if not is_object(match) or next(match) == nil then
        return at .. ": must be an object with at least one matcher"
    end
    local err = unknown_field(match, MATCHERS, at)
    if err then
        return err
    end
    if match.device ~= nil then
        local device = match.device
        err = is_object(device) and device.header ~= nil and check_token(device.header, at .. "/device/header")
            or check_value_test(device, at .. "/device", regex_ok, "header")
        if err then
            return err
        end
    end
    if match.ip ~= nil then
        err = check_list(match.ip, at .. "/ip", LIMITS.ip, function(v, where)
            if type(v) ~= "string" or not cidr.parse(v) then
                return format("%s: %s is not an IPv4 or IPv6 CIDR", where, quote(v))
            end
        end)
        if err then
            return err
        end
    end
    if match.region ~= nil then
        err = check_list(match.region, at .. "/region", LIMITS.region, function(v, where)
            return check_string(v, where, 128) or (v == "" and where .. ": must not be empty") or nil
        end)
        if err then
            return err
        end
    end
    for _, name in pairs({ "cookie", "header", "arg" }) do
        if match[name] ~= nil then
            err = check_named_test(match[name], at .. "/" .. name, regex_ok)
            if err then
                return err
            end
        end
    end
    if match.percentage ~= nil then
        return check_percentage(match.percentage, at .. "/percentage")
    end
end


-- Returns nil when `policy` is valid, else the first problem, naming its field.
-- `regex_ok(pattern)` returns true, or false and why (ngx.re in nginx).
function _M.check(policy, regex_ok)
    if not is_object(policy) then
        return "/: must be a JSON object"
    end
    local err = unknown_field(policy, { default = true, seed = true, rules = true }, "/")
    if err then
        return err
    end
    if policy.default ~= nil then
        err = check_name(policy.default, "/default")
        if err then
            return err
        end
    end
    if policy.seed ~= nil then
        err = check_string(policy.seed, "/seed", 128)
        if err then
            return err
        end
    end
    if policy.rules == nil then
        return nil
    end
    if not is_array(policy.rules) then
        return "/rules: must be an array"
    end
    if #policy.rules > LIMITS.rules then
        return format("/rules: more than %d rules", LIMITS.rules)
    end
    for i = 1, #policy.rules do
        local rule, at = policy.rules[i], "/rules/" .. (i - 1)
        if not is_object(rule) then
            return at .. ": must be an object"
        end
        err = unknown_field(rule, { name = true, match = true, version = true }, at)
        if err then
            return err
        end
        if rule.match == nil then
            return at .. ': missing field "match"'
        end
        if rule.version == nil then
            return at .. ': missing field "version"'
        end
        err = (rule.name ~= nil and check_string(rule.name, at .. "/name", 128))
            or check_name(rule.version, at .. "/version")
            or check_match(rule.match, at .. "/match", regex_ok)
        if err then
            return err
        end
    end
    return nil
end


-- Checks policy text as stored in Redis: its size, strict JSON, then
-- check(). Returns the decoded policy, or nil and the problem.
function _M.check_text(raw, regex_ok)
    if #raw > _M.MAX_POLICY_BYTES then
        return nil, "/: larger than " .. _M.MAX_POLICY_BYTES .. " bytes"
    end
    local decoded, err = json.decode(raw)
    if decoded == nil then
        return nil, "/: not valid JSON: " .. err
    end
    local problem = _M.check(decoded, regex_ok)
    if problem then
        return nil, problem
    end
    return decoded
end


return _M
