-- Worker side of the routing table: notices a new version in the shared dict,
-- decodes only the apps whose hash changed, and compiles them into
-- worker-local tables that the request path reads without locks or decoding.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"
local store = require "edgeroute.store"
local swrr = require "edgeroute.swrr"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local pairs = pairs
local ipairs = ipairs
local sub = string.sub
local json_decode = cjson.decode

local _M = { _VERSION = "0.1.0" }

-- The compiled table. `hosts` maps an exact host name to its app,
-- `wildcards` maps a suffix such as ".example.com" to its app.
local state = {
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


local function compile_version(name, raw)
    local peers = {}
    for i, backend in ipairs(raw.backends) do
        peers[i] = {
            id = backend.id,
            address = backend.address,
            port = backend.port,
            weight = backend.weight,
        }
    end
    return {
        name = name,
        marathon_app = raw.marathonAppId,
        peer_count = #peers,
        balancer = swrr.new(peers),
    }
end


local function compile_app(raw)
    local versions = {}
    for name, version in pairs(raw.versions) do
        versions[name] = compile_version(name, version)
    end
    local count = 0
    for _ in pairs(versions) do
        count = count + 1
    end
    return {
        id = raw.id,
        hash = raw.hash,
        vhosts = raw.vhosts,
        versions = versions,
        -- Apps with one version never evaluate a split policy.
        version_count = count,
        default_version = versions[raw.defaultVersion],
    }
end


local function index_hosts(apps)
    local hosts, wildcards = {}, {}
    for _, app in pairs(apps) do
        for _, vhost in ipairs(app.vhosts) do
            if sub(vhost, 1, 2) == "*." then
                wildcards[sub(vhost, 2)] = app
            else
                hosts[vhost] = app
            end
        end
    end
    return hosts, wildcards
end


-- Returns true when the worker is on the stored version afterwards.
function _M.sync()
    local shared = ngx.shared[config.dict_name]
    local version = shared:get(store.KEY_VERSION)
    if version == nil or version == state.version then
        return true
    end

    local index, err = json_decode(shared:get(store.KEY_INDEX) or "{}")
    if not index then
        ngx_log(ERR, "edgeroute: stored table index does not decode: ", err)
        return false
    end

    local apps = {}
    for id, hash in pairs(index) do
        local current = state.apps[id]
        if current and current.hash == hash then
            -- Unchanged apps keep their balancer, and so their rotation.
            apps[id] = current
        else
            local raw = shared:get(store.APP_PREFIX .. hash)
            if raw == nil then
                -- A newer push replaced this entry while we read; the next
                -- tick sees the newer version.
                ngx_log(WARN, "edgeroute: app ", id, " changed during sync, retrying")
                return false
            end
            local decoded, decode_err = json_decode(raw)
            if not decoded then
                ngx_log(ERR, "edgeroute: app ", id, " does not decode: ", decode_err)
                return false
            end
            apps[id] = compile_app(decoded)
        end
    end

    state.hosts, state.wildcards = index_hosts(apps)
    state.apps = apps
    state.version = version
    for i = 1, #listeners do
        listeners[i]()
    end
    return true
end


return _M
