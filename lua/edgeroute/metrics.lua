-- Request metrics per app and version, counted per worker in plain tables
-- (no shared-dict lock per request) and written to the shared dict once a
-- second; the admin listener's /metrics sums the workers.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"

local ngx = ngx
local ngx_now = ngx.now
local req_start_time = ngx.req.start_time
local floor = math.floor
local pairs = pairs
local next = next
local concat = table.concat
local gsub = string.gsub
local json_encode = cjson.encode
local json_decode = cjson.decode

local _M = { _VERSION = "0.1.0" }

-- Upper bounds of the latency histogram, in seconds. 1 and 2.5 ms so that
-- the p50 of a fast app reads as such (not as "5 ms or less"); the log phase
-- scans from the lowest bound, so a fast request stops earlier, a slow one
-- makes two more comparisons.
local BUCKETS = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }
local NBUCKETS = #BUCKETS
-- Layout of one series: 1-5 requests by status class (1xx..5xx), then the
-- bucket counts, then the latency sum, then upstream failures.
local SUM = 5 + NBUCKETS + 2
local FAILURES = SUM + 1
local FLUSH_SECONDS = 1

-- "app\0version" → counters; outlives table recompiles.
local series = {}


local function zeros()
    local c = {}
    for i = 1, FAILURES do
        c[i] = 0
    end
    return c
end


local function counters(key)
    local c = series[key]
    if c == nil then
        c = zeros()
        series[key] = c
    end
    return c
end


function _M.key(app_id, version_name)
    return app_id .. "\0" .. version_name
end


-- log phase: `version` is what access chose (nil for 404s and 503s before routing).
function _M.log(version, status)
    if version == nil then
        return
    end
    local c = version.metrics or counters(version.metrics_key)
    version.metrics = c
    local class = floor(status / 100)
    if class >= 1 and class <= 5 then
        c[class] = c[class] + 1
    end
    local elapsed = ngx_now() - req_start_time()
    local slot = NBUCKETS + 1
    for i = 1, NBUCKETS do
        if elapsed <= BUCKETS[i] then
            slot = i
            break
        end
    end
    c[5 + slot] = c[5 + slot] + 1
    c[SUM] = c[SUM] + elapsed
end


-- balancer phase, on a retry: the previous attempt failed.
function _M.upstream_failed(version)
    local c = version.metrics or counters(version.metrics_key)
    version.metrics = c
    c[FAILURES] = c[FAILURES] + 1
end


local function flush(premature)
    if premature or next(series) == nil then
        return
    end
    local shared = ngx.shared[config.dict_name]
    local ok, err = shared:safe_set("metrics:" .. ngx.worker.id(), json_encode(series))
    if not ok then
        ngx.log(ngx.WARN, "edgeroute: cannot store metrics: ", err)
    end
end


function _M.init_worker()
    local ok, err = ngx.timer.every(FLUSH_SECONDS, flush)
    if not ok then
        ngx.log(ngx.ERR, "edgeroute: cannot start the metrics timer: ", err)
    end
end


-- The agent's traffic sampler (GET /metrics?format=json on the admin
-- listener, every few seconds): each worker's last flush as it is stored,
-- not decoded here, so the admin request costs a copy per worker whatever
-- the number of apps. Series are {1xx..5xx, a count per BUCKETS bound, the
-- count above the last, latency sum, upstream failures}, keyed "app\0version".
local BOUNDS_JSON = json_encode(BUCKETS)

function _M.raw_json(generation)
    local shared = ngx.shared[config.dict_name]
    local out = { '{"generation":', json_encode(generation or ""), ',"bounds":', BOUNDS_JSON, ',"workers":[' }
    for worker = 0, ngx.worker.count() - 1 do
        if worker > 0 then
            out[#out + 1] = ","
        end
        out[#out + 1] = shared:get("metrics:" .. worker) or "{}"
    end
    out[#out + 1] = "]}"
    return concat(out)
end


local function label(value)
    return (gsub(gsub(gsub(value, "\\", "\\\\"), "\n", "\\n"), '"', '\\"'))
end


-- Prometheus text of every worker's last flush, summed.
function _M.render()
    local shared = ngx.shared[config.dict_name]
    local total = {}
    for worker = 0, ngx.worker.count() - 1 do
        local raw = shared:get("metrics:" .. worker)
        local decoded = raw and json_decode(raw)
        if decoded then
            for key, c in pairs(decoded) do
                local t = total[key]
                if t == nil then
                    t = zeros()
                    total[key] = t
                end
                for i = 1, FAILURES do
                    t[i] = t[i] + (c[i] or 0)
                end
            end
        end
    end

    local out = {
        "# HELP edgeroute_requests_total Requests by app, version and status class",
        "# TYPE edgeroute_requests_total counter",
    }
    local durations = {
        "# HELP edgeroute_request_duration_seconds Time to serve a request, by app and version",
        "# TYPE edgeroute_request_duration_seconds histogram",
    }
    local failures = {
        "# HELP edgeroute_upstream_failures_total Attempts on a backend that failed and were retried on another",
        "# TYPE edgeroute_upstream_failures_total counter",
    }
    for key, t in pairs(total) do
        local app, version = key:match("^(.-)%z(.*)$")
        local labels = 'app="' .. label(app or key) .. '",version="' .. label(version or "") .. '"'
        for class = 1, 5 do
            out[#out + 1] = "edgeroute_requests_total{" .. labels .. ',status="' .. class .. 'xx"} ' .. t[class]
        end
        local cumulative = 0
        for i = 1, NBUCKETS do
            cumulative = cumulative + t[5 + i]
            durations[#durations + 1] = "edgeroute_request_duration_seconds_bucket{" .. labels .. ',le="' .. BUCKETS[i] .. '"} ' .. cumulative
        end
        cumulative = cumulative + t[5 + NBUCKETS + 1]
        durations[#durations + 1] = "edgeroute_request_duration_seconds_bucket{" .. labels .. ',le="+Inf"} ' .. cumulative
        durations[#durations + 1] = "edgeroute_request_duration_seconds_sum{" .. labels .. "} " .. t[SUM]
        durations[#durations + 1] = "edgeroute_request_duration_seconds_count{" .. labels .. "} " .. cumulative
        failures[#failures + 1] = "edgeroute_upstream_failures_total{" .. labels .. "} " .. t[FAILURES]
    end
    return concat(out, "\n") .. "\n" .. concat(durations, "\n") .. "\n" .. concat(failures, "\n") .. "\n"
end


return _M
