-- Entry points that nginx.conf calls, one per phase. The access phase makes
-- every routing decision; the balancer phase only picks a peer.

local config = require "edgeroute.config"
local store = require "edgeroute.store"
local table_sync = require "edgeroute.table_sync"
local router = require "edgeroute.router"
local policy_sync = require "edgeroute.policy_sync"
local policy_refresh = require "edgeroute.policy_refresh"
local metrics = require "edgeroute.metrics"
local inflight = require "edgeroute.inflight"
local push_format = require "edgeroute.push_format"
local balancer = require "ngx.balancer"

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_say = ngx.say
local ngx_exit = ngx.exit
local ERR = ngx.ERR
local pcall = pcall
local set_current_peer = balancer.set_current_peer
local set_more_tries = balancer.set_more_tries
local min = math.min
local inflight_enter = inflight.enter
local inflight_leave = inflight.leave

local table_state = table_sync.state

local _M = { _VERSION = "0.1.0" }

-- Extra attempts on connect failure, besides the first.
local MAX_RETRIES = 2


-- Loads the agent's last snapshot, if there is one; a missing or bad file
-- only means waiting for the agent's first push.
local function load_snapshot(path)
    local file = io.open(path, "rb")
    if not file then
        return
    end
    local body = file:read("*a")
    file:close()
    local version, base, routes, removed = push_format.parse(body)
    if not version then
        ngx_log(ngx.WARN, "edgeroute: ignoring snapshot ", path, ": ", base)
        return
    end
    local stored, count, message = store.apply(version, nil, routes, removed)
    if not stored then
        ngx_log(ngx.WARN, "edgeroute: cannot load snapshot ", path, ": ", message)
        return
    end
    ngx_log(ngx.NOTICE, "edgeroute: loaded the routing table of ", count, " apps from ", path)
end


function _M.init(opts)
    config.load(opts or {})
    store.init_generation()
    if config.snapshot_file then
        load_snapshot(config.snapshot_file)
    end
end


local function sync(premature)
    if premature then
        return
    end
    local ok, err = pcall(table_sync.sync)
    if not ok then
        ngx_log(ERR, "edgeroute: table sync failed: ", err)
    end
    ok, err = pcall(policy_sync.sync)
    if not ok then
        ngx_log(ERR, "edgeroute: policy sync failed: ", err)
    end
end


function _M.init_worker()
    router.init_worker()
    policy_sync.init_worker()
    -- Serve from the first request on, then follow every version change.
    sync(false)
    local ok, err = ngx.timer.every(config.sync_interval, sync)
    if not ok then
        ngx_log(ERR, "edgeroute: cannot start the sync timer: ", err)
    end
    policy_refresh.start()
    metrics.init_worker()
    inflight.init_worker()
end


local function reject(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "text/plain"
    ngx_say(body)
    return ngx_exit(status)
end


function _M.access()
    local app = router.find_app(ngx_var.host)
    if app == nil then
        if not router.loaded() then
            return reject(503, "edgeroute: no routing table loaded yet")
        end
        return reject(404, "edgeroute: no app serves this host")
    end
    local version = app.default_version
    if app.version_count > 1 then
        version = policy_sync.choose_version(app) or version
    end
    if version == nil or version.peer_count == 0 then
        -- Counted in the app's metrics: a 503 of a known app is worth seeing.
        ngx.ctx.edgeroute_version = version
        return reject(503, "edgeroute: no backend is available for this app")
    end
    ngx_var.edgeroute_version = version.name
    local ctx = ngx.ctx
    ctx.edgeroute_version = version
    ctx.edgeroute_seq = table_state.seq
end


-- The table may have changed between access and balancer (a request body
-- still uploading): a drained task must not get a request chosen by the old
-- table after this node told its agent that nothing is in flight to it.
local function current_version(ctx, version)
    if ctx.edgeroute_seq == table_state.seq then
        return version
    end
    local app = table_state.apps[version.app_id]
    local fresh = app and app.versions[version.name]
    if fresh == nil or fresh.peer_count == 0 then
        return version
    end
    ctx.edgeroute_version = fresh
    return fresh
end


function _M.log()
    local ctx = ngx.ctx
    local peer = ctx.edgeroute_peer
    if peer ~= nil then
        -- Cleared so that the request leaves its peer's count only once.
        ctx.edgeroute_peer = nil
        inflight_leave(peer)
    end
    metrics.log(ctx.edgeroute_version, ngx.status)
end


function _M.balance()
    local ctx = ngx.ctx
    local version = ctx.edgeroute_version
    local peer
    local last = ctx.edgeroute_peer
    if last == nil then
        version = current_version(ctx, version)
        peer = version.balancer:pick(nil)
        local retries = min(version.peer_count - 1, MAX_RETRIES)
        if retries > 0 then
            set_more_tries(retries)
        end
    else
        -- nginx calls us again only after the last peer failed.
        local tried = ctx.edgeroute_tried
        if tried == nil then
            tried = {}
            ctx.edgeroute_tried = tried
        end
        tried[last] = true
        metrics.upstream_failed(version)
        peer = version.balancer:pick(tried)
        inflight_leave(last)
    end
    inflight_enter(peer)
    ctx.edgeroute_peer = peer
    local ok, err = set_current_peer(peer.address, peer.port)
    if not ok then
        ngx_log(ERR, "edgeroute: cannot use peer ", peer.address, ":", peer.port, ": ", err)
    end
end


return _M
