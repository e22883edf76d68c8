-- HAProxy's side of edgeroute: the `lua.edgeroute` http-request action the
-- frontend runs for hosts the agent marked in hosts.map (paths, per-route
-- settings, several versions), loaded from the haproxy.cfg that
-- `edgeroute haproxy-conf` renders (lua-load-per-thread: one Lua state per
-- thread, no lock shared between them). Hosts of one simple app never come
-- here: HAProxy routes them in C through hosts.map.
--
-- The action answers the request itself (404, 400, 401, 403, 413, a redirect) or
-- sets txn.edgeroute_backend (the pool backend of the chosen version) and,
-- for apps with a timeout, txn.edgeroute_server_timeout (ms), and for apps
-- with edgeroute.hsts, txn.edgeroute_hsts. Everything it
-- knows comes from rules.map, which the agent edits over the runtime API:
-- no Redis, no JSON, no file read per request.

local router_mod = require "edgeroute.haproxy.router"
local uri = require "edgeroute.haproxy.uri"
local request = require "edgeroute.haproxy.request"
local cidr = require "edgeroute.policy.cidr"
local basic_auth = require "edgeroute.haproxy.basic_auth"

local lower = string.lower
local gsub = string.gsub
local tonumber = tonumber

local _M = { _VERSION = "0.1.0" }

local TEXT = { ["content-type"] = { "text/plain" } }


local function reply(txn, status, body)
    txn:done(txn:reply({ status = status, body = body, headers = TEXT }))
end


local function redirect(txn, https_port, host)
    local method = txn.f:method()
    local status = (method == "GET" or method == "HEAD") and 301 or 308
    local authority = host
    if https_port ~= 443 then
        authority = authority .. ":" .. https_port
    end
    local location = "https://" .. authority .. (txn.sf:url() or "/")
    txn:done(txn:reply({ status = status, headers = { location = { location } } }))
end


-- What a policy reads, fetched once per request and only when asked for.
local function request_env(txn, router, region_header)
    local cookies, args, addr_text, addr_bytes
    local env = {}
    function env.header(name)
        return txn.sf:req_fhdr(name, 1)
    end
    function env.cookie(name)
        if cookies == nil then
            local headers = txn.http:req_get_headers()["cookie"]
            local list = {}
            if headers then
                for i = 0, #headers do
                    list[#list + 1] = headers[i]
                end
            end
            cookies = request.cookies(list)
        end
        return cookies[name]
    end
    function env.arg(name)
        if args == nil then
            args = request.args(txn.sf:query())
        end
        return args[name]
    end
    function env.ip_text()
        if addr_text == nil then
            addr_text = txn.f:src() or false
        end
        return addr_text or nil
    end
    function env.ip_bytes()
        if addr_bytes == nil then
            local text = env.ip_text()
            local parsed = text and cidr.parse(text)
            addr_bytes = parsed and parsed.bytes or false
        end
        return addr_bytes or nil
    end
    -- haproxy-conf's --region-header (a CDN's), else the CIDR→region table.
    function env.region()
        if region_header then
            local region = txn.sf:req_fhdr(region_header, 1)
            if region and region ~= "" then
                return region
            end
        end
        return router:region_of(env.ip_bytes())
    end
    return env
end


local function allowed(allow, src)
    local parsed = src and cidr.parse(src)
    if not parsed then
        return false
    end
    return cidr.any(allow, parsed.bytes)
end


-- opts: rules_map (the file haproxy.cfg maps from), https_port, region_header.
function _M.start(opts)
    local rules = Map.new(opts.rules_map, Map._str)
    local https_port = opts.https_port or 443
    local region_header = opts.region_header
    local function lookup(key)
        return rules:lookup(key)
    end
    local function compile_regex(pattern)
        local ok, regex = Regex.new(pattern, true)
        if not ok then
            return nil, regex
        end
        return regex
    end
    local router = router_mod.new(lookup, compile_regex, core.Warning)

    core.register_action("edgeroute", { "http-req" }, function(txn)
        router:refresh()
        local host = txn:get_var("txn.edgeroute_host") or ""
        local raw_path = txn.sf:path() or "/"
        local path, bad = nil, false
        local function get_path()
            if path == nil then
                path = uri.normalize(raw_path)
                bad = path == nil
            end
            return path
        end
        local id, served = router:find(host, get_path)
        if id == nil then
            if bad then
                return reply(txn, 400, "edgeroute: bad request path\n")
            end
            if served then
                return reply(txn, 404, "edgeroute: no app serves this path on this host\n")
            end
            return reply(txn, 404, "edgeroute: no app serves this host\n")
        end
        local prefix = served
        local app = router:app(id)
        if app == nil then
            return reply(txn, 404, "edgeroute: no app serves this host\n")
        end
        if app.checks then
            if app.allow and not allowed(app.allow, txn.f:src()) then
                return reply(txn, 403, "edgeroute: this client may not use this app\n")
            end
            if app.redirect_https and txn.f:ssl_fc() ~= 1 then
                return redirect(txn, https_port, host)
            end
            -- edgeroute.basicAuth: after the redirect, so no password is asked for over plain HTTP.
            if app.basic_auth and basic_auth.deny(txn, app.basic_auth) then
                return
            end
            -- marathon-lb's HTTP_BACKEND_REDIR: the path is exactly "/" (the query aside).
            if app.redirect_root and raw_path == "/" then
                return txn:done(txn:reply({ status = 301, headers = { location = { app.redirect_root } } }))
            end
            local max_body = app.max_body
            if max_body then
                local length = tonumber(txn.sf:req_fhdr("content-length", 1) or "")
                if length and length > max_body then
                    return reply(txn, 413, "edgeroute: request body too large for this app\n")
                end
            end
        end
        -- A request routed by a prefix goes on with the normalized path (as
        -- on nginx nodes) whenever the raw one could differ, or stripped.
        if path ~= nil then
            local forward = path
            if app.strip_path then
                forward = uri.strip(path, prefix)
            end
            if forward ~= raw_path and (app.strip_path or uri.may_differ(raw_path)) then
                txn.http:req_set_path(uri.escape(forward))
            end
        end
        local env = request_env(txn, router, region_header)
        local backend = router_mod.backend(app, env)
        if backend == nil then
            return reply(txn, 503, "edgeroute: no backend is available for this app\n")
        end
        txn:set_var("txn.edgeroute_backend", backend)
        -- edgeroute.sticky: the app's backends hash this value (consistent
        -- hash, so a user stays on one task while it is a backend); a user
        -- without the cookie gets a new opaque value, issued with the response.
        local sticky = app.sticky_cookie
        if sticky then
            local value = env.cookie(lower(sticky))
            if value == nil or value == "" then
                value = gsub(txn.f:uuid() or "", "-", "")
                txn:set_var("txn.edgeroute_sticky_set", sticky .. "=" .. value .. "; Path=/; HttpOnly")
            end
            txn:set_var("txn.edgeroute_sticky", value)
        end
        if app.server_timeout then
            txn:set_var("txn.edgeroute_server_timeout", app.server_timeout)
        end
        -- edgeroute.hsts: haproxy.cfg's frontend adds the header to the response.
        if app.hsts then
            txn:set_var("txn.edgeroute_hsts", 1)
        end
    end, 0)
end


return _M
