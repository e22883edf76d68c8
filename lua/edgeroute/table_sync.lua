-- Worker side of the routing table: notices a new version in the shared dict,
-- decodes only the apps whose hash changed, and compiles them into
-- worker-local tables that the request path reads without locks or decoding.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"
local store = require "edgeroute.store"
local swrr = require "edgeroute.swrr"
local leastconn = require "edgeroute.leastconn"
local host_index = require "edgeroute.host_index"
local route_settings = require "edgeroute.route_settings"
local metrics = require "edgeroute.metrics"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local pairs = pairs
local ipairs = ipairs
local json_decode = cjson.decode

local _M = { _VERSION = "0.1.0" }

-- The compiled table. `hosts` maps an exact host name to its site,
-- `wildcards` maps a suffix such as ".example.com" to its site (see
-- host_index for what a site holds).
local state = {
    seq = nil,
    version = nil,
    apps = {},
    hosts = {},
    wildcards = {},
}
_M.state = state

local listeners = {}


-- Called with no arguments after every table change (e.g. to flush caches).
function _M.on_change(fn)
    listeners[#listeners + 1] = fn
end


local function compile_version(app, name, raw)
    local peers = {}
    local sticky_peers
    if app.sticky_cookie then
        sticky_peers = {}
    end
    -- The two shapes route_check accepts: objects, or one flat array.
    local flat = raw.backendsFlat
    local backends = raw.backends
    for i = 1, flat and #flat / 4 or #backends do
        local peer
        if flat then
            local at = 4 * i - 3
            peer = { id = flat[at], address = flat[at + 1], port = flat[at + 2], weight = flat[at + 3] }
        else
            local backend = backends[i]
            peer = { id = backend.id, address = backend.address, port = backend.port, weight = backend.weight }
        end
        if sticky_peers then
            peer.sticky = route_settings.sticky_value(app.id, peer.id)
            -- The Set-Cookie value, built once rather than per request.
            peer.sticky_cookie = app.sticky_cookie .. "=" .. peer.sticky .. "; Path=/; HttpOnly"
            sticky_peers[peer.sticky] = peer
        end
        peers[i] = peer
    end
    return {
        name = name,
        app_id = app.id,
        app = app,
        -- Request metrics are kept under this key, so they outlive recompiles.
        metrics_key = metrics.key(app.id, name),
        marathon_app = raw.marathonAppId,
        peer_count = #peers,
        balancer = app.leastconn and leastconn.new(peers) or swrr.new(peers),
        sticky_peers = sticky_peers,
    }
end


local function compile_app(raw)
    local app = {
        id = raw.id,
        hash = raw.hash,
        vhosts = raw.vhosts,
        paths = raw.paths,
    }
    route_settings.compile(app, raw.settings)
    local versions = {}
    local count = 0
    for name, version in pairs(raw.versions) do
        versions[name] = compile_version(app, name, version)
        count = count + 1
    end
    app.versions = versions
    -- Apps with one version never evaluate a split policy.
    app.version_count = count
    app.default_version = versions[raw.defaultVersion]
    return app
end


local function add_hosts(app)
    host_index.add(state, app)
end


local function remove_hosts(app)
    host_index.remove(state, app)
end


-- nil when the route is gone (a later push removed it) or does not decode.
local function load_app(shared, id)
    local raw = shared:get(store.route_key(id))
    if raw == nil then
        return nil
    end
    local decoded, err = json_decode(raw)
    if not decoded then
        ngx_log(ERR, "edgeroute: app ", id, " does not decode: ", err)
        return nil
    end
    return compile_app(decoded)
end


-- Rebuilds from table:ids, decoding only apps whose hash changed.
local function rebuild(shared)
    local ids, err = json_decode(shared:get(store.KEY_IDS) or "[]")
    if not ids then
        ngx_log(ERR, "edgeroute: stored app list does not decode: ", err)
        return false
    end
    local apps = {}
    for _, id in ipairs(ids) do
        local current = state.apps[id]
        if current and current.hash == shared:get(store.hash_key(id)) then
            -- Unchanged apps keep their balancer, and so their rotation.
            apps[id] = current
        else
            apps[id] = load_app(shared, id)
        end
    end
    state.apps = apps
    state.hosts, state.wildcards = {}, {}
    for _, app in pairs(apps) do
        add_hosts(app)
    end
    return true
end


-- Applies the pushes logged since this worker's last sync; false when the
-- log does not reach back that far (or holds a full push).
local function apply_log(shared, from, to)
    local entries = {}
    for seq = from, to do
        local entry = json_decode(shared:get(store.log_key(seq)) or "null")
        if entry == nil or entry == ngx.null or entry.full then
            return false
        end
        entries[#entries + 1] = entry
    end
    local touched = {}
    for _, entry in ipairs(entries) do
        for _, id in ipairs(entry.changed or {}) do
            touched[id] = true
        end
        for _, id in ipairs(entry.removed or {}) do
            touched[id] = true
        end
    end
    local apps = state.apps
    for id in pairs(touched) do
        local old = apps[id]
        if old then
            remove_hosts(old)
        end
    end
    for id in pairs(touched) do
        local app = load_app(shared, id)
        apps[id] = app
    end
    for id in pairs(touched) do
        if apps[id] then
            add_hosts(apps[id])
        end
    end
    return true
end


-- Returns true when the worker is on the stored table afterwards.
function _M.sync()
    local shared = ngx.shared[config.dict_name]
    local seq = shared:get(store.KEY_SEQ)
    if seq == nil or seq == state.seq then
        return true
    end
    local version = shared:get(store.KEY_VERSION)
    local applied = state.seq ~= nil and seq > state.seq and apply_log(shared, state.seq + 1, seq)
    if not applied and not rebuild(shared) then
        return false
    end
    state.seq = seq
    state.version = version
    for i = 1, #listeners do
        listeners[i]()
    end
    return true
end


return _M
