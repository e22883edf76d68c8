-- Plugin settings, fixed at init_by_lua time from the generated nginx.conf.

local _M = {
    _VERSION = "0.1.0",
    dict_name = "edgeroute",
    -- How often each worker looks for a new table version (seconds).
    sync_interval = 0.05,
    -- Resolved wildcard hosts kept per worker.
    host_cache_size = 10000,
    admin_token = nil,
}

local type = type
local io_open = io.open
local error = error


local function read_token(path)
    local file, err = io_open(path, "r")
    if not file then
        return nil, "cannot read admin token file: " .. err
    end
    local token = file:read("*l")
    file:close()
    if not token or #token < 16 then
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
