package.path = "lua/?.lua;" .. package.path

-- The sentinel resolver's choices: which sentinel is asked, in what order,
-- what a reply means, and when the address is asked again. Real sentinels
-- and a real failover are in test/integration/redis-sentinel.test.ts.
local clock = 1000
local logged = {}
_G.ngx = {
    now = function()
        return clock
    end,
    log = function(_, ...)
        logged[#logged + 1] = table.concat({ ... })
    end,
    WARN = 5,
    NOTICE = 6,
}

local sentinel = require "edgeroute.redis_sentinel"

local settings = {
    master_name = "edge",
    sentinels = { { host = "10.0.0.1", port = 26379 }, { host = "10.0.0.2", port = 26379 }, { host = "10.0.0.3", port = 26379 } },
}

local function asker(answers)
    local asked = {}
    return function(s)
        asked[#asked + 1] = s.host
        local answer = answers[s.host]
        if answer == nil then
            return nil, "connection refused"
        end
        return answer
    end, asked
end

describe("redis sentinel", function()
    before_each(function()
        sentinel.forget()
        clock = clock + 100
    end)

    it("reads a master address reply", function()
        assert.same({ "10.0.0.9", 6379 }, { sentinel.parse_reply({ "10.0.0.9", "6379" }) })
        assert.same({ nil, nil, "does not know the master" }, { sentinel.parse_reply(nil) })
        assert.same({ nil, nil, "gave no port for the master" }, { sentinel.parse_reply({ "10.0.0.9", "x" }) })
    end)

    it("asks each sentinel in turn until one names the master, and starts from it next time", function()
        local ask, asked = asker({ ["10.0.0.3"] = { "10.0.0.9", "6379" } })
        assert.same({ "10.0.0.9", 6379 }, { sentinel.resolve(settings, ask) })
        assert.same({ "10.0.0.1", "10.0.0.2", "10.0.0.3" }, asked)
        local ask2, asked2 = asker({ ["10.0.0.3"] = { "10.0.0.9", "6379" } })
        sentinel.resolve(settings, ask2)
        assert.same({ "10.0.0.3" }, asked2)
    end)

    it("names every sentinel's answer when none knows the master", function()
        local ask = asker({ ["10.0.0.2"] = { "10.0.0.9", "nope" } })
        local host, _, err = sentinel.resolve(settings, ask)
        assert.is_nil(host)
        assert.matches("no sentinel named the master edge", err, 1, true)
        assert.matches("10.0.0.1:26379: connection refused", err, 1, true)
        assert.matches("10.0.0.2:26379: gave no port for the master", err, 1, true)
    end)

    it("keeps the address a while, asks again after forget() or when it is old, and logs a change once", function()
        logged = {}
        local ask, asked = asker({ ["10.0.0.1"] = { "10.0.0.9", "6379" }, ["10.0.0.2"] = { "10.0.0.9", "6379" }, ["10.0.0.3"] = { "10.0.0.9", "6379" } })
        sentinel.master(settings, ask)
        sentinel.master(settings, ask)
        assert.equals(1, #asked)
        clock = clock + 6
        sentinel.master(settings, ask)
        assert.equals(2, #asked)
        local moved = asker({ ["10.0.0.1"] = { "10.0.0.8", "6380" }, ["10.0.0.2"] = { "10.0.0.8", "6380" }, ["10.0.0.3"] = { "10.0.0.8", "6380" } })
        sentinel.forget()
        assert.same({ "10.0.0.8", 6380 }, { sentinel.master(settings, moved) })
        sentinel.forget()
        sentinel.master(settings, moved)
        local changes = 0
        for _, line in ipairs(logged) do
            if line:find("(was 10.0.0.9:6379)", 1, true) then
                changes = changes + 1
            end
        end
        assert.equals(1, changes)
    end)

    it("keeps a stale address while no sentinel answers, and has none to give after forget()", function()
        local ask = asker({ ["10.0.0.1"] = { "10.0.0.9", "6379" } })
        sentinel.master(settings, ask)
        clock = clock + 6
        local silent = asker({})
        assert.same({ "10.0.0.9", 6379 }, { sentinel.master(settings, silent) })
        sentinel.forget()
        local host, _, err = sentinel.master(settings, silent)
        assert.is_nil(host)
        assert.matches("no sentinel named the master", err, 1, true)
    end)
end)
