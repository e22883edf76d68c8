-- Entry points that nginx.conf calls, one per phase. The access phase makes
-- every routing decision; the balancer phase only picks a peer.

local config = require "edgeroute.config"
local store = require "edgeroute.store"
local table_sync = require "edgeroute.table_sync"
local router = require "edgeroute.router"
local balancer = require "ngx.balancer"

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_say = ngx.say
local ngx_exit = ngx.exit
local ERR = ngx.ERR
local set_current_peer = balancer.set_current_peer
local set_more_tries = balancer.set_more_tries
local min = math.min

local _M = { _VERSION = "0.1.0" }

-- Extra attempts on connect failure, besides the first.
local MAX_RETRIES = 2


function _M.init(opts)
    config.load(opts or {})
    store.init_generation()
end


function _M.init_worker()
    router.init_worker()
    table_sync.start()
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
    if version == nil or version.peer_count == 0 then
        return reject(503, "edgeroute: no backend is available for this app")
    end
    ngx_var.edgeroute_version = version.name
    ngx.ctx.edgeroute_version = version
end


function _M.balance()
    local ctx = ngx.ctx
    local version = ctx.edgeroute_version
    local pool = version.balancer
    local peer
    local last = ctx.edgeroute_peer
    if last == nil then
        peer = pool:pick(nil)
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
        peer = pool:pick(tried)
    end
    ctx.edgeroute_peer = peer
    local ok, err = set_current_peer(peer.address, peer.port)
    if not ok then
        ngx_log(ERR, "edgeroute: cannot use peer ", peer.address, ":", peer.port, ": ", err)
    end
end


return _M
