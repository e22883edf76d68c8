-- The shared-dict layout of the routing table, and its only writer.
--
--   table:version   the agent's version stamp of the whole table
--   table:seq       bumped by every push; workers compare it
--   table:ids       JSON array of every app id (rewritten when the set changes)
--   route:<id>      JSON of one app route, as the agent sent it
--   hash:<id>       that route's hash, to compare without decoding
--   log:<seq>       JSON {"full":bool,"changed":[ids],"removed":[ids]} of push
--                   <seq>, so workers apply only what changed
--   generation      changes whenever nginx (re)starts, so the agent can tell
--
-- Data is written first and table:seq last: a worker sees a push whole or
-- not at all. A worker that reads a route a later push already replaced
-- gets newer data early, which the later log entry confirms.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"

local ngx = ngx
local pairs = pairs
local next = next
local json_encode = cjson.encode
local json_decode = cjson.decode

local _M = { _VERSION = "0.1.0" }

local KEY_VERSION = "table:version"
local KEY_SEQ = "table:seq"
local KEY_IDS = "table:ids"
local KEY_GENERATION = "generation"
local KEY_PUSH_LOCK = "push:lock"
local PUSH_LOCK_SECONDS = 30
-- Workers poll every few milliseconds; a minute of log is plenty, and one
-- that fell further behind rebuilds from table:ids.
local LOG_SECONDS = 60

_M.KEY_VERSION = KEY_VERSION
_M.KEY_SEQ = KEY_SEQ
_M.KEY_IDS = KEY_IDS


local function dict()
    return ngx.shared[config.dict_name]
end


function _M.route_key(id)
    return "route:" .. id
end


function _M.hash_key(id)
    return "hash:" .. id
end


function _M.log_key(seq)
    return "log:" .. seq
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
        seq = shared:get(KEY_SEQ),
        generation = shared:get(KEY_GENERATION),
        free_bytes = shared.free_space and shared:free_space() or nil,
    }
end


local function current_ids()
    local raw = dict():get(KEY_IDS)
    return raw and json_decode(raw) or {}
end


local function fail(status, message)
    dict():delete(KEY_PUSH_LOCK)
    return nil, status, message
end


-- A push remembers every value it replaces, so that one the dict cannot hold
-- is undone whole and no worker ever compiles part of it (a worker that
-- rebuilds from table:ids reads every route). This matters because a failed
-- safe_set has already freed the key's old value.
local function new_journal()
    return { routes = {}, keys = {} }
end


local function remember_route(shared, journal, id)
    if journal.routes[id] == nil then
        local raw = shared:get(_M.route_key(id))
        journal.routes[id] = { raw = raw or false, hash = raw and shared:get(_M.hash_key(id)) }
    end
end


local function remember_key(shared, journal, key)
    if journal.keys[key] == nil then
        local value = shared:get(key)
        journal.keys[key] = value == nil and false or value
    end
end


-- Everything is deleted first, so the old values get back the room the new
-- ones took. A route that still does not fit is left out and the stored
-- version cleared: the agent's next delta is refused, and its full push
-- rewrites the table.
local function undo(shared, journal)
    for id in pairs(journal.routes) do
        shared:delete(_M.route_key(id))
        shared:delete(_M.hash_key(id))
    end
    for key in pairs(journal.keys) do
        shared:delete(key)
    end
    local whole = true
    for id, old in pairs(journal.routes) do
        if old.raw then
            local ok = shared:safe_set(_M.route_key(id), old.raw)
                       and shared:safe_set(_M.hash_key(id), old.hash)
            if not ok then
                shared:delete(_M.route_key(id))
                shared:delete(_M.hash_key(id))
                whole = false
            end
        end
    end
    for key, old in pairs(journal.keys) do
        if old and not shared:safe_set(key, old) then
            whole = false
        end
    end
    if not whole then
        shared:delete(KEY_VERSION)
        ngx.log(ngx.ERR, "edgeroute: shared dict ", config.dict_name,
                " could not take back a refused push whole; waiting for a full push")
    end
end


-- A worker may have read a route of the undone push early (see the top of
-- this file); a push of the restored routes brings every worker back to them.
local function announce_undo(shared, journal)
    local ids = {}
    for id in pairs(journal.routes) do
        ids[#ids + 1] = id
    end
    if #ids == 0 then
        return
    end
    local seq = (shared:get(KEY_SEQ) or 0) + 1
    if shared:safe_set(_M.log_key(seq), json_encode({ full = false, changed = ids }), LOG_SECONDS) then
        shared:safe_set(KEY_SEQ, seq)
    end
end


local function out_of_room(shared, journal, err)
    undo(shared, journal)
    announce_undo(shared, journal)
    return fail(507, "shared dict " .. config.dict_name .. ": " .. err)
end


-- Applies a validated push: `routes` maps id → { raw = line, hash = hash },
-- `removed` lists ids. `base` nil replaces the whole table; otherwise it must
-- equal the stored version, or the agent's view is stale. A route whose hash
-- is already stored is not rewritten.
-- Returns the new version and the number of apps changed, or nil, http status, message.
function _M.apply(version, base, routes, removed)
    local shared = dict()
    if not shared:add(KEY_PUSH_LOCK, true, PUSH_LOCK_SECONDS) then
        return nil, 409, "another push is in progress"
    end
    if base ~= nil and base ~= shared:get(KEY_VERSION) then
        return fail(409, "base version does not match the stored table")
    end

    local full = base == nil
    local ids_changed = full
    local changed, gone = {}, {}
    local journal = new_journal()
    for id, route in pairs(routes) do
        local stored_hash = shared:get(_M.hash_key(id))
        if stored_hash == nil then
            ids_changed = true
        end
        if stored_hash ~= route.hash then
            remember_route(shared, journal, id)
            local ok, err = shared:safe_set(_M.route_key(id), route.raw)
            if ok then
                ok, err = shared:safe_set(_M.hash_key(id), route.hash)
            end
            if not ok then
                return out_of_room(shared, journal, err)
            end
            changed[#changed + 1] = id
        end
    end

    local old_ids = (full or #removed > 0 or ids_changed) and current_ids() or nil
    local drop = {}
    for i = 1, #removed do
        drop[removed[i]] = true
        ids_changed = true
    end
    if full then
        for i = 1, #old_ids do
            if routes[old_ids[i]] == nil then
                drop[old_ids[i]] = true
            end
        end
    end
    for id in pairs(drop) do
        remember_route(shared, journal, id)
        shared:delete(_M.route_key(id))
        shared:delete(_M.hash_key(id))
        gone[#gone + 1] = id
    end

    if ids_changed then
        local ids, seen = {}, {}
        if not full then
            for i = 1, #old_ids do
                local id = old_ids[i]
                if not drop[id] then
                    ids[#ids + 1] = id
                    seen[id] = true
                end
            end
        end
        for id in pairs(routes) do
            if not seen[id] then
                ids[#ids + 1] = id
            end
        end
        remember_key(shared, journal, KEY_IDS)
        local ok, err = shared:safe_set(KEY_IDS, next(ids) == nil and "[]" or json_encode(ids))
        if not ok then
            return out_of_room(shared, journal, err)
        end
    end

    local seq = (shared:get(KEY_SEQ) or 0) + 1
    local entry = json_encode({ full = full, changed = next(changed) and changed or nil, removed = next(gone) and gone or nil })
    remember_key(shared, journal, _M.log_key(seq))
    remember_key(shared, journal, KEY_VERSION)
    remember_key(shared, journal, KEY_SEQ)
    local ok, err = shared:safe_set(_M.log_key(seq), entry, LOG_SECONDS)
    if ok then
        ok, err = shared:safe_set(KEY_VERSION, version)
    end
    if ok then
        ok, err = shared:safe_set(KEY_SEQ, seq)
    end
    if not ok then
        return out_of_room(shared, journal, err)
    end
    shared:delete(KEY_PUSH_LOCK)
    return version, #changed + #gone
end


return _M
