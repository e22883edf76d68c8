-- The admin listener's handlers: the agent's push endpoint, status, in-flight
-- requests per backend and the health probe. Each request needs the shared
-- admin token except the probe.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"
local store = require "edgeroute.store"
local push_format = require "edgeroute.push_format"
local secure_compare = require "edgeroute.secure_compare"
local table_sync = require "edgeroute.table_sync"
local policy_store = require "edgeroute.policy_store"
local policy_sync = require "edgeroute.policy_sync"
local metrics = require "edgeroute.metrics"
local inflight = require "edgeroute.inflight"
local request_body = require "edgeroute.request_body"
local plugin_version = require "edgeroute.version"
local certs = require "edgeroute.certs"
local acme_challenge = require "edgeroute.acme_challenge"

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local gmatch = string.gmatch
local sub = string.sub
local json_encode = cjson.encode
local json_null = cjson.null

-- Pushes touching more apps than this are left to the sync timer, so that
-- the agent is not kept waiting while a whole table is decoded.
local INLINE_SYNC_MAX = 100

-- What this plugin takes in a push beyond the first format, for the agent
-- to read in the status before it sends them (an older plugin says nothing).
local PUSH_FEATURES = { "backendsFlat" }

local _M = { _VERSION = "0.1.0" }


local function respond(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(json_encode(body))
    return ngx.exit(status)
end


local function authorized()
    local header = ngx.var.http_authorization
    if type(header) ~= "string" or sub(header, 1, 7) ~= "Bearer " then
        return false
    end
    return secure_compare.equals(sub(header, 8), config.admin_token)
end


local read_body = request_body.read


function _M.push()
    if ngx.req.get_method() ~= "POST" then
        return respond(405, { error = "use POST" })
    end
    if not authorized() then
        return respond(401, { error = "missing or wrong admin token" })
    end
    local raw = read_body()
    if not raw then
        return respond(400, { error = "empty body" })
    end
    local version, base, routes, removed = push_format.parse(raw)
    if not version then
        ngx.log(ngx.WARN, "edgeroute: push refused: ", base)
        return respond(400, { error = base })
    end
    local stored, status_or_count, message = store.apply(version, base, routes, removed)
    if not stored then
        return respond(status_or_count, { error = message, version = store.status().version or json_null })
    end
    -- This worker switches at once when that is cheap; the others (and this
    -- one after a big push) within one sync interval.
    if status_or_count <= INLINE_SYNC_MAX then
        table_sync.sync()
    end
    -- The generation tells the agent which nginx took the push: one that
    -- restarts afterwards shows another, even before the agent first asked.
    return respond(200, { version = stored, changed = status_or_count, generation = store.status().generation })
end


function _M.status()
    if not authorized() then
        return respond(401, { error = "missing or wrong admin token" })
    end
    local status = store.status()
    local worker = table_sync.state
    local app_count = 0
    local policies = {}
    for id, app in pairs(worker.apps) do
        app_count = app_count + 1
        if app.version_count > 1 then
            local raw = policy_store.get(id)
            policies[id] = {
                loaded = policy_sync.policies[id] ~= nil,
                error = policy_store.get_error(id) or json_null,
                -- The fleet view compares nodes by the policy text each one applies.
                digest = raw and ngx.md5(raw) or json_null,
            }
        end
    end
    return respond(200, {
        version = status.version or json_null,
        seq = status.seq or json_null,
        generation = status.generation,
        plugin_version = plugin_version,
        push_features = PUSH_FEATURES,
        free_bytes = status.free_bytes,
        worker = { pid = ngx.worker.pid(), version = worker.version or json_null, apps = app_count },
        policies_version = policy_store.version() or json_null,
        -- Multi-version apps: whether a policy is in force, and why the one in Redis was refused.
        policies = policies,
    })
end


-- `tasks` is "ID1,ID2" (or repeated): the ids whose counts the agent waits on.
local function task_filter(tasks)
    if tasks == nil then
        return nil
    end
    if type(tasks) ~= "table" then
        tasks = { tasks }
    end
    local only = {}
    for _, list in ipairs(tasks) do
        if type(list) == "string" then
            for id in gmatch(list, "[^,]+") do
                only[id] = true
            end
        end
    end
    return only
end


function _M.inflight()
    if not authorized() then
        return respond(401, { error = "missing or wrong admin token" })
    end
    local shared = ngx.shared[config.dict_name]
    local seq = shared:get(store.KEY_SEQ)
    local version = shared:get(store.KEY_VERSION)
    local body = inflight.render(shared, ngx.worker.count(), seq, version, task_filter(ngx.req.get_uri_args().tasks))
    ngx.header["Content-Type"] = "application/json"
    ngx.say(body)
end


-- GET: the certificate set's version; PUT: replaces the whole set (the
-- agent's --certs folder). Errors never quote the body: it holds private keys.
function _M.certs()
    if not authorized() then
        return respond(401, { error = "missing or wrong admin token" })
    end
    local method = ngx.req.get_method()
    if method == "GET" then
        return respond(200, certs.status())
    end
    if method ~= "PUT" then
        return respond(405, { error = "use GET or PUT" })
    end
    local count, status, message = certs.replace(read_body())
    if not count then
        ngx.log(ngx.WARN, "edgeroute: certificate push refused: ", message)
        return respond(status, { error = message })
    end
    return respond(200, { version = certs.status().version, certificates = count })
end


-- PUT: the pending ACME HTTP-01 challenges (agent --acme-directory), the whole set.
function _M.acme_challenges()
    if not authorized() then
        return respond(401, { error = "missing or wrong admin token" })
    end
    if ngx.req.get_method() ~= "PUT" then
        return respond(405, { error = "use PUT" })
    end
    local count, status, message = acme_challenge.replace(read_body())
    if not count then
        return respond(status, { error = message })
    end
    return respond(200, { challenges = count })
end


function _M.metrics()
    if not authorized() then
        return respond(401, { error = "missing or wrong admin token" })
    end
    if ngx.var.arg_format == "json" then
        -- The agent's traffic sampler: raw per-worker counters, see metrics.raw_json.
        ngx.header["Content-Type"] = "application/json"
        ngx.print(metrics.raw_json(store.status().generation))
        return
    end
    ngx.header["Content-Type"] = "text/plain; version=0.0.4"
    ngx.print(metrics.render())
end


function _M.healthz()
    if store.status().version == nil then
        return respond(503, { status = "no routing table loaded" })
    end
    return respond(200, { status = "ok" })
end


return _M
