-- Compiles an app's per-route settings (edgeroute.* labels the agent pushed
-- under "settings") into the fields the request path reads, once per table
-- change, so the access and balancer phases only test fields.

local cidr = require "edgeroute.policy.cidr"
local basic_auth = require "edgeroute.basic_auth"

local ngx = ngx
local ipairs = ipairs
local sub = string.sub

local _M = { _VERSION = "0.1.0" }


-- Sets on `app`:
--   access_work    true when the access phase has anything to check besides routing
--   strip_path     remove the matched prefix before proxying
--   redirect_https plain-HTTP requests get a redirect
--   redirect_root  where a request for exactly "/" is redirected (301)
--   hsts           responses get Strict-Transport-Security
--   max_body       largest request body in bytes
--   allow          CIDRs allowed, parsed
--   basic_auth     the users a request must prove to be one of (basic_auth.lua)
--   sticky_cookie  cookie name of session affinity, sticky_var its nginx variable
--   leastconn      balance by requests in flight
--   timeouts       { connect, send, read } seconds (nil: nginx.conf's)
function _M.compile(app, settings)
    if settings == nil then
        return
    end
    app.strip_path = settings.stripPath == true
    app.redirect_https = settings.redirectHttps == true
    app.redirect_root = settings.redirectRoot
    app.hsts = settings.hsts == true
    app.max_body = settings.maxBodySize
    if settings.allowFrom then
        local allow = {}
        for i, text in ipairs(settings.allowFrom) do
            allow[i] = cidr.parse(text)
        end
        app.allow = allow
    end
    if settings.basicAuth then
        app.basic_auth = basic_auth.compile(settings.basicAuth)
    end
    if settings.sticky then
        app.sticky_cookie = settings.sticky
        app.sticky_var = "cookie_" .. settings.sticky
    end
    app.leastconn = settings.balance == "leastconn"
    if settings.connectTimeout or settings.sendTimeout or settings.readTimeout then
        app.timeouts = { settings.connectTimeout, settings.sendTimeout, settings.readTimeout }
    end
    app.access_work = app.strip_path or app.redirect_https or app.max_body ~= nil
        or app.allow ~= nil or app.sticky_cookie ~= nil or app.redirect_root ~= nil
        or app.basic_auth ~= nil
end


-- The opaque value of a sticky cookie for one task: stable across pushes and
-- routing nodes, and telling nothing of the task's address or port.
function _M.sticky_value(app_id, task_id)
    return sub(ngx.md5(app_id .. "\0" .. task_id), 1, 16)
end


-- Whether $binary_remote_addr lies in one of the app's allowFrom CIDRs.
_M.allowed = cidr.any


return _M
