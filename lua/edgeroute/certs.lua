-- Certificates by SNI. The agent pushes the whole set of certificates of its
-- --certs folder; ssl_certificate_by_lua serves the one named by the client's
-- SNI (exact name, then the wildcard of its parent), and otherwise does
-- nothing, so that the server's static ssl_certificate serves.
--
-- Shared-dict keys (dict `edgeroute`, next to the routing table):
--   certs:set      JSON {"version":..,"certs":[{"id","names","cert_pem","key_pem","v"}]}
--   certs:seq      bumped after every change of certs:set; workers compare it
--   certs:counter  the last certificate version given out
--   certs:lock     held while a set is written
--
-- `v` is a certificate's version: it changes only when its PEM changes, and
-- comes from certs:counter, which only grows, so a certificate deleted and
-- added again never reuses a version that a worker still caches. Each worker
-- parses a certificate once per version (parsing PEM at every handshake costs
-- about a millisecond of CPU with OpenSSL 3).
--
-- Private keys stay in the shared dict and the workers' caches: nothing here
-- logs or returns them.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"

local ngx = ngx
local ngx_log = ngx.log
local WARN = ngx.WARN
local ERR = ngx.ERR
local NOTICE = ngx.NOTICE
local type = type
local ipairs = ipairs
local lower = string.lower
local find = string.find
local sub = string.sub
local byte = string.byte
local io_open = io.open
local json_encode = cjson.encode
local json_decode = cjson.decode

local _M = { _VERSION = "0.1.0" }

local KEY_SET = "certs:set"
local KEY_SEQ = "certs:seq"
local KEY_COUNTER = "certs:counter"
local KEY_LOCK = "certs:lock"
local LOCK_SECONDS = 10
local MAX_CERTS = 10000
local MAX_NAME_BYTES = 253

-- ngx.ssl exists only where nginx was built with TLS; loaded on first use so
-- that the admin handlers work without it.
local ssl

-- This worker's view: the set it decoded last, and the certificates it parsed.
local worker_seq = false
local by_name = {}
-- version -> { cert = cdata, key = cdata }, or false when parsing failed
-- (logged once per version, not per handshake).
local parsed = {}


local function dict()
    return ngx.shared[config.dict_name]
end


local function is_string_list(value)
    if type(value) ~= "table" then
        return false
    end
    for _, item in ipairs(value) do
        if type(item) ~= "string" or #item == 0 or #item > MAX_NAME_BYTES then
            return false
        end
    end
    return true
end


-- Checks a pushed set. Returns the decoded set, or nil and why (never
-- quoting the body: it holds private keys).
local function validate(raw)
    if type(raw) ~= "string" or raw == "" then
        return nil, "empty body"
    end
    local set = json_decode(raw)
    if type(set) ~= "table" then
        return nil, "the body is not a JSON object"
    end
    if type(set.version) ~= "string" or set.version == "" then
        return nil, "version must be a non-empty string"
    end
    if type(set.certs) ~= "table" then
        return nil, "certs must be a list"
    end
    if #set.certs > MAX_CERTS then
        return nil, "more than " .. MAX_CERTS .. " certificates"
    end
    local ids = {}
    for i, cert in ipairs(set.certs) do
        local where = "certs[" .. (i - 1) .. "]"
        if type(cert) ~= "table" or type(cert.id) ~= "string" or cert.id == "" then
            return nil, where .. ".id must be a non-empty string"
        end
        if ids[cert.id] then
            return nil, where .. ".id repeats another certificate's id"
        end
        ids[cert.id] = true
        if not is_string_list(cert.names) then
            return nil, where .. ".names must be a list of host names"
        end
        if type(cert.cert_pem) ~= "string" or type(cert.key_pem) ~= "string" then
            return nil, where .. " needs cert_pem and key_pem"
        end
    end
    return set
end


-- Versions of the stored set, by id and PEM, so that an unchanged
-- certificate keeps its version (and every worker its parsed copy).
local function stored_versions(shared)
    local versions = {}
    local stored = json_decode(shared:get(KEY_SET) or "null")
    if type(stored) == "table" and type(stored.certs) == "table" then
        for _, cert in ipairs(stored.certs) do
            versions[cert.id] = cert
        end
    end
    return versions
end


-- Replaces the whole set with the JSON `raw`.
-- Returns the number of certificates, or nil, http status, message.
function _M.replace(raw)
    local set, err = validate(raw)
    if not set then
        return nil, 400, err
    end
    local shared = dict()
    if not shared:add(KEY_LOCK, true, LOCK_SECONDS) then
        return nil, 409, "another certificate push is in progress"
    end
    local old = stored_versions(shared)
    local stored = { version = set.version, certs = {} }
    for i, cert in ipairs(set.certs) do
        local before = old[cert.id]
        local version
        if before and before.cert_pem == cert.cert_pem and before.key_pem == cert.key_pem then
            version = before.v
        else
            version, err = shared:incr(KEY_COUNTER, 1, 0)
            if not version then
                shared:delete(KEY_LOCK)
                return nil, 507, "shared dict " .. config.dict_name .. ": " .. err
            end
        end
        stored.certs[i] = { id = cert.id, names = cert.names, cert_pem = cert.cert_pem, key_pem = cert.key_pem, v = version }
    end
    -- The set first, its seq last: a worker sees a set whole or not at all.
    local ok
    ok, err = shared:safe_set(KEY_SET, json_encode(stored))
    if ok then
        ok, err = shared:incr(KEY_SEQ, 1, 0)
    end
    shared:delete(KEY_LOCK)
    if not ok then
        -- safe_set failing has freed the old set: say so rather than serve half.
        shared:incr(KEY_SEQ, 1, 0)
        return nil, 507, "shared dict " .. config.dict_name .. ": " .. err
    end
    return #stored.certs
end


-- What the agent compares with its own set: no names, no key material.
function _M.status()
    local stored = json_decode(dict():get(KEY_SET) or "null")
    if type(stored) ~= "table" then
        return { version = cjson.null, certificates = 0 }
    end
    return { version = stored.version, certificates = #stored.certs }
end


-- The agent's last set, written next to the routing snapshot; loaded by the
-- master in init_by_lua (it can read a 0600 file the workers cannot), so a
-- restarted nginx serves its certificates before the agent pushes again.
function _M.load_snapshot(path)
    local file = io_open(path, "rb")
    if not file then
        return
    end
    local raw = file:read("*a")
    file:close()
    local count, _, err = _M.replace(raw)
    if not count then
        ngx_log(WARN, "edgeroute: ignoring certificate snapshot ", path, ": ", err)
        return
    end
    ngx_log(NOTICE, "edgeroute: loaded ", count, " certificates from ", path)
end


local function refresh(shared)
    local seq = shared:get(KEY_SEQ)
    if seq == worker_seq then
        return
    end
    worker_seq = seq
    local names, kept = {}, {}
    local stored = json_decode(shared:get(KEY_SET) or "null")
    if type(stored) == "table" then
        for _, cert in ipairs(stored.certs) do
            for _, name in ipairs(cert.names) do
                names[name] = cert
            end
            kept[cert.v] = parsed[cert.v]
        end
    end
    by_name = names
    -- Versions no longer in the set are dropped, and with them their cdata.
    parsed = kept
end


-- Exact name first, then the wildcard of the parent name: as in TLS, `*.b.c`
-- covers `a.b.c` but neither `b.c` nor `x.a.b.c`, so it is the only wildcard
-- (and so the longest) that can cover a name.
local function lookup(name)
    local cert = by_name[name]
    if cert then
        return cert
    end
    local dot = find(name, ".", 1, true)
    if dot and dot > 1 and dot < #name then
        return by_name["*" .. sub(name, dot)]
    end
    return nil
end


local function parse(cert)
    local entry = parsed[cert.v]
    if entry ~= nil then
        return entry
    end
    local chain, err = ssl.parse_pem_cert(cert.cert_pem)
    local key
    if chain then
        key, err = ssl.parse_pem_priv_key(cert.key_pem)
    end
    if chain and key then
        entry = { cert = chain, key = key }
    else
        -- err is OpenSSL's reason, never the PEM itself.
        ngx_log(ERR, "edgeroute: cannot parse certificate ", cert.id, ": ", err)
        entry = false
    end
    parsed[cert.v] = entry
    return entry
end


-- ssl_certificate_by_lua: serves the pushed certificate for the SNI name.
-- Resumed sessions skip this phase; routing is by Host, never by SNI.
function _M.serve()
    if not ssl then
        ssl = require "ngx.ssl"
    end
    local name = ssl.server_name()
    if not name or name == "" then
        return
    end
    refresh(dict())
    name = lower(name)
    if byte(name, -1) == 46 then -- a trailing "."
        name = sub(name, 1, -2)
    end
    local cert = lookup(name)
    if not cert then
        return
    end
    local entry = parse(cert)
    if not entry then
        return
    end
    local ok, err = ssl.clear_certs()
    if ok then
        ok, err = ssl.set_cert(entry.cert)
    end
    if ok then
        ok, err = ssl.set_priv_key(entry.key)
    end
    if not ok then
        ngx_log(ERR, "edgeroute: cannot serve certificate ", cert.id, " for ", name, ": ", err)
        return ngx.exit(ngx.ERROR)
    end
end


return _M
