-- The shared-dict layout of the routing table, and its only writer.
--
--   table:version   the agent's version stamp of the whole table
--   table:index     JSON { app id = app hash }
--   app:<hash>      JSON of one app route, content-addressed
--   generation      changes whenever nginx (re)starts, so the agent can tell
--
-- App entries are content-addressed so that a push becomes visible in one
-- step, when the version is written: a worker reading between the writes sees
-- the old index, whose entries still exist.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"

local ngx = ngx
local pairs = pairs
local next = next
local json_encode = cjson.encode
local json_decode = cjson.decode

local _M = { _VERSION = "0.1.0" }

local KEY_VERSION = "table:version"
local KEY_INDEX = "table:index"
local KEY_GENERATION = "generation"
local KEY_PUSH_LOCK = "push:lock"
local APP_PREFIX = "app:"
local PUSH_LOCK_SECONDS = 10

_M.KEY_VERSION = KEY_VERSION
_M.KEY_INDEX = KEY_INDEX
_M.APP_PREFIX = APP_PREFIX


local function dict()
    return ngx.shared[config.dict_name]
end


function _M.init_generation()
    ngx.update_time()
    local generation = ngx.now() * 1000 .. "-" .. ngx.worker.pid()
    dict():set(KEY_GENERATION, generation)
end


function _M.status()
    local shared = dict()
    return {
        version = shared:get(KEY_VERSION),
        generation = shared:get(KEY_GENERATION),
        free_bytes = shared.free_space and shared:free_space() or nil,
    }
end


function _M.current_index()
    local raw = dict():get(KEY_INDEX)
    if raw == nil then
        return {}
    end
    return json_decode(raw) or {}
end


-- Applies a validated push. `base` nil replaces the whole table; otherwise it
-- must equal the stored version, or the agent's view is stale.
-- Returns the new version, or nil, http status, message.
function _M.apply(version, base, apps)
    local shared = dict()
    local locked = shared:add(KEY_PUSH_LOCK, true, PUSH_LOCK_SECONDS)
    if not locked then
        return nil, 409, "another push is in progress"
    end

    local current = shared:get(KEY_VERSION)
    if base ~= nil and base ~= current then
        shared:delete(KEY_PUSH_LOCK)
        return nil, 409, "base version does not match the stored table"
    end

    local old_index = _M.current_index()
    local index = {}
    if base ~= nil then
        for id, hash in pairs(old_index) do
            index[id] = hash
        end
    end

    for id, app in pairs(apps) do
        if app == false then
            index[id] = nil
        else
            local ok, err = shared:safe_set(APP_PREFIX .. app.hash, json_encode(app))
            if not ok then
                shared:delete(KEY_PUSH_LOCK)
                return nil, 507, "shared dict " .. config.dict_name .. ": " .. err
            end
            index[id] = app.hash
        end
    end

    local raw_index = next(index) == nil and "{}" or json_encode(index)
    local ok, err = shared:safe_set(KEY_INDEX, raw_index)
    if ok then
        ok, err = shared:safe_set(KEY_VERSION, version)
    end
    if not ok then
        shared:delete(KEY_PUSH_LOCK)
        return nil, 507, "shared dict " .. config.dict_name .. ": " .. err
    end

    local live = {}
    for _, hash in pairs(index) do
        live[hash] = true
    end
    for _, hash in pairs(old_index) do
        if not live[hash] then
            shared:delete(APP_PREFIX .. hash)
        end
    end
    shared:delete(KEY_PUSH_LOCK)
    return version
end


return _M
