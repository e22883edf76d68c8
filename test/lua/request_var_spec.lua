package.path = "lua/?.lua;" .. package.path

-- Outside nginx the direct path is off (no ngx_http_get_variable to call),
-- so these check the fallback and the hash; the nginx integration tests
-- read every variable of the request path through the direct one.
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
    it("hashes a name as nginx's ngx_hash_key does, wrapping at 64 bits", function()
        -- Reference values from nginx's formula (key * 31 + byte) in C's uintptr_t.
        assert.equal("3208616ULL", tostring(request_var.hash_of("host")))
        assert.equal("16459058014531051089ULL", tostring(request_var.hash_of("edgeroute_connection")))
        assert.equal("16522250650512539214ULL", tostring(request_var.hash_of("cookie_session_id_long_name")))
        assert.equal("11175459071528038422ULL", tostring(request_var.hash_of("http_x_canary")))
    end)

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
