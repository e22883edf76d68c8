-- Reads (and writes) nginx variables of the current request without
-- ngx.var's per-call work on the name.
--
-- ngx.var.NAME lower-cases and hashes NAME on every call (in C, into a
-- buffer), then asks nginx for the variable by name and hash. The name of
-- each variable the request path reads is known in advance (a literal, or a
-- policy's cookie or header), so its hash is computed once here and nginx's
-- own lookup, ngx_http_get_variable(), is called with it: 100 to 380 fewer
-- instructions a read, about 500 a write (BENCHMARKS.md, "Variables by a
-- known name"). The answer is the same: the same function of nginx finds
-- the same variable, indexed or by prefix (http_, cookie_, arg_), and a
-- value nginx marks not found reads as nil.
--
-- This calls nginx's C API, not lua-nginx-module's: the function, its
-- ngx_str_t and the layout of ngx_variable_value_t have not changed since
-- nginx 0.7. An nginx that does not export the function (built without
-- dynamic modules), or a big-endian machine, goes through ngx.var; the
-- admin status says which (`variable_reads`).

local ffi = require "ffi"
local bit = require "bit"
local base = require "resty.core.base"

local ngx = ngx
local ngx_var = ngx.var
local C = ffi.C
local ffi_new = ffi.new
local ffi_str = ffi.string
local band = bit.band
local bor = bit.bor
local byte = string.byte
local lower = string.lower
local pcall = pcall
local get_request = base.get_request

local _M = { _VERSION = "0.1.0" }

ffi.cdef [[
typedef struct {
    size_t               len;
    const unsigned char *data;
} edgeroute_ngx_str_t;

typedef struct {
    uint32_t             bits;   /* len:28 valid:1 no_cacheable:1 not_found:1 escape:1 */
    const unsigned char *data;
} edgeroute_ngx_variable_value_t;

edgeroute_ngx_variable_value_t *ngx_http_get_variable(void *r,
    const edgeroute_ngx_str_t *name, uintptr_t key);
]]

local LEN_MASK = 0x0fffffff
local NOT_FOUND = 0x40000000

local function exported()
    return C.ngx_http_get_variable
end

-- Whether reads go to nginx directly (false: through ngx.var).
_M.direct = ffi.abi("le") and pcall(exported) or false
local get_variable = _M.direct and C.ngx_http_get_variable

-- Names get a spec each, once, up to this many; past it (a fleet whose
-- policies named thousands of cookies over a worker's life) a new name is
-- read through ngx.var rather than kept forever.
local MAX_NAMES = 512

local specs = {}       -- name as asked → its spec
local name_count = 0

-- nginx's ngx_hash_key of a lower-case name: key * 31 + byte, in
-- ngx_uint_t (uintptr_t) arithmetic.
local function hash_of(name)
    local key = ffi_new("uint64_t", 0)
    for i = 1, #name do
        key = key * 31 + byte(name, i)
    end
    return ffi_new("uintptr_t", key)
end

-- The spec of `name`: an ngx_str_t of its lower-case form (which the spec
-- keeps alive: the ngx_str_t points into it), and its hash.
local function spec_of(name)
    local spec = specs[name]
    if spec == nil and name_count < MAX_NAMES then
        local low = lower(name)
        spec = { str = ffi_new("edgeroute_ngx_str_t", #low, low), key = hash_of(low), low = low }
        specs[name] = spec
        name_count = name_count + 1
    end
    return spec
end

local function read(spec)
    local value = get_variable(get_request(), spec.str, spec.key)
    if value == nil then
        return nil
    end
    local bits = value.bits
    if band(bits, NOT_FOUND) ~= 0 then
        return nil
    end
    return (ffi_str(value.data, band(bits, LEN_MASK)))
end


-- The variable `name` of the current request, as ngx.var[name] gives it.
function _M.get(name)
    if get_variable then
        local spec = specs[name] or spec_of(name)
        if spec ~= nil then
            return read(spec)
        end
    end
    return ngx_var[name]
end


-- A function that reads the variable `name` of the current request: for
-- the names the request path reads on every request.
function _M.reader(name)
    local spec = get_variable and spec_of(name)
    if not spec then
        return function()
            return ngx_var[name]
        end
    end
    return function()
        return read(spec)
    end
end


-- Values written directly point into C copies that are never freed: a
-- request may still read its value (proxy_set_header, add_header, the
-- access log) after the routing table that named it is gone. Up to this
-- many distinct values; past it, ngx.var copies each into the request.
local MAX_VALUES = 512
local copies = {}      -- value → its C copy
local copy_count = 0

local VALID = 0x10000000

local function copy_of(value)
    local copy = copies[value]
    if copy == nil and copy_count < MAX_VALUES then
        copy = ffi_new("unsigned char[?]", #value + 1, value)
        copies[value] = copy
        copy_count = copy_count + 1
    end
    return copy
end


-- A function that sets the variable `name` of the current request, which
-- nginx.conf declares with `set` (an indexed variable without a set
-- handler, as ngx.var writes it: the value valid and cacheable). For
-- values from a small set (version names).
function _M.writer(name)
    local spec = get_variable and spec_of(name)
    if not spec then
        return function(value)
            ngx_var[name] = value
        end
    end
    return function(value)
        local copy = copies[value] or copy_of(value)
        local slot = copy and get_variable(get_request(), spec.str, spec.key)
        if slot == nil then
            ngx_var[name] = value
            return
        end
        slot.data = copy
        slot.bits = bor(#value, VALID)
    end
end


-- For the specs.
_M.hash_of = hash_of

return _M
