-- The shared-dict layout of split policies; worker 0's refresher writes it.
--
--   policy:<app>        raw JSON of the app's last good policy
--   policy_error:<app>  why the policy now in Redis was refused, if it was
--   regions             JSON of the CIDR→region table (flat HGETALL list)
--   regions_wanted      set while some policy has a region rule and no
--                       region variable is configured
--   policies:version    bumped after every change

local config = require "edgeroute.config"

local ngx = ngx

local _M = { _VERSION = "0.1.0" }

local KEY_VERSION = "policies:version"
local KEY_REGIONS = "regions"
local KEY_REGIONS_WANTED = "regions_wanted"


local function dict()
    return ngx.shared[config.dict_name]
end


function _M.set(app, raw)
    local ok, err = dict():safe_set("policy:" .. app, raw)
    if ok then
        dict():delete("policy_error:" .. app)
    end
    return ok, err
end


function _M.remove(app)
    dict():delete("policy:" .. app)
    dict():delete("policy_error:" .. app)
end


function _M.set_error(app, problem)
    dict():set("policy_error:" .. app, problem)
end


function _M.get(app)
    return dict():get("policy:" .. app)
end


function _M.get_error(app)
    return dict():get("policy_error:" .. app)
end


function _M.set_regions(raw)
    return dict():safe_set(KEY_REGIONS, raw)
end


function _M.get_regions()
    return dict():get(KEY_REGIONS)
end


function _M.want_regions(wanted)
    dict():set(KEY_REGIONS_WANTED, wanted)
end


function _M.regions_wanted()
    return dict():get(KEY_REGIONS_WANTED) == true
end


function _M.bump()
    return dict():incr(KEY_VERSION, 1, 0)
end


function _M.version()
    return dict():get(KEY_VERSION)
end


return _M
