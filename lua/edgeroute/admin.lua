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
local chunked_body = require "edgeroute.chunked_body"
local plugin_version = require "edgeroute.version"
local certs = require "edgeroute.certs"
local acme_challenge = require "edgeroute.acme_challenge"
local request_var = require "edgeroute.request_var"

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local gmatch = string.gmatch
local sub = string.sub
local lower = string.lower
local json_encode = cjson.encode
local json_null = cjson.null

-- Pushes touching more apps than this are left to the sync timer, so that
-- the agent is not kept waiting while a whole table is decoded.
local INLINE_SYNC_MAX = 100

-- What this plugin takes in a push beyond the first format, for the agent
-- to read in the status before it sends them (an older plugin says nothing).
local PUSH_FEATURES = { "backendsFlat" }

-- A push read from the raw socket bypasses nginx.conf's limits on the admin
-- listener: the same size as its client_max_body_size, and as long a pause
-- between two pieces as nginx's default client_body_timeout.
local PUSH_MAX_BYTES = 64 * 1024 * 1024
local PUSH_READ_TIMEOUT_MS = 60000

-- The statuses a push read from the raw socket is answered with.
local REASONS = {
    [200] = "OK", [400] = "Bad Request", [409] = "Conflict",
    [413] = "Content Too Large", [507] = "Insufficient Storage",
}

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


-- The answer to a push read from the raw socket, written whole by hand: nginx
-- sends nothing on that connection any more, and closes it after.
local function respond_raw(sock, status, body)
    local text = json_encode(body) .. "\n"
    local ok, err = sock:send("HTTP/1.1 " .. status .. " " .. (REASONS[status] or "") .. "\r\n"
        .. "Content-Type: application/json\r\nContent-Length: " .. #text .. "\r\nConnection: close\r\n\r\n" .. text)
    if not ok then
        ngx.log(ngx.WARN, "edgeroute: could not answer a push: ", err)
    end
    return ngx.exit(ngx.OK)
end


-- How a push is read. Each returns how to answer it, then what push_format's
-- reader finishes with (version, base, routes, removed ids), or nil, why the
-- push is refused and the status to say so with when it is not 400.

-- A large push comes chunked, as the agent writes it. Its lines are decoded
-- and checked as the chunks arrive, while the agent is still writing the
-- rest, rather than all after the last byte.
local function read_streamed()
    local sock, err = ngx.req.socket(true)
    if not sock then
        return respond, nil, "cannot read the push: " .. err, 500
    end
    local answer = function(status, body)
        return respond_raw(sock, status, body)
    end
    sock:settimeout(PUSH_READ_TIMEOUT_MS)
    local expect = ngx.var.http_expect
    if expect and lower(expect) == "100-continue" then
        -- What nginx says before it reads a body itself; a client such as
        -- curl otherwise waits a second before sending it.
        local ok
        ok, err = sock:send("HTTP/1.1 100 Continue\r\n\r\n")
        if not ok then
            ngx.log(ngx.WARN, "edgeroute: push not read: ", err)
            return ngx.exit(ngx.OK)
        end
    end
    local reader = push_format.reader()
    local size, message, status = chunked_body.read(sock, function(data)
        reader:feed(data)
    end, PUSH_MAX_BYTES)
    if not size then
        if status == nil then
            -- The agent went away or stopped sending: nobody is left to answer.
            ngx.log(ngx.WARN, "edgeroute: push not read: ", message)
            return ngx.exit(ngx.OK)
        end
        return answer, nil, message, status
    end
    return answer, reader:finish()
end


local function read_buffered()
    local raw = read_body()
    if not raw then
        return respond, nil, "empty body"
    end
    return respond, push_format.parse(raw)
end


function _M.push()
    if ngx.req.get_method() ~= "POST" then
        return respond(405, { error = "use POST" })
    end
    if not authorized() then
        return respond(401, { error = "missing or wrong admin token" })
    end
    -- nginx itself answers 501 to any other transfer coding.
    local read = ngx.var.http_transfer_encoding and ngx.req.http_version() == 1.1 and read_streamed or read_buffered
    local answer, version, base, routes, removed = read()
    if not version then
        local problem, status = base, routes
        ngx.log(ngx.WARN, "edgeroute: push refused: ", problem)
        return answer(status or 400, { error = problem })
    end
    local stored, status_or_count, message = store.apply(version, base, routes, removed)
    if not stored then
        return answer(status_or_count, { error = message, version = store.status().version or json_null })
    end
    -- This worker switches at once when that is cheap; the others (and this
    -- one after a big push) within one sync interval.
    if status_or_count <= INLINE_SYNC_MAX then
        table_sync.sync()
    end
    -- The generation tells the agent which nginx took the push: one that
    -- restarts afterwards shows another, even before the agent first asked.
    return answer(200, { version = stored, changed = status_or_count, generation = store.status().generation })
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
        -- "resolved" unless this nginx's variables are not as request_var.lua expects.
        variable_reads = request_var.mode(),
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
