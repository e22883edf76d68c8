package.path = "lua/?.lua;" .. package.path

-- Just enough of nginx for the in-flight counters, the plugin's balancer and
-- log phases, and the admin view; the nginx integration test covers the rest.
local function new_dict()
    local data = {}
    return {
        data = data,
        get = function(_, key)
            return data[key]
        end,
        safe_set = function(_, key, value)
            data[key] = value
            return true
        end,
    }
end

local clock = 1700000000.123
local dict = new_dict()
local timers = {}
local chosen = {}
local more_tries = {}

_G.ngx = {
    now = function()
        return clock
    end,
    log = function() end,
    WARN = 5,
    ERR = 4,
    NOTICE = 6,
    var = {},
    ctx = {},
    shared = { edgeroute = dict },
    worker = {
        id = function()
            return 0
        end,
        count = function()
            return 2
        end,
    },
    timer = {
        every = function(interval, fn)
            timers[#timers + 1] = { interval = interval, fn = fn }
            return true
        end,
    },
}

local table_state = { seq = 7, version = "v7", apps = {} }
package.loaded["edgeroute.table_sync"] = { state = table_state, sync = function() return true end }
package.loaded["ngx.balancer"] = {
    set_current_peer = function(address, port)
        chosen[#chosen + 1] = address .. ":" .. port
        return true
    end,
    set_more_tries = function(n)
        more_tries[#more_tries + 1] = n
        return true
    end,
    set_timeouts = function()
        return true
    end,
}
package.loaded["edgeroute.metrics"] = {
    log = function() end,
    upstream_failed = function() end,
    init_worker = function() end,
}
-- The request the phases run for: an address, as nginx's request pointer.
local ffi = require "ffi"
local current_request
package.loaded["resty.core.base"] = {
    get_request = function()
        return current_request
    end,
}
for _, name in ipairs({ "store", "router", "policy_sync", "policy_refresh", "push_format" }) do
    package.loaded["edgeroute." .. name] = {}
end

local cjson = require "cjson.safe"
local inflight = require "edgeroute.inflight"
local plugin = require "edgeroute.plugin"
local swrr = require "edgeroute.swrr"


local function clear(t)
    for k in pairs(t) do
        t[k] = nil
    end
end


local function counts()
    local copy = {}
    for id, n in pairs(inflight.counts) do
        copy[id] = n
    end
    return copy
end


local function version_of(...)
    local peers = {}
    for i, id in ipairs({ ... }) do
        peers[i] = { id = id, address = "127.0.0." .. i, port = 8000 + i, weight = 1 }
    end
    -- As table_sync compiles it: an app without per-route settings.
    return { name = "stable", app_id = "/app", peer_count = #peers, balancer = swrr.new(peers), app = { id = "/app" } }
end


describe("in-flight counts", function()
    before_each(function()
        clear(inflight.counts)
    end)

    it("counts per task id and removes an id when it reaches zero", function()
        local a, b = { id = "a" }, { id = "b" }
        inflight.enter(a)
        inflight.enter(a)
        inflight.enter(b)
        assert.are.same({ a = 2, b = 1 }, counts())
        inflight.leave(a)
        inflight.leave(b)
        assert.are.same({ a = 1 }, counts())
        inflight.leave(a)
        assert.are.same({}, counts())
    end)

    it("never goes below zero", function()
        local a = { id = "a" }
        inflight.leave(a)
        assert.are.same({}, counts())
        inflight.enter(a)
        assert.are.same({ a = 1 }, counts())
    end)

    it("sums peers of different compiled tables by their task id", function()
        inflight.enter({ id = "t1" })
        inflight.enter({ id = "t1" })
        assert.are.same({ t1 = 2 }, counts())
    end)
end)


describe("the plugin's balancer and log phases", function()
    before_each(function()
        clear(inflight.counts)
        clear(chosen)
    end)

    -- A new request, its version chosen by the access phase; returns its key.
    local last_address = 0
    local state = plugin.request_state
    local function request(version)
        last_address = last_address + 4096
        current_request = ffi.cast("void *", last_address)
        state.version[last_address] = version
        return last_address
    end
    local function peer_of(key)
        return state.peer[key]
    end

    it("counts a request on its peer until the log phase, once", function()
        local version = version_of("a", "b")
        local key = request(version)
        plugin.balance()
        local id = peer_of(key).id
        assert.are.same({ [id] = 1 }, counts())
        plugin.log()
        assert.are.same({}, counts())
        plugin.log()
        assert.are.same({}, counts())
        -- Nothing is left behind for the next request at this address.
        assert.is_nil(state.version[key])
        assert.is_nil(state.peer[key])
    end)

    it("moves the count to the new peer on each retry", function()
        local version = version_of("a", "b", "c")
        local key = request(version)
        plugin.balance()
        local first = peer_of(key).id
        plugin.balance()
        local second = peer_of(key).id
        assert.are_not.equal(first, second)
        assert.are.same({ [second] = 1 }, counts())
        plugin.balance()
        local third = peer_of(key).id
        assert.are.same({ [third] = 1 }, counts())
        assert.are.equal(3, #chosen)
        plugin.log()
        assert.are.same({}, counts())
        assert.is_nil(state.tried[key])
    end)

    it("keeps other requests' counts when one request retries", function()
        local version = version_of("a", "b")
        local first = request(version)
        local first_request = current_request
        plugin.balance()
        local second = request(version)
        local second_request = current_request
        plugin.balance()
        assert.are.same({ a = 1, b = 1 }, counts())
        -- The first request's peer fails: it moves to the other peer.
        current_request = first_request
        plugin.balance()
        assert.are.same({ [peer_of(second).id] = 2 }, counts())
        assert.are.equal(peer_of(first), peer_of(second))
        plugin.log()
        current_request = second_request
        plugin.log()
        assert.are.same({}, counts())
    end)

    it("counts nothing for a request that never reached the balancer", function()
        request(nil)
        plugin.log()
        assert.are.same({}, counts())
    end)
end)


describe("in-flight reports", function()
    before_each(function()
        clear(inflight.counts)
        clear(dict.data)
    end)

    it("round-trips counts, seq, version and time, whatever the names hold", function()
        local raw = inflight.encode(12, "v 12\nx", 1700000000123, { ["a b"] = 3, ["new\nline"] = 1, t = 2 })
        assert.are.same({
            seq = 12,
            version = "v 12\nx",
            at = 1700000000123,
            backends = { ["a b"] = 3, ["new\nline"] = 1, t = 2 },
        }, inflight.decode(raw))
    end)

    it("reports no seq or version before the first table", function()
        assert.are.same({ at = 5, backends = {} }, inflight.decode(inflight.encode(nil, nil, 5, {})))
    end)

    it("refuses what is not a report", function()
        assert.is_nil(inflight.decode(nil))
        assert.is_nil(inflight.decode("garbage"))
    end)

    it("writes at init_worker, then only when counts or the compiled table change", function()
        inflight.init_worker()
        local tick = timers[#timers]
        assert.are.equal(0.05, tick.interval)
        local first = dict.data["inflight:0"]
        assert.are.same({ seq = 7, version = "v7", at = 1700000000123, backends = {} }, inflight.decode(first))

        clock = clock + 1
        tick.fn(false)
        assert.are.equal(first, dict.data["inflight:0"])

        inflight.enter({ id = "task-1" })
        tick.fn(false)
        assert.are.same({ seq = 7, version = "v7", at = 1700000001123, backends = { ["task-1"] = 1 } }, inflight.decode(dict.data["inflight:0"]))

        clock = clock + 1
        table_state.seq, table_state.version = 8, "v8"
        tick.fn(false)
        assert.are.same({ seq = 8, version = "v8", at = 1700000002123, backends = { ["task-1"] = 1 } }, inflight.decode(dict.data["inflight:0"]))

        inflight.leave({ id = "task-1" })
        tick.fn(true)
        assert.are.same({ ["task-1"] = 1 }, inflight.decode(dict.data["inflight:0"]).backends)
        tick.fn(false)
        assert.are.same({}, inflight.decode(dict.data["inflight:0"]).backends)
    end)
end)


describe("the admin view", function()
    before_each(function()
        clear(dict.data)
    end)

    local function report(worker, seq, version, backends)
        dict.data["inflight:" .. worker] = inflight.encode(seq, version, 1000 + worker, backends)
    end

    local function view(seq, version, only)
        local raw = inflight.render(dict, 2, seq, version, only)
        return cjson.decode(raw), raw
    end

    it("sums every worker and is settled when all are on the current table", function()
        report(0, 3, "v3", { a = 2, b = 1 })
        report(1, 3, "v3", { a = 1 })
        local answer = view(3, "v3")
        assert.are.same({
            version = "v3",
            seq = 3,
            workers = 2,
            reports = {
                { worker = 0, seq = 3, version = "v3", at = 1000, backends = { a = 2, b = 1 } },
                { worker = 1, seq = 3, version = "v3", at = 1001, backends = { a = 1 } },
            },
            backends = { a = 3, b = 1 },
            settled = true,
        }, answer)
    end)

    it("is not settled while a worker has not reported", function()
        report(0, 3, "v3", {})
        assert.is_false(view(3, "v3").settled)
    end)

    it("is not settled while a worker routes with an older table", function()
        report(0, 3, "v3", {})
        report(1, 2, "v2", {})
        assert.is_false(view(3, "v3").settled)
    end)

    it("is not settled by a worker holding the new version with the old table", function()
        report(0, 3, "v3", {})
        report(1, 2, "v3", {})
        assert.is_false(view(3, "v3").settled)
    end)

    it("is settled before any table, when no worker has one either", function()
        report(0, nil, nil, {})
        report(1, nil, nil, {})
        local answer, raw = view(nil, nil)
        assert.is_true(answer.settled)
        assert.matches('"version":null', raw, 1, true)
    end)

    it("limits the backends to the tasks asked for", function()
        report(0, 3, "v3", { a = 2, b = 1 })
        report(1, 3, "v3", { a = 1, c = 4 })
        local answer = view(3, "v3", { b = true, c = true, gone = true })
        assert.are.same({ b = 1, c = 4 }, answer.backends)
        assert.are.same({ b = 1 }, answer.reports[1].backends)
        assert.are.same({ c = 4 }, answer.reports[2].backends)
    end)

    it("encodes empty counts as objects and no reports as an array", function()
        report(0, 3, "v3", {})
        report(1, 3, "v3", {})
        local _, raw = view(3, "v3")
        assert.matches('"backends":{},"settled":true}', raw, 1, true)
        local _, empty = raw:gsub('"backends":{}', "")
        assert.are.equal(3, empty)
        clear(dict.data)
        _, raw = view(3, "v3")
        assert.matches('"reports":[]', raw, 1, true)
    end)
end)
