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
local certs = require "edgeroute.certs"
local route_settings = require "edgeroute.route_settings"
local request_body = require "edgeroute.request_body"
local leastconn = require "edgeroute.leastconn"
local basic_auth = require "edgeroute.basic_auth"
local request_var = require "edgeroute.request_var"
local balancer = require "ngx.balancer"
local base = require "resty.core.base"
local ffi = require "ffi"

local ngx = ngx
local ngx_var = ngx.var
local ngx_header = ngx.header
local ngx_log = ngx.log
local ngx_say = ngx.say
local ngx_exit = ngx.exit
local ERR = ngx.ERR
local pcall = pcall
local set_current_peer = balancer.set_current_peer
local set_more_tries = balancer.set_more_tries
local set_timeouts = balancer.set_timeouts
local min = math.min
local sub = string.sub
local byte = string.byte
local tonumber = tonumber
local get_request = base.get_request
local ffi_cast = ffi.cast
local uintptr_t = ffi.typeof("uintptr_t")
local allowed = route_settings.allowed
local body_size = request_body.size
local leastconn_enter = leastconn.enter
local leastconn_leave = leastconn.leave
local inflight_enter = inflight.enter
local inflight_leave = inflight.leave
local get_var = request_var.get
local read_host = request_var.reader("host")
local read_sent_host = request_var.reader("http_host")
local read_uri = request_var.reader("uri")
local read_address = request_var.reader("binary_remote_addr")
-- nginx.conf's map of $http_upgrade, see apply_timeouts.
local read_connection = request_var.reader("edgeroute_connection")
local set_version_name = request_var.writer("edgeroute_version")

local table_state = table_sync.state

-- What a request's phases tell each other, keyed by the request's address
-- (unique among the requests in flight), in worker-level tables rather
-- than ngx.ctx: ngx.ctx makes a table and a registry reference per request
-- and a cleanup handler to drop it (about 0.3 µs of the worker's CPU per
-- request, and garbage). A compiled trace turns the address into a number
-- without allocating; the log phase, which every request reaches, clears
-- the entries, so an address nginx reuses finds them empty.
local request_version = {}   -- access → balancer and log: the version chosen
local request_peer = {}      -- balancer → retries and log: the peer serving it
local request_tried = {}     -- balancer, on retries only: the peers that failed

local function request_key()
    return (tonumber(ffi_cast(uintptr_t, get_request())))
end

local _M = { _VERSION = "0.1.0" }

-- For the specs.
_M.request_state = { version = request_version, peer = request_peer, tried = request_tried }

-- Extra attempts on connect failure, besides the first.
local MAX_RETRIES = 2
-- edgeroute.hsts: marathon-lb's BACKEND_HSTS_OPTIONS value.
local HSTS = "max-age=15768000"


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
        -- The agent's certificates (--certs), kept 0600 next to the table.
        certs.load_snapshot(config.snapshot_file .. ".certs")
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
    leastconn.init_worker()
end


local function reject(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "text/plain"
    ngx_say(body)
    return ngx_exit(status)
end


-- nginx.conf sends $edgeroute_upstream_host as the backend's Host: the
-- client's Host header as sent. Whether nginx.conf has it as a `set`
-- variable (an older one computes it with a regex map, which Lua cannot
-- write and which needs no help): nil until the first request that needs it.
local upstream_host_settable

local function set_upstream_host(host)
    ngx_var.edgeroute_upstream_host = host
end

local A, Z, COLON, ZERO, NINE = byte("A"), byte("Z"), byte(":"), byte("0"), byte("9")

-- Whether the Host header `sent` names `host` (nginx's $host: lower case, no
-- port): the same name in any case, with or without ":port". Byte by byte,
-- so that a Host with a port or capitals costs no string.
local function host_agrees(sent, host)
    local n = #host
    local length = #sent
    if length < n or (length > n and byte(sent, n + 1) ~= COLON) or length == n + 1 then
        return false
    end
    for i = 1, n do
        local c = byte(sent, i)
        if c >= A and c <= Z then
            c = c + 32
        end
        if c ~= byte(host, i) then
            return false
        end
    end
    for i = n + 2, length do
        local c = byte(sent, i)
        if c < ZERO or c > NINE then
            return false
        end
    end
    return true
end


-- The backend is told $host when the Host header disagrees with it: the
-- request line named another host (a full URL wins over the header, RFC 9112
-- 3.2.2), or an HTTP/1.0 request sent none.
local function check_upstream_host(host)
    local sent = read_sent_host()
    if sent == host or (sent and host_agrees(sent, host)) then
        return
    end
    if upstream_host_settable then
        ngx_var.edgeroute_upstream_host = host
    elseif upstream_host_settable == nil then
        upstream_host_settable = pcall(set_upstream_host, host)
    end
end


-- The request's $uri, read once: the router asks for it only for hosts that
-- route by path, and rewrite_path (which runs only then) reuses it. The
-- access phase does not yield in between, so no other request can overwrite it.
local request_uri_path

local function get_uri()
    local uri = read_uri()
    request_uri_path = uri
    return uri
end


local function redirect_https()
    local port = config.https_port
    local authority = read_host()
    if port ~= 443 then
        authority = authority .. ":" .. port
    end
    local method = ngx.req.get_method()
    local status = (method == "GET" or method == "HEAD") and 301 or 308
    return ngx.redirect("https://" .. authority .. ngx_var.request_uri, status)
end


-- The per-route checks of an app with settings. Returns true when the
-- request was answered here.
local function route_checks(app)
    if app.allow and not allowed(app.allow, read_address()) then
        reject(403, "edgeroute: this client may not use this app")
        return true
    end
    if app.redirect_https and ngx_var.https ~= "on" then
        redirect_https()
        return true
    end
    -- After the redirect, so no password is asked for over plain HTTP.
    if app.basic_auth and basic_auth.deny(app.basic_auth) then
        return true
    end
    -- marathon-lb's HTTP_BACKEND_REDIR: the path is exactly "/" (the query aside).
    local root = app.redirect_root
    if root and read_uri() == "/" then
        ngx.redirect(root, 301)
        return true
    end
    local max_body = app.max_body
    if max_body then
        local length = tonumber(ngx_var.http_content_length)
        if length == nil and (ngx_var.http_transfer_encoding or ngx.req.http_version() == 2) then
            length = body_size()
        end
        if length and length > max_body then
            reject(413, "edgeroute: request body too large for this app")
            return true
        end
    end
    return false
end


-- nginx forwards the URI as the client wrote it when Lua leaves it alone:
-- "/api/../web" would reach the app routed by "/web" with "/api" in it, and
-- "%2F" or "%2e" could reach a backend past the prefix that routed the
-- request. Requests routed by a path prefix therefore always go on with the
-- normalized URI that matched: setting it costs less than reading
-- $request_uri to see whether the written one differs.
local function rewrite_path(app, prefix)
    local uri = request_uri_path
    if app.strip_path and prefix ~= "/" then
        local rest = sub(uri, #prefix + 1)
        ngx.req.set_uri(rest == "" and "/" or rest, false, true)
    else
        -- binary: a decoded control byte (%0a, %7f) is allowed; nginx escapes it when proxying.
        ngx.req.set_uri(uri, false, true)
    end
end


function _M.access()
    local host = read_host()
    local app, prefix = router.find_route(host, get_uri)
    if app == nil then
        if prefix then
            return reject(404, "edgeroute: no app serves this path on this host")
        end
        if not router.loaded() then
            return reject(503, "edgeroute: no routing table loaded yet")
        end
        return reject(404, "edgeroute: no app serves this host")
    end
    if app.access_work and route_checks(app) then
        return
    end
    local version = app.default_version
    if app.version_count > 1 then
        version = policy_sync.choose_version(app) or version
    end
    local key = request_key()
    -- A request whose log phase did not run (none does here) left nothing
    -- this one could take for its own.
    request_peer[key] = nil
    request_version[key] = version
    if version == nil or version.peer_count == 0 then
        -- Counted in the app's metrics: a 503 of a known app is worth seeing.
        return reject(503, "edgeroute: no backend is available for this app")
    end
    set_version_name(version.name)
    check_upstream_host(host)
    if app.hsts then
        -- A response header set now is sent with whatever answers: the
        -- app's response (beside its own headers) or nginx's 502 and 504.
        -- Only these apps pay for it: an add_header in nginx.conf costs
        -- every request.
        ngx_header["Strict-Transport-Security"] = HSTS
    end
    -- Last: ngx.req.set_uri is a C function, which ends the JIT trace; the
    -- FFI calls above stay compiled only when they come before it.
    if prefix then
        rewrite_path(app, prefix)
    end
end


-- The table may have changed between access and balancer (a request body
-- still uploading): a drained task must not get a request chosen by the old
-- table after this node told its agent that nothing is in flight to it. An
-- app the table did not change keeps its compiled object.
local function current_version(key, version)
    local app = table_state.apps[version.app_id]
    if app == version.app then
        return version
    end
    local fresh = app and app.versions[version.name]
    if fresh == nil or fresh.peer_count == 0 then
        return version
    end
    request_version[key] = fresh
    return fresh
end


-- A request leaves its peer's counts: on a retry and at the end (log).
local function leave(peer)
    inflight_leave(peer)
    if peer.lc_key then
        leastconn_leave(peer)
    end
end


function _M.log()
    local key = request_key()
    local version = request_version[key]
    if version == nil then
        -- Not routed (404, or refused before a version was chosen).
        return
    end
    request_version[key] = nil
    local peer = request_peer[key]
    if peer ~= nil then
        request_peer[key] = nil
        leave(peer)
        if request_tried[key] then
            request_tried[key] = nil
        end
    end
    metrics.log(version, ngx.status)
end


-- An upgraded connection (WebSocket) lives as long as both ends talk: its
-- read timeout is its idle timeout, not the app's answer time. Whether the
-- request asks for an upgrade is read from nginx.conf's map of
-- $http_upgrade: proxy_set_header has computed it before the balancer
-- runs, so this read is a lookup of a value nginx keeps for the request,
-- where $http_upgrade itself (not one of nginx's named headers) would be a
-- search of the request's headers again.
local function apply_timeouts(app)
    if read_connection() == "upgrade" then
        local idle = config.upgrade_idle_timeout
        local timeouts = app.timeouts
        set_timeouts(timeouts and timeouts[1], idle, idle)
    elseif app.timeouts then
        local timeouts = app.timeouts
        set_timeouts(timeouts[1], timeouts[2], timeouts[3])
    end
end


function _M.balance()
    local key = request_key()
    local version = request_version[key]
    local app = version.app
    local peer, sticky
    if app.sticky_var then
        -- The task the cookie names, while it is still a backend of the version.
        sticky = get_var(app.sticky_var)
    end
    local last = request_peer[key]
    if last == nil then
        version = current_version(key, version)
        app = version.app
        if sticky then
            peer = version.sticky_peers[sticky]
        end
        if peer == nil then
            peer = version.balancer:pick(nil)
        end
        local retries = min(version.peer_count - 1, MAX_RETRIES)
        if retries > 0 then
            set_more_tries(retries)
        end
        apply_timeouts(app)
    else
        -- nginx calls us again only after the last peer failed.
        local tried = request_tried[key]
        if tried == nil then
            tried = {}
            request_tried[key] = tried
        end
        tried[last] = true
        metrics.upstream_failed(version)
        peer = version.balancer:pick(tried)
        leave(last)
    end
    inflight_enter(peer)
    if peer.lc_key then
        leastconn_enter(peer)
    end
    request_peer[key] = peer
    -- The cookie is (re)issued whenever the request goes to another task
    -- than the one it names: none yet, one that left, drains or failed.
    if app.sticky_cookie then
        if peer.sticky ~= sticky then
            ngx_header["Set-Cookie"] = peer.sticky_cookie
        elseif last ~= nil then
            -- A retry went back to the task the cookie names.
            ngx_header["Set-Cookie"] = nil
        end
    end
    local ok, err = set_current_peer(peer.address, peer.port)
    if not ok then
        ngx_log(ERR, "edgeroute: cannot use peer ", peer.address, ":", peer.port, ": ", err)
    end
end


return _M
