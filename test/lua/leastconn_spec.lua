package.path = "lua/?.lua;" .. package.path

-- The counters dict, counting its reads.
local data, reads = {}, 0
local counters = {
    get = function(_, key)
        reads = reads + 1
        return data[key]
    end,
    incr = function(_, key, by, init)
        data[key] = (data[key] or init) + by
        return data[key]
    end,
}
_G.ngx = {
    shared = { edgeroute_counters = counters },
    now = function() return 1700000000.5 end,
    worker = { pid = function() return 4242 end },
}
package.loaded["edgeroute.config"] = { counters_dict_name = "edgeroute_counters" }

local leastconn = require "edgeroute.leastconn"

local function peers_of(n, weight)
    local peers = {}
    for i = 1, n do
        peers[i] = { id = "t" .. i, weight = weight or 1 }
    end
    return peers
end

local function in_flight(peer, n)
    data[peer.lc_key] = n
end

describe("least connections", function()
    before_each(function()
        for k in pairs(data) do
            data[k] = nil
        end
        reads = 0
        leastconn.init_worker()
    end)

    it("compares every task of a small app, for its weight", function()
        local peers = peers_of(4)
        local balancer = leastconn.new(peers)
        in_flight(peers[1], 3)
        in_flight(peers[2], 1)
        in_flight(peers[3], 2)
        in_flight(peers[4], 5)
        for _ = 1, 10 do
            assert.equal("t2", balancer:pick(nil).id)
        end
        -- Weight counts: 5 in flight at weight 10 beats 1 at weight 1.
        peers[4].weight = 10
        assert.equal("t4", balancer:pick(nil).id)
    end)

    it("shares idle tasks of a small app in turn", function()
        local balancer = leastconn.new(peers_of(3))
        local seen = {}
        for _ = 1, 3 do
            seen[balancer:pick(nil).id] = true
        end
        assert.same({ t1 = true, t2 = true, t3 = true }, seen)
    end)

    it("compares two tasks at random in a large app: two reads, never the busier of the two", function()
        local peers = peers_of(100)
        local balancer = leastconn.new(peers)
        in_flight(peers[7], 50)
        local chosen = {}
        for _ = 1, 2000 do
            reads = 0
            local peer = balancer:pick(nil)
            assert.equal(2, reads)
            chosen[peer.id] = (chosen[peer.id] or 0) + 1
        end
        -- The busy task loses every comparison it is in; the others share the rest.
        assert.is_nil(chosen.t7)
        local spread = 0
        for _ in pairs(chosen) do
            spread = spread + 1
        end
        assert.is_true(spread >= 90, "chosen among " .. spread .. " tasks")
        -- Among two idle tasks and a busy one, the idle ones win: the busiest of
        -- any pair is never picked, so the least busy is picked most.
        in_flight(peers[7], 0)
        for i = 1, 100 do
            in_flight(peers[i], i == 1 and 0 or 10)
        end
        local first = 0
        for _ = 1, 2000 do
            if balancer:pick(nil).id == "t1" then
                first = first + 1
            end
        end
        -- t1 wins every pair it is in: about 2 in 100.
        assert.is_true(first > 20, "t1 chosen " .. first .. " times")
    end)

    it("skips tasks that failed this request, comparing all, and falls back to one of them", function()
        for _, n in ipairs({ 3, 20 }) do
            local peers = peers_of(n)
            local balancer = leastconn.new(peers)
            local tried = {}
            for i = 1, n - 1 do
                tried[peers[i]] = true
            end
            in_flight(peers[n], 9)
            assert.equal("t" .. n, balancer:pick(tried).id)
            tried[peers[n]] = true
            assert.is_true(tried[balancer:pick(tried)])
        end
    end)
end)
