-- edgeroute.basicAuth on nginx nodes (marathon-lb's HAPROXY_n_AUTH): the
-- access phase lets a request of such an app through only with Basic
-- credentials whose password matches the user's crypt(3) hash, checked by
-- libcrypt's crypt_r through LuaJIT's FFI, as HAProxy's userlists (and so
-- marathon-lb) check it. Anything else gets 401 with the app's realm.
--
-- A crypt costs milliseconds (SHA-512, 5,000 rounds: about 1.2 ms here) and
-- holds the worker meanwhile, so each worker remembers the Authorization
-- values it checked, right and wrong, in two bounded LRU caches: a known
-- value costs an HMAC and a cache lookup. The caches are keyed by an HMAC of
-- the app's setting and the value under a random per-worker key, so no raw
-- credential is kept and one app's password opens no other app; a changed
-- setting (a new hash, a user removed) is checked afresh.

local ffi = require "ffi"
local lrucache = require "resty.lrucache"
local credentials = require "edgeroute.basic_credentials"
local secure_compare = require "edgeroute.secure_compare"

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ERR = ngx.ERR
local hmac_sha1 = ngx.hmac_sha1
local decode_base64 = ngx.decode_base64
local ffi_string = ffi.string
local io_open = io.open
local tostring = tostring
local ipairs = ipairs
local pcall = pcall

local _M = { _VERSION = "0.1.0" }

-- Authorization values remembered per worker: valid ones (a few per user
-- and client kind), and wrong ones apart, so that a flood of wrong guesses
-- never evicts a valid credential.
local GOOD_ENTRIES = 4096
local BAD_ENTRIES = 1024
-- sizeof(struct crypt_data): 32,768 bytes in libxcrypt (Debian 11 on),
-- 131,232 in glibc's former libcrypt; the larger fits both.
local CRYPT_DATA_BYTES = 131232

pcall(ffi.cdef, "char *crypt_r(const char *phrase, const char *setting, void *data);")

-- Per worker, made on first use: nil until then, libcrypt false when it
-- cannot be loaded.
local good, bad, key, libcrypt, crypt_data


local function random_key()
    local file = io_open("/dev/urandom", "rb")
    if file then
        local bytes = file:read(32)
        file:close()
        if bytes and #bytes == 32 then
            return bytes
        end
    end
    return tostring(ngx.now()) .. ngx.worker.pid() .. tostring({})
end


local function load_libcrypt()
    -- libcrypt.so.1 is the runtime library's name (libcrypt.so comes with -dev packages only).
    for _, name in ipairs({ "libcrypt.so.1", "crypt" }) do
        local ok, lib = pcall(ffi.load, name)
        if ok then
            return lib
        end
    end
    ngx_log(ERR, "edgeroute: cannot load libcrypt (libcrypt.so.1): apps with edgeroute.basicAuth answer 500 on this node")
    return false
end


-- crypt_r's answer for a wrong setting is a failure token ("*0"), which
-- never equals a hash.
local function crypt_matches(password, hash)
    local out = libcrypt.crypt_r(password, hash, crypt_data)
    return out ~= nil and secure_compare.equals(ffi_string(out), hash)
end


local function init()
    good = lrucache.new(GOOD_ENTRIES)
    bad = lrucache.new(BAD_ENTRIES)
    key = random_key()
end


-- true, false, or nil when this node cannot check passwords.
local function verify(auth, value)
    local user, password = credentials.parse(value, decode_base64)
    if user == nil then
        return false
    end
    if libcrypt == nil then
        libcrypt = load_libcrypt()
        if libcrypt then
            crypt_data = ffi.new("char[?]", CRYPT_DATA_BYTES)
        end
    end
    if not libcrypt then
        return nil
    end
    return credentials.check(auth, user, password, crypt_matches)
end


-- The setting as the access phase reads it (from the pushed
-- settings.basicAuth: realm, users).
function _M.compile(setting)
    local auth = credentials.compile(setting.realm, setting.users)
    -- Hashed into the cache key on every request: 20 bytes rather than the whole setting.
    auth.fingerprint = ngx.sha1_bin(auth.fingerprint)
    return auth
end


-- Answers 401 (or 500 when libcrypt is missing) and returns true, unless the
-- request carries credentials `auth` accepts.
function _M.deny(auth)
    local value = ngx_var.http_authorization
    if value ~= nil then
        if good == nil then
            init()
        end
        local cache_key = hmac_sha1(key, auth.fingerprint .. "\0" .. value)
        if good:get(cache_key) then
            return false
        end
        if not bad:get(cache_key) then
            local ok = verify(auth, value)
            if ok then
                good:set(cache_key, true)
                return false
            end
            if ok == nil then
                ngx.status = 500
                ngx.header["Content-Type"] = "text/plain"
                ngx.say("edgeroute: this node cannot check passwords")
                ngx.exit(500)
                return true
            end
            bad:set(cache_key, true)
        end
    end
    ngx.status = 401
    ngx.header["WWW-Authenticate"] = auth.challenge
    ngx.header["Content-Type"] = "text/plain"
    ngx.say("edgeroute: this app needs a user name and password")
    ngx.exit(401)
    return true
end


return _M
