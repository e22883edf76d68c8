-- Worker side of split policies: compiles each multi-version app's policy
-- when it changes, and picks a request's version in the access phase
-- without touching Redis, JSON or the shared dict.

local cjson = require "cjson.safe"
local lrucache = require "resty.lrucache"
local clear_table = require "table.clear"
local config = require "edgeroute.config"
local table_sync = require "edgeroute.table_sync"
local policy_store = require "edgeroute.policy_store"
local cidr = require "edgeroute.policy.cidr"
local matcher = require "edgeroute.policy.matcher"
local request_var = require "edgeroute.request_var"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local re_find = ngx.re.find
local pairs = pairs
local sort = table.sort
local json_decode = cjson.decode
local choose = matcher.choose

local _M = { _VERSION = "0.1.0" }

-- app id → { raw = policy text, compiled = matcher tables }
local policies = {}
_M.policies = policies

local seen_policies_version
local seen_table_version
local seen_regions_raw
local regions = {}
local region_cache

-- A request value as the written-out policies read it: each once, into
-- their own locals.
local read_var = request_var.get

-- Request values read once per request by the generic walk, whatever the
-- number of rules.
local request_vars = {}

local function get_var(name)
    local value = request_vars[name]
    if value == nil then
        value = read_var(name) or false
        request_vars[name] = value
    end
    return value
end


local function find_regex(subject, pattern)
    return re_find(subject, pattern, "jo") ~= nil
end


local NO_REGION = false

-- The request's region, and its binary address when it was read (given,
-- or read here through `get`).
local function region_of_request(addr, get)
    local var = config.region_var
    if var then
        local region = get(var)
        if region and region ~= "" then
            return region, addr
        end
    end
    if addr == nil then
        addr = get("binary_remote_addr")
    end
    if not addr or #regions == 0 then
        return nil, addr
    end
    local region = region_cache:get(addr)
    if region == nil then
        region = NO_REGION
        for i = 1, #regions do
            if cidr.contains(regions[i].cidr, addr) then
                region = regions[i].region
                break
            end
        end
        region_cache:set(addr, region)
    end
    return region or nil, addr
end

local env = { get = read_var, walk_get = get_var, re_find = find_regex, region = region_of_request, walk = false }

-- Past this many policies in a worker, every policy is walked rather than
-- run written out. Each written-out policy is a function of its own, which
-- LuaJIT compiles into traces of its own, and the access phase's trace
-- then tells them apart by a chain of guards, one per policy: with 200
-- policies in turn, a request cost 105,000-164,000 instructions written
-- out against 57,000-72,000 walked; with 48, 49,000 against 55,000
-- (BENCHMARKS.md, "The ten rules, written out").
local MAX_WRITTEN_OUT = 32
local WALK = { walk = true }


-- Longest prefix first, so the most specific CIDR names the region.
local function compile_regions(raw)
    local flat = json_decode(raw) or {}
    local list = {}
    for i = 1, #flat - 1, 2 do
        local parsed = cidr.parse(flat[i])
        if parsed then
            list[#list + 1] = { cidr = parsed, region = flat[i + 1] }
        else
            ngx_log(ERR, "edgeroute: regions table: ", flat[i], " is not a CIDR; entry ignored")
        end
    end
    sort(list, function(a, b)
        return a.cidr.bits > b.cidr.bits
    end)
    return list
end


function _M.init_worker()
    region_cache = lrucache.new(config.host_cache_size)
end


-- Whether a policy compiled before the count crossed MAX_WRITTEN_OUT must
-- be compiled again: written out while all are walked (its function only
-- holds memory), or walked only because they were.
local function written_out_wrongly(compiled, walk)
    if walk then
        return compiled.run ~= nil
    end
    return compiled.run == nil and compiled.walk_reason == matcher.WALK_ASKED
end


function _M.sync()
    local version = policy_store.version()
    local table_version = table_sync.state.version
    if version == seen_policies_version and table_version == seen_table_version then
        return
    end
    -- The policies to hold, counted first: past MAX_WRITTEN_OUT all are
    -- walked, so none is written out (a load() and a function per policy
    -- that no request would run, kept in every worker).
    local raws = {}
    local count = 0
    for id, app in pairs(table_sync.state.apps) do
        local raw = app.version_count > 1 and policy_store.get(id) or nil
        if raw ~= nil then
            raws[id] = raw
            count = count + 1
        end
    end
    local walk = count > MAX_WRITTEN_OUT
    local options = walk and WALK or nil
    local wants_regions = false
    for id in pairs(table_sync.state.apps) do
        local raw = raws[id]
        local current = policies[id]
        if raw == nil then
            policies[id] = nil
        elseif current == nil or current.raw ~= raw or written_out_wrongly(current.compiled, walk) then
            local decoded = json_decode(raw)
            if decoded then
                local compiled = matcher.compile(decoded, id, options)
                if compiled.run == nil and not walk and compiled.walk_reason ~= matcher.TOO_LARGE then
                    ngx_log(ERR, "edgeroute: policy of ", id, " is walked rule by rule: ", compiled.walk_reason)
                end
                policies[id] = { raw = raw, compiled = compiled }
            end
        end
        if policies[id] and policies[id].compiled.uses_region then
            wants_regions = true
        end
    end
    for id in pairs(policies) do
        if table_sync.state.apps[id] == nil then
            policies[id] = nil
        end
    end
    if ngx.worker.id() == 0 then
        policy_store.want_regions(wants_regions and true or false)
    end
    local regions_raw = policy_store.get_regions()
    if regions_raw ~= seen_regions_raw then
        seen_regions_raw = regions_raw
        regions = regions_raw and compile_regions(regions_raw) or {}
        region_cache:flush_all()
    end
    seen_policies_version = version
    seen_table_version = table_version
    env.walk = walk
end


-- The version for this request of a multi-version app, by its policy;
-- nil when the app has no policy.
function _M.choose_version(app)
    local policy = policies[app.id]
    if policy == nil then
        return nil
    end
    local versions = app.versions
    local compiled = policy.compiled
    if compiled.run == nil or env.walk then
        clear_table(request_vars)
    end
    local name = choose(compiled, env)
    -- A version the app does not have falls back to the policy's default,
    -- then to stable.
    return versions[name] or versions[compiled.default] or versions.stable
end


return _M
