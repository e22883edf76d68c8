-- Requests in flight per backend (task id), so that the agent can make sure
-- no request is still being served by a task before it is killed. Each
-- worker counts in a plain table (no shared-dict lock per request) and
-- publishes a report to the shared dict when the counts or its compiled
-- table changed; the admin listener sums the reports.
--
-- A report, under "inflight:<worker id>":
--
--   <seq> <ms> <#version>:<version>\n
--   <n> <#id>:<id>\n            one line per backend with n > 0
--
-- seq and version are those of the table the worker has compiled (both
-- empty before the first table), ms is when the report was written. Strings
-- carry their length: ids and versions are whatever the agent pushed, and a
-- length costs nothing to write while a newline in a name cannot confuse it.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"
local table_sync = require "edgeroute.table_sync"

local ngx = ngx
local ngx_now = ngx.now
local ngx_log = ngx.log
local WARN = ngx.WARN
local ERR = ngx.ERR
local pairs = pairs
local next = next
local tonumber = tonumber
local tostring = tostring
local floor = math.floor
local concat = table.concat
local match = string.match
local sub = string.sub
local json_encode = cjson.encode
local json_null = cjson.null

local _M = { _VERSION = "0.1.0" }

local KEY_PREFIX = "inflight:"
-- Short, because the agent waits on these reports before killing a task;
-- a worker whose counts did not change writes nothing.
local PUBLISH_SECONDS = 0.05

-- task id → requests this worker is proxying to it; zero entries are
-- removed, so ids of dead tasks do not accumulate.
local counts = {}
_M.counts = counts
local dirty = true
local published_seq, published_version
local key


-- balancer phase: `peer` now serves the request.
function _M.enter(peer)
    local id = peer.id
    counts[id] = (counts[id] or 0) + 1
    dirty = true
end


-- balancer phase on a retry (the previous peer failed), and log phase.
function _M.leave(peer)
    local id = peer.id
    local n = counts[id]
    if n == nil then
        return
    end
    if n > 1 then
        counts[id] = n - 1
    else
        counts[id] = nil
    end
    dirty = true
end


function _M.key(worker)
    return KEY_PREFIX .. worker
end


function _M.encode(seq, version, at, backends)
    version = version or ""
    local out = { seq or "", " ", at, " ", #version, ":", version, "\n" }
    local i = #out
    for id, n in pairs(backends) do
        out[i + 1] = n
        out[i + 2] = " "
        out[i + 3] = #id
        out[i + 4] = ":"
        out[i + 5] = id
        out[i + 6] = "\n"
        i = i + 6
    end
    return concat(out)
end


-- Returns { seq, version, at, backends = { id = n } }, or nil for a missing
-- or unreadable report.
function _M.decode(raw)
    if raw == nil then
        return nil
    end
    local seq, at, len, pos = match(raw, "^(%d*) (%d+) (%d+):()")
    if seq == nil then
        return nil
    end
    len = tonumber(len)
    local report = {
        seq = tonumber(seq),
        at = tonumber(at),
        version = len > 0 and sub(raw, pos, pos + len - 1) or nil,
        backends = {},
    }
    pos = pos + len + 1
    local backends = report.backends
    while true do
        local n, id_len, start = match(raw, "^(%d+) (%d+):()", pos)
        if n == nil then
            break
        end
        id_len = tonumber(id_len)
        backends[sub(raw, start, start + id_len - 1)] = tonumber(n)
        pos = start + id_len + 1
    end
    return report
end


local function publish(premature)
    if premature then
        return
    end
    local state = table_sync.state
    if not dirty and state.seq == published_seq and state.version == published_version then
        return
    end
    local report = _M.encode(state.seq, state.version, floor(ngx_now() * 1000), counts)
    local ok, err = ngx.shared[config.dict_name]:safe_set(key, report)
    if not ok then
        -- Still dirty: the next tick tries again.
        ngx_log(WARN, "edgeroute: cannot store in-flight counts: ", err)
        return
    end
    dirty = false
    published_seq, published_version = state.seq, state.version
end
_M.publish = publish


-- After the first table sync, so that the first report names its version.
function _M.init_worker()
    key = KEY_PREFIX .. ngx.worker.id()
    publish(false)
    local ok, err = ngx.timer.every(PUBLISH_SECONDS, publish)
    if not ok then
        ngx_log(ERR, "edgeroute: cannot start the in-flight timer: ", err)
    end
end


local function encode_reports(reports)
    -- An empty Lua table encodes as {}; this one is a JSON array.
    if reports[1] == nil then
        return "[]"
    end
    return json_encode(reports)
end


-- The admin view as JSON: every worker's report, their nonzero sums, and
-- whether they settle the question "can a request still reach a backend
-- the current table dropped": yes unless every worker reported and has
-- compiled the current table. Comparing seq as well as version matters: a
-- worker reads table:seq then table:version, and table:version is written
-- first, so a worker can hold a newer version string than its table for
-- one sync interval. `only` (a set of ids, or nil) limits the backends.
function _M.render(shared, worker_count, seq, version, only)
    local reports, totals = {}, {}
    local settled = true
    for worker = 0, worker_count - 1 do
        local report = _M.decode(shared:get(KEY_PREFIX .. worker))
        if report == nil then
            settled = false
        else
            if report.seq ~= seq or report.version ~= version then
                settled = false
            end
            local backends = {}
            for id, n in pairs(report.backends) do
                if n > 0 and (only == nil or only[id]) then
                    backends[id] = n
                    totals[id] = (totals[id] or 0) + n
                end
            end
            reports[#reports + 1] = {
                worker = worker,
                seq = report.seq or json_null,
                version = report.version or json_null,
                at = report.at,
                backends = backends,
            }
        end
    end
    return concat({
        '{"version":', json_encode(version or json_null),
        ',"seq":', json_encode(seq or json_null),
        ',"workers":', tostring(worker_count),
        ',"reports":', encode_reports(reports),
        ',"backends":', next(totals) == nil and "{}" or json_encode(totals),
        ',"settled":', settled and "true" or "false",
        "}",
    })
end


return _M
