-- Compiles a validated policy into plain tables once per change, and picks a
-- version for a request: by the policy written out as one function
-- (unrolled.lua) when it is small enough, else by walking the tables.
-- Request values are read through `get(name)` (nginx variables in the
-- plugin, a table in unit tests), so nothing here allocates a closure per
-- request.

local cidr = require "edgeroute.policy.cidr"
local bucket = require "edgeroute.policy.bucket"
local unrolled = require "edgeroute.policy.unrolled"

local ipairs = ipairs
local lower = string.lower
local gsub = string.gsub
local sub = string.sub
local floor = math.floor
local bucket_from = bucket.bucket_from

local _M = { _VERSION = "0.1.0" }

local DEFAULT_VERSION = "stable"

-- The walk_reason of a policy too large to write out (not worth a log line).
_M.TOO_LARGE = unrolled.TOO_LARGE
-- The walk_reason of a policy compiled with options.walk.
_M.WALK_ASKED = "asked for"


local function header_var(name)
    return "http_" .. gsub(lower(name), "-", "_")
end


-- values → a set; pattern(s) → a list of regexes.
local function compile_value_test(test, var)
    local compiled = { var = var }
    if test.values then
        local set = {}
        for _, value in ipairs(test.values) do
            set[value] = true
        end
        compiled.set = set
    else
        compiled.patterns = test.patterns or { test.pattern }
    end
    return compiled
end


local function compile_match(match, prefix)
    local tests = {}
    if match.device then
        local var = match.device.header and header_var(match.device.header) or "http_user_agent"
        tests[#tests + 1] = { kind = "value", test = compile_value_test(match.device, var) }
    end
    if match.header then
        tests[#tests + 1] = { kind = "value", test = compile_value_test(match.header, header_var(match.header.name)) }
    end
    if match.cookie then
        tests[#tests + 1] = { kind = "value", test = compile_value_test(match.cookie, "cookie_" .. match.cookie.name) }
    end
    if match.arg then
        tests[#tests + 1] = { kind = "value", test = compile_value_test(match.arg, "arg_" .. match.arg.name) }
    end
    if match.ip then
        local cidrs = {}
        for i, text in ipairs(match.ip) do
            cidrs[i] = cidr.parse(text)
        end
        tests[#tests + 1] = { kind = "ip", cidrs = cidrs }
    end
    if match.region then
        local set = {}
        for _, region in ipairs(match.region) do
            set[region] = true
        end
        tests[#tests + 1] = { kind = "region", set = set }
    end
    if match.percentage then
        local by = match.percentage.by
        local var
        if by == "ip" then
            var = "remote_addr"
        elseif sub(by, 1, 7) == "cookie:" then
            var = "cookie_" .. sub(by, 8)
        else
            var = header_var(sub(by, 8))
        end
        tests[#tests + 1] = { kind = "percentage", var = var, bound = floor(match.percentage.value * 100 + 0.5), prefix_hash = bucket.prefix_hash(prefix) }
    end
    return tests
end


-- `policy` must have passed check.lua. `options.walk`: keep the generic
-- walk even for a policy that could be written out (tests compare both).
-- The result's `run` is the written-out function, or nil with `walk_reason`.
function _M.compile(policy, app_id, options)
    local prefix = bucket.prefix(policy.seed or "", app_id)
    local rules = {}
    local uses_region = false
    for i, rule in ipairs(policy.rules or {}) do
        rules[i] = { version = rule.version, tests = compile_match(rule.match, prefix) }
        uses_region = uses_region or rule.match.region ~= nil
    end
    local compiled = {
        default = policy.default or DEFAULT_VERSION,
        rules = rules,
        -- Tells the refresher to keep the CIDR→region table loaded.
        uses_region = uses_region,
    }
    if options and options.walk then
        compiled.walk_reason = _M.WALK_ASKED
    else
        local run, source_or_reason = unrolled.build(compiled)
        compiled.run = run
        if run == nil then
            compiled.walk_reason = source_or_reason
        end
    end
    return compiled
end


local function value_holds(test, get, re_find)
    local value = get(test.var)
    if not value then
        return false
    end
    local set = test.set
    if set then
        return set[value] == true
    end
    local patterns = test.patterns
    for i = 1, #patterns do
        if re_find(value, patterns[i]) then
            return true
        end
    end
    return false
end


local cidr_any = cidr.any

local function ip_holds(cidrs, addr)
    if not addr then
        return false
    end
    return cidr_any(cidrs, addr)
end


-- Returns the version the first matching rule names, else the policy's
-- default. `env` provides get(name) (nil or false when absent),
-- re_find(subject, regex) and region(address or nil, get) → region, address.
-- The written-out function reads each value once itself; the walk may ask
-- for one several times, so its `get` should remember them (`env.walk_get`
-- when there is one). `env.walk`: walk even a policy written out.
function _M.choose(compiled, env)
    local run = compiled.run
    if run and not env.walk then
        return run(env.get, env.re_find, env.region)
    end
    local get, re_find = env.walk_get or env.get, env.re_find
    local rules = compiled.rules
    for i = 1, #rules do
        local tests = rules[i].tests
        local holds = true
        for j = 1, #tests do
            local t = tests[j]
            local kind = t.kind
            if kind == "value" then
                holds = value_holds(t.test, get, re_find)
            elseif kind == "ip" then
                holds = ip_holds(t.cidrs, get("binary_remote_addr"))
            elseif kind == "region" then
                local region = env.region(nil, get)
                holds = region ~= nil and t.set[region] == true
            else
                local key = get(t.var)
                holds = key ~= nil and key ~= false and key ~= "" and bucket_from(t.prefix_hash, key) < t.bound
            end
            if not holds then
                break
            end
        end
        if holds then
            return rules[i].version
        end
    end
    return compiled.default
end


return _M
