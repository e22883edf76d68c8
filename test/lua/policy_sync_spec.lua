package.path = "lua/?.lua;" .. package.path

-- Just enough of nginx and of the plugin's other modules for policy_sync:
-- the worker's policies, compiled from what policy_store holds for the
-- multi-version apps of the table.
local vars = { cookie_uid = "u1" }
_G.ngx = {
    var = setmetatable({}, { __index = function(_, name) return vars[name] end }),
    log = function() end,
    ERR = 4,
    re = { find = function() return nil end },
    worker = { id = function() return 1 end },
}
package.loaded["resty.core.base"] = { get_request = function() return nil end }
package.loaded["resty.lrucache"] = {
    new = function()
        return { get = function() end, set = function() end, flush_all = function() end }
    end,
}
package.loaded["edgeroute.config"] = { host_cache_size = 10 }
local table_state = { version = "t1", apps = {} }
package.loaded["edgeroute.table_sync"] = { state = table_state }
local stored, store_version = {}, 1
package.loaded["edgeroute.policy_store"] = {
    version = function() return store_version end,
    get = function(id) return stored[id] end,
    want_regions = function() end,
    get_regions = function() return nil end,
}

local policy_sync = require "edgeroute.policy_sync"

local POLICY = '{"rules":[{"version":"grey","match":{"cookie":{"name":"uid","values":["u1"]}}}]}'

local function with_apps(n)
    for id in pairs(table_state.apps) do
        table_state.apps[id] = nil
        stored[id] = nil
    end
    for i = 1, n do
        local id = "/g" .. i
        table_state.apps[id] = { id = id, version_count = 2, versions = { stable = { name = "stable" }, grey = { name = "grey" } } }
        stored[id] = POLICY
    end
    table_state.version = "t" .. n
    store_version = store_version + 1
    policy_sync.sync()
end

local function written_out()
    local written, walked = 0, 0
    for _, policy in pairs(policy_sync.policies) do
        if policy.compiled.run then
            written = written + 1
        else
            walked = walked + 1
        end
    end
    return written, walked
end

describe("policy_sync", function()
    it("writes policies out while a worker holds at most 32, and builds none past that", function()
        with_apps(32)
        assert.same({ 32, 0 }, { written_out() })
        assert.equal("grey", policy_sync.choose_version(table_state.apps["/g1"]).name)

        with_apps(33)
        assert.same({ 0, 33 }, { written_out() })
        assert.equal("grey", policy_sync.choose_version(table_state.apps["/g33"]).name)
        vars.cookie_uid = "u2"
        assert.equal("stable", policy_sync.choose_version(table_state.apps["/g33"]).name)
        vars.cookie_uid = "u1"

        -- Back under the limit: the walked ones are written out again.
        with_apps(3)
        assert.same({ 3, 0 }, { written_out() })
        assert.equal("grey", policy_sync.choose_version(table_state.apps["/g2"]).name)
    end)
end)
