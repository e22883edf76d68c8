-- Finds the Redis master through Redis Sentinel, for the plugin's timers
-- (never the request path). Each worker keeps the address it was told; it
-- asks again when a connection to that address fails, or when the address is
-- older than CACHE_S (a failover that left the old master up, as a replica,
-- is noticed within that time). The sentinels are asked in turn, from the
-- one that answered last.

local ngx = ngx
local ngx_now = ngx.now
local ngx_log = ngx.log
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE
local tonumber = tonumber
local tostring = tostring
local type = type
local concat = table.concat

local _M = {}

local CACHE_S = 5

local master_host, master_port
local told_at = 0
-- The last address the sentinels gave, kept across forget(): a change is logged once.
local told_host, told_port
-- Which sentinel to ask first: the one that answered last.
local first = 1


-- A reply to SENTINEL get-master-addr-by-name: { host, port }, or null when
-- the sentinel does not know the name.
function _M.parse_reply(res)
    if type(res) ~= "table" or type(res[1]) ~= "string" then
        return nil, nil, "does not know the master"
    end
    local port = tonumber(res[2])
    if not port or port < 1 or port > 65535 then
        return nil, nil, "gave no port for the master"
    end
    return res[1], port
end


local function where(s)
    return s.host .. ":" .. s.port
end


-- Asks the sentinels in turn; `ask(sentinel)` returns the reply or nil, err.
-- Returns host, port, or nil, nil, a message naming every sentinel's answer.
function _M.resolve(settings, ask)
    local sentinels = settings.sentinels
    local n = #sentinels
    local problems = {}
    for i = 0, n - 1 do
        local index = (first - 1 + i) % n + 1
        local sentinel = sentinels[index]
        local res, err = ask(sentinel)
        local host, port, problem
        if res then
            host, port, problem = _M.parse_reply(res)
        else
            problem = tostring(err)
        end
        if host then
            first = index
            return host, port
        end
        problems[#problems + 1] = where(sentinel) .. ": " .. problem
    end
    return nil, nil, "no sentinel named the master " .. settings.master_name .. " (" .. concat(problems, "; ") .. ")"
end


-- The master's address, asking the sentinels when it is unknown or stale.
function _M.master(settings, ask)
    local now = ngx_now()
    if master_host and now - told_at < CACHE_S then
        return master_host, master_port
    end
    local host, port, err = _M.resolve(settings, ask)
    if not host then
        -- Keep what we had: a stale address beats none while the sentinels are away.
        if master_host then
            ngx_log(WARN, "edgeroute: ", err, "; keeping ", master_host, ":", master_port)
            told_at = now
            return master_host, master_port
        end
        return nil, nil, err
    end
    if host ~= told_host or port ~= told_port then
        ngx_log(NOTICE, "edgeroute: redis master ", settings.master_name, " is at ", host, ":", port,
            told_host and (" (was " .. told_host .. ":" .. told_port .. ")") or "")
    end
    master_host, master_port, told_at = host, port, now
    told_host, told_port = host, port
    return host, port
end


-- The master did not answer (or no longer is one): ask the sentinels next time.
function _M.forget()
    master_host, master_port = nil, nil
end


return _M
