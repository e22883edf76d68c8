-- Worker 0 reads the split policies of apps with more than one version from
-- Redis (one MGET per interval, and at once on a PUBLISH to
-- <prefix>policy-changed), validates each, and stores the good ones in the
-- shared dict for every worker. An invalid policy (typed by hand with
-- redis-cli) is logged once per change and the last good one stays; Redis
-- away keeps every last good policy.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"
local redis_client = require "edgeroute.redis_client"
local table_sync = require "edgeroute.table_sync"
local check = require "edgeroute.policy.check"
local policy_store = require "edgeroute.policy_store"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE
local null = ngx.null
local re_find = ngx.re.find
local pairs = pairs
local type = type
local unpack = unpack
local pcall = pcall

local _M = { _VERSION = "0.1.0" }

-- Raw text last seen in Redis per app, valid or not: an error is logged once per change.
local last_raw = {}
local last_regions_raw
local redis_down = false
local redis_err
local refreshing, pending = false, false


-- Compiled without "o": a refused policy's patterns must not fill the
-- per-worker regex cache (lua_regex_cache_max_entries) that the patterns in
-- force need; past its limit nginx compiles them on every request.
local function regex_ok(pattern)
    local _, _, err = re_find("", pattern, "j")
    if err then
        return false, err
    end
    return true
end


local function multi_version_apps()
    local ids = {}
    for id, app in pairs(table_sync.state.apps) do
        if app.version_count > 1 then
            ids[#ids + 1] = id
        end
    end
    return ids
end


-- Returns the problem with `raw`, or nil when it is a good policy.
local function judge(raw)
    local _, problem = check.check_text(raw, regex_ok)
    return problem
end


local function apply_policy(app, raw)
    if raw == last_raw[app] then
        return false
    end
    last_raw[app] = raw
    if raw == nil then
        ngx_log(NOTICE, "edgeroute: no split policy for app ", app, " any more; it uses its default version")
        policy_store.remove(app)
        return true
    end
    local problem = judge(raw)
    if problem then
        ngx_log(ERR, "edgeroute: split policy of app ", app, " refused, keeping the last good one: ", problem)
        policy_store.set_error(app, problem)
        return false
    end
    local stored, err = policy_store.set(app, raw)
    if not stored then
        ngx_log(ERR, "edgeroute: cannot store the policy of app ", app, ": ", err)
        last_raw[app] = nil
        return false
    end
    ngx_log(NOTICE, "edgeroute: split policy of app ", app, " loaded")
    return true
end


-- Logged once per change of state or of the reason, not once per attempt.
-- `refused`: Redis refused the certificate or password, which needs an operator.
local function set_redis_state(down, err, refused)
    if down and err ~= redis_err then
        ngx_log(refused and ERR or WARN, "edgeroute: ", err, "; splitting goes on with the last good policies")
    elseif not down and redis_down then
        ngx_log(NOTICE, "edgeroute: redis reachable again; policies refresh again")
    end
    redis_down = down
    redis_err = down and err or nil
end


local function fetch(apps, want_regions)
    local red, err, refused = redis_client.connect()
    if not red then
        return nil, err, refused
    end
    local prefix = config.redis_prefix
    local keys = {}
    for i = 1, #apps do
        keys[i] = prefix .. "policy:" .. apps[i]
    end
    local values, regions
    if #keys > 0 then
        values, err = red:mget(unpack(keys))
        if not values then
            red:close()
            return nil, "redis mget failed: " .. err
        end
    end
    if want_regions then
        regions, err = red:hgetall(prefix .. "regions")
        if not regions then
            red:close()
            return nil, "redis hgetall failed: " .. err
        end
    end
    redis_client.release(red)
    return values or {}, regions
end


local function refresh_once()
    local apps = multi_version_apps()
    local want_regions = policy_store.regions_wanted()
    if #apps == 0 and not want_regions then
        return
    end
    local values, regions_or_err, refused = fetch(apps, want_regions)
    if not values then
        set_redis_state(true, regions_or_err, refused)
        return
    end
    set_redis_state(false)
    local changed = false
    for i = 1, #apps do
        local raw = values[i]
        if raw == null or type(raw) ~= "string" then
            raw = nil
        end
        changed = apply_policy(apps[i], raw) or changed
    end
    if want_regions then
        local raw = cjson.encode(regions_or_err)
        if raw ~= last_regions_raw then
            last_regions_raw = raw
            policy_store.set_regions(raw)
            changed = true
        end
    end
    if changed then
        policy_store.bump()
    end
end


-- Runs a refresh, or marks one as wanted if one is running, so a PUBLISH
-- arriving mid-refresh is never lost.
function _M.refresh()
    if refreshing then
        pending = true
        return
    end
    refreshing = true
    repeat
        pending = false
        local ok, err = pcall(refresh_once)
        if not ok then
            ngx_log(ERR, "edgeroute: policy refresh failed: ", err)
        end
    until not pending
    refreshing = false
end


local function tick(premature)
    if premature then
        return
    end
    _M.refresh()
end


-- Listens on <prefix>policy-changed; any message triggers a refresh.
local function listen(premature)
    if premature or ngx.worker.exiting() then
        return
    end
    local red, err = redis_client.connect(1000)
    if red then
        local subscribed
        subscribed, err = red:subscribe(config.redis_prefix .. "policy-changed")
        if subscribed then
            while not ngx.worker.exiting() do
                local reply, read_err = red:read_reply()
                if reply then
                    if reply[1] == "message" then
                        _M.refresh()
                    end
                elseif read_err ~= "timeout" then
                    break
                end
            end
        end
        red:close()
    end
    if not ngx.worker.exiting() then
        ngx.timer.at(1, listen)
    end
end


function _M.start()
    if not config.redis or ngx.worker.id() ~= 0 then
        return
    end
    local ok, err = ngx.timer.every(config.policy_refresh_interval, tick)
    if not ok then
        ngx_log(ERR, "edgeroute: cannot start the policy refresh timer: ", err)
    end
    ngx.timer.at(0, tick)
    ngx.timer.at(0, listen)
end


return _M
