-- Plugin settings, fixed at init_by_lua time from the generated nginx.conf.

local _M = {
    _VERSION = "0.1.0",
    dict_name = "edgeroute",
    -- Requests in flight per task for least-connections balancing.
    counters_dict_name = "edgeroute_counters",
    -- The port plain-HTTP requests are redirected to (edgeroute.redirectHttps).
    https_port = 443,
    -- Read and send timeout of an upgraded (WebSocket) connection: its idle timeout.
    upgrade_idle_timeout = 3600,
    -- How often each worker looks for a new table version (seconds): one
    -- shared-dict read; decoding happens only when the version changed.
    sync_interval = 0.01,
    -- Resolved wildcard hosts kept per worker.
    host_cache_size = 10000,
    admin_token = nil,
    -- Redis for split policies; nil disables them (apps use their default version).
    -- { host, port, db, prefix, username, password_file, tls, server_name }.
    redis = nil,
    redis_prefix = "edgeroute:",
    -- How often worker 0 reads the policies of multi-version apps (seconds).
    policy_refresh_interval = 0.5,
    -- nginx variable holding the request's region (e.g. geoip2's, or http_x_region for a CDN header).
    region_var = nil,
    -- The agent's last full table, loaded at start so nginx serves before the agent pushes.
    snapshot_file = nil,
}

local type = type
local ipairs = ipairs
local io_open = io.open
local error = error


local function read_secret(path)
    local file, err = io_open(path, "r")
    if not file then
        return nil, "cannot read " .. err
    end
    local secret = file:read("*l")
    file:close()
    return secret or ""
end

-- A password file named in the config must be readable: nginx refuses to start without it.
local function secret_or_fail(path)
    local secret, err = read_secret(path)
    if not secret then
        error("edgeroute: " .. err)
    end
    return secret
end


local function read_token(path)
    local token, err = read_secret(path)
    if not token then
        return nil, "admin token: " .. err
    end
    if #token < 16 then
        return nil, "admin token in " .. path .. " is shorter than 16 characters"
    end
    return token
end


function _M.load(opts)
    if type(opts) ~= "table" then
        error("edgeroute: init expects a table of options")
    end
    if opts.sync_interval then
        _M.sync_interval = opts.sync_interval
    end
    if opts.host_cache_size then
        _M.host_cache_size = opts.host_cache_size
    end
    if opts.redis then
        local redis = opts.redis
        if redis.sentinels then
            -- Through Sentinel: the master's address is asked at run time (edgeroute.redis_sentinel).
            if type(redis.sentinels) ~= "table" or #redis.sentinels == 0 or type(redis.master_name) ~= "string" then
                error("edgeroute: redis sentinels need a list of { host, port } and a master_name")
            end
            for _, s in ipairs(redis.sentinels) do
                if type(s.host) ~= "string" or type(s.port) ~= "number" then
                    error("edgeroute: every redis sentinel needs a host and a port")
                end
            end
            if redis.sentinel_password_file then
                redis.sentinel_password = secret_or_fail(redis.sentinel_password_file)
            end
        elseif type(redis.host) ~= "string" or type(redis.port) ~= "number" then
            error("edgeroute: redis needs a host and a port")
        end
        -- Through Sentinel without a server_name, each certificate must carry the address connected to.
        if redis.tls and not redis.sentinels and type(redis.server_name) ~= "string" then
            -- Verifying the chain without the name would accept any certificate the CA ever signed.
            error("edgeroute: redis tls needs the server_name its certificate carries")
        end
        if redis.password_file then
            redis.password = secret_or_fail(redis.password_file)
        end
        _M.redis = redis
        _M.redis_prefix = redis.prefix or _M.redis_prefix
    end
    if opts.policy_refresh_interval then
        _M.policy_refresh_interval = opts.policy_refresh_interval
    end
    if opts.region_var and opts.region_var ~= "" then
        _M.region_var = opts.region_var
    end
    if opts.https_port then
        _M.https_port = opts.https_port
    end
    if opts.upgrade_idle_timeout then
        _M.upgrade_idle_timeout = opts.upgrade_idle_timeout
    end
    if opts.snapshot_file and opts.snapshot_file ~= "" then
        _M.snapshot_file = opts.snapshot_file
    end
    if opts.token_file then
        local token, err = read_token(opts.token_file)
        if not token then
            -- Refuse to start rather than run an admin endpoint anyone can write to.
            error("edgeroute: " .. err)
        end
        _M.admin_token = token
    end
    return _M
end


return _M
