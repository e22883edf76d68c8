package.path = "lua/?.lua;" .. package.path

-- Outside nginx the direct path is off (no ngx_http_get_variable to call),
-- so these check the fallback; the nginx integration tests read every
-- variable of the request path through the direct one (a wrong hash would
-- fail them: nothing would be found by name).
local vars = { host = "app.example", cookie_uid = "u-1" }
_G.ngx = {
    var = setmetatable({}, {
        __index = function(_, name) return vars[name] end,
        __newindex = function(_, name, value) vars[name] = value end,
    }),
}
package.loaded["resty.core.base"] = { get_request = function() return nil end }

local request_var = require "edgeroute.request_var"

describe("request_var", function()
    it("reads through ngx.var where nginx's function is not there", function()
        assert.is_false(request_var.direct)
        assert.equal("app.example", request_var.get("host"))
        assert.is_nil(request_var.get("cookie_other"))
        local read = request_var.reader("cookie_uid")
        assert.equal("u-1", read())
        vars.cookie_uid = "u-2"
        assert.equal("u-2", read())
        local write = request_var.writer("edgeroute_version")
        write("grey")
        assert.equal("grey", vars.edgeroute_version)
        -- Nothing resolved against nginx's structures: the status says so.
        assert.equal("ngx.var", request_var.mode())
        assert.is_nil(request_var.resolution("cookie_uid"))
    end)
end)
