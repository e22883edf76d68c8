-- A split policy on HAProxy nodes: the agent checked it and wrote it as a
-- "p:" record (agent/dataplane/haproxy/lua-records.ts); compile() turns the
-- record into plain tables once per change, choose() walks them per request
-- with the same semantics as the nginx plugin's policy/matcher.lua.
--
--   d=DEFAULT|s=SEED|r=VERSION|TEST|TEST|r=VERSION|...
--   TEST: c=NAME:MODE:ITEM:ITEM... cookie, h=NAME:... header (device reads
--         User-Agent or its header), a=NAME:... query argument; MODE is v
--         (values) or x (regexes); i=CIDR,CIDR... ip; g=REGION,... region
--         (env.region(): haproxy-conf's --region-header, else the agent's
--         copy of the Redis CIDR→region table); q=BOUND:KIND:NAME
--         percentage (KIND c, h or i).

local record = require "edgeroute.haproxy.record"
local bucket = require "edgeroute.haproxy.bucket"
local cidr = require "edgeroute.policy.cidr"

local lower = string.lower
local tonumber = tonumber

local _M = { _VERSION = "0.1.0" }

local DEFAULT_VERSION = "stable"
local GETTERS = { c = "cookie", h = "header", a = "arg" }


local function value_test(kind, raw, compile_regex)
    local parts = record.parts(raw)
    local test = { kind = "value", get = GETTERS[kind], name = parts[1] }
    if test.get ~= "header" then
        test.name = lower(test.name)
    end
    if parts[2] == "v" then
        local set = {}
        for i = 3, #parts do
            set[parts[i]] = true
        end
        test.set = set
    else
        local regexes = {}
        for i = 3, #parts do
            local regex, err = compile_regex(parts[i])
            if not regex then
                return nil, err
            end
            regexes[#regexes + 1] = regex
        end
        test.regexes = regexes
    end
    return test
end


-- Returns the compiled policy and a list of problems (rules skipped: a
-- regex HAProxy's PCRE2 refused). `compile_regex(pattern)` returns an
-- object with :exec(subject), or nil and why.
function _M.compile(text, app_id, compile_regex)
    local compiled = { default = DEFAULT_VERSION, rules = {} }
    local seed = ""
    local rule, skip
    local problems = {}
    local rules = {}
    for _, field in ipairs(record.fields(text)) do
        local name, raw = field[1], field[2]
        if name == "d" then
            compiled.default = record.unescape(raw)
        elseif name == "s" then
            seed = record.unescape(raw)
        elseif name == "r" then
            rule = { version = record.unescape(raw), tests = {} }
            skip = false
            rules[#rules + 1] = rule
        elseif rule and not skip then
            local test, err
            if GETTERS[name] then
                test, err = value_test(name, raw, compile_regex)
            elseif name == "i" then
                local cidrs = {}
                for _, item in ipairs(record.list(raw)) do
                    cidrs[#cidrs + 1] = cidr.parse(item)
                end
                test = { kind = "ip", cidrs = cidrs }
            elseif name == "g" then
                local set = {}
                for _, region in ipairs(record.list(raw)) do
                    set[region] = true
                end
                test = { kind = "region", set = set }
            elseif name == "q" then
                local parts = record.parts(raw)
                local by = parts[2]
                test = { kind = "percentage", bound = tonumber(parts[1]), by = by,
                         name = by == "h" and parts[3] or by == "c" and lower(parts[3]) or nil }
            else
                err = "unknown test " .. name
            end
            if test then
                rule.tests[#rule.tests + 1] = test
            else
                problems[#problems + 1] = "rule " .. #rules .. " (" .. rule.version .. "): " .. tostring(err)
                rule.skip = true
                skip = true
            end
        end
    end
    for i = 1, #rules do
        if not rules[i].skip then
            compiled.rules[#compiled.rules + 1] = rules[i]
        end
    end
    -- The hash of the seed and app, the start of every request's bucket.
    compiled.prefix_hash = bucket.prefix_hash(bucket.prefix(seed, app_id))
    return compiled, problems
end


local function value_holds(test, env)
    local value = env[test.get](test.name)
    if value == nil then
        return false
    end
    local set = test.set
    if set then
        return set[value] == true
    end
    local regexes = test.regexes
    for i = 1, #regexes do
        if regexes[i]:exec(value) then
            return true
        end
    end
    return false
end


local function ip_holds(cidrs, addr)
    if addr == nil then
        return false
    end
    return cidr.any(cidrs, addr)
end


local function percentage_key(test, env)
    local by = test.by
    if by == "i" then
        return env.ip_text()
    elseif by == "c" then
        return env.cookie(test.name)
    end
    return env.header(test.name)
end


-- The version the first matching rule names, else the policy's default.
-- `env` gives cookie(name), header(name), arg(name), ip_text(), ip_bytes()
-- and region(), each nil when the request has none.
function _M.choose(compiled, env)
    local rules = compiled.rules
    for i = 1, #rules do
        local tests = rules[i].tests
        local holds = true
        for j = 1, #tests do
            local t = tests[j]
            local kind = t.kind
            if kind == "value" then
                holds = value_holds(t, env)
            elseif kind == "ip" then
                holds = ip_holds(t.cidrs, env.ip_bytes())
            elseif kind == "region" then
                local region = env.region()
                holds = region ~= nil and t.set[region] == true
            elseif kind == "percentage" then
                local key = percentage_key(t, env)
                holds = key ~= nil and key ~= "" and bucket.bucket_from(compiled.prefix_hash, key) < t.bound
            else
                holds = false
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
