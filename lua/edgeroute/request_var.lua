-- Reads (and writes) nginx variables of the current request without
-- ngx.var's per-call work on the name.
--
-- ngx.var.NAME lower-cases and hashes NAME on every call (in C, into a
-- buffer), then asks nginx for the variable by name and hash:
-- ngx_http_get_variable() looks the name up in nginx's hash of variables
-- and, for a name that is not there (a cookie, a header nginx does not name,
-- an argument), compares it with every prefix variable (http_, cookie_,
-- arg_ and the modules' own) to find the longest that fits. The name of
-- each variable the request path reads is known in advance (a literal, or a
-- policy's cookie or header), so all of that is done once per name here:
--
--   * an indexed variable (one nginx.conf uses: $host, $http_host, $uri,
--     the map and `set` variables) is read by its index, as nginx then does;
--   * another variable nginx knows by name ($http_user_agent when nginx.conf
--     does not use it) calls its handler, as nginx then does;
--   * a prefix variable ($cookie_uid, $http_x_canary, $arg_ab) calls the
--     prefix's handler at once, as nginx then does, with the full name;
--   * a name nginx does not know goes to ngx_http_get_variable() with its
--     hash (and reads as nil).
--
-- The answer is the same: the same handler of nginx computes the same value,
-- and a value nginx marks not found reads as nil. The first read of each
-- name in a worker is made both ways and compared; a name whose answers
-- differ is read by name from then on, with a warning in the log.
--
-- This calls nginx's C API, not lua-nginx-module's, and reads three of its
-- structures: the request's first fields, the core module's main
-- configuration (up to its prefix variables) and ngx_http_variable_t. Their
-- layout has not changed from nginx 1.9 to 1.31; it is checked once (the
-- request's signature, the sizes and the prefixes nginx always has), and an
-- nginx where it does not hold reads every name through
-- ngx_http_get_variable(). One that does not export it and ngx_hash_key (built
-- without dynamic modules), or a big-endian machine, goes through ngx.var.
-- The admin status says which (`variable_reads`).

local ffi = require "ffi"
local bit = require "bit"
local base = require "resty.core.base"

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local WARN = ngx.WARN
local C = ffi.C
local ffi_new = ffi.new
local ffi_str = ffi.string
local ffi_cast = ffi.cast
local ffi_sizeof = ffi.sizeof
local band = bit.band
local bor = bit.bor
local lower = string.lower
local sub = string.sub
local pcall = pcall
local tonumber = tonumber
local get_request = base.get_request

local _M = { _VERSION = "0.2.0" }

ffi.cdef [[
typedef struct {
    size_t               len;
    const unsigned char *data;
} edgeroute_ngx_str_t;

typedef struct {
    uint32_t             bits;   /* len:28 valid:1 no_cacheable:1 not_found:1 escape:1 */
    const unsigned char *data;
} edgeroute_ngx_variable_value_t;

/* ngx_int_t is returned in a full register; NGX_OK (0) and the errors
   (-1, -5) read the same from its low half, as a plain number. */
typedef int (*edgeroute_ngx_get_variable_pt)(void *r,
    edgeroute_ngx_variable_value_t *v, uintptr_t data);

typedef struct {
    edgeroute_ngx_str_t            name;
    void                          *set_handler;
    edgeroute_ngx_get_variable_pt  get_handler;
    uintptr_t                      data;
    uintptr_t                      flags;
    uintptr_t                      index;
} edgeroute_ngx_http_variable_t;

typedef struct {
    void                *elts;
    uintptr_t            nelts;
    size_t               size;
    uintptr_t            nalloc;
    void                *pool;
} edgeroute_ngx_array_t;

typedef struct {
    void               **buckets;
    uintptr_t            size;
} edgeroute_ngx_hash_t;

/* ngx_http_core_main_conf_t, up to the prefix variables. */
typedef struct {
    edgeroute_ngx_array_t  servers;
    void                  *phase_handlers;
    uintptr_t              server_rewrite_index;
    uintptr_t              location_rewrite_index;
    edgeroute_ngx_hash_t   headers_in_hash;
    edgeroute_ngx_hash_t   variables_hash;
    edgeroute_ngx_array_t  variables;
    edgeroute_ngx_array_t  prefix_variables;
} edgeroute_ngx_http_core_main_conf_t;

/* ngx_http_request_t's first fields. */
typedef struct {
    uint32_t             signature;
    void                *connection;
    void               **ctx;
    void               **main_conf;
} edgeroute_ngx_http_request_head_t;

/* ngx_module_t's first field. */
typedef struct {
    uintptr_t            ctx_index;
} edgeroute_ngx_module_head_t;

uintptr_t ngx_hash_key(const unsigned char *data, size_t len);
edgeroute_ngx_variable_value_t *ngx_http_get_variable(void *r,
    const edgeroute_ngx_str_t *name, uintptr_t key);
edgeroute_ngx_variable_value_t *ngx_http_get_flushed_variable(void *r,
    uintptr_t index);
void *ngx_hash_find(const edgeroute_ngx_hash_t *hash, uintptr_t key,
    const unsigned char *name, size_t len);
extern edgeroute_ngx_module_head_t ngx_http_core_module;
]]

local LEN_MASK = 0x0fffffff
local NOT_FOUND = 0x40000000
local VAR_CHANGEABLE = 1         -- NGX_HTTP_VAR_CHANGEABLE
local VAR_INDEXED = 4            -- NGX_HTTP_VAR_INDEXED
local HTTP_SIGNATURE = 0x50545448 -- "HTTP", every ngx_http_request_t's first field
local NGX_OK = 0

local function exported()
    return C.ngx_http_get_variable, C.ngx_hash_key
end

local function resolvable()
    return C.ngx_http_get_flushed_variable, C.ngx_hash_find, C.ngx_http_core_module.ctx_index
end

-- Whether reads go to nginx directly (false: through ngx.var).
_M.direct = ffi.abi("le") and pcall(exported) or false
local get_variable = _M.direct and C.ngx_http_get_variable
-- Whether nginx's structures may be as declared above: false once a request
-- showed they are not (main_conf stays nil until a request shows they are).
local layout_ok = _M.direct and pcall(resolvable) or false
local get_flushed = layout_ok and C.ngx_http_get_flushed_variable or nil
local main_conf = nil

local request_head_t = ffi.typeof("edgeroute_ngx_http_request_head_t *")
local main_conf_t = ffi.typeof("edgeroute_ngx_http_core_main_conf_t *")
local variable_t = ffi.typeof("edgeroute_ngx_http_variable_t *")
local VARIABLE_SIZE = ffi_sizeof("edgeroute_ngx_http_variable_t")
local uintptr_t = ffi.typeof("uintptr_t")

-- One value for every handler's answer, read into a Lua string at once.
local scratch = ffi_new("edgeroute_ngx_variable_value_t[1]")

-- Names get a spec each, once, up to this many; past it (a fleet whose
-- policies named thousands of cookies over a worker's life) a new name is
-- read through ngx.var rather than kept forever.
local MAX_NAMES = 512

local specs = {}       -- name as asked → its spec
local name_count = 0

-- How a spec is read, once resolved against the first request.
local BY_NAME, BY_INDEX, BY_HANDLER = 1, 2, 3

-- The spec of `name`: an ngx_str_t of its lower-case form (which the spec
-- keeps alive: the ngx_str_t points into it), and its hash by nginx's own
-- function, the one its hash of variables was built with.
local function spec_of(name)
    local spec = specs[name]
    if spec == nil and name_count < MAX_NAMES then
        local low = lower(name)
        local str = ffi_new("edgeroute_ngx_str_t[1]")
        str[0].len = #low
        str[0].data = low
        spec = { str = str, key = C.ngx_hash_key(low, #low), low = low, how = nil, index = nil, handler = nil, data = nil, slot_writable = false }
        specs[name] = spec
        name_count = name_count + 1
    end
    return spec
end


local function value_of(value)
    if value == nil then
        return nil
    end
    local bits = value.bits
    if band(bits, NOT_FOUND) ~= 0 then
        return nil
    end
    return (ffi_str(value.data, band(bits, LEN_MASK)))
end


local function text_of(str)
    return ffi_str(str.data, str.len)
end


-- The core module's main configuration, from a request: nil when what it
-- reads there is not what the declarations above say (then every name is
-- read by name).
local function core_main_conf(r)
    local head = ffi_cast(request_head_t, r)
    if head.signature ~= HTTP_SIGNATURE then
        return nil, "the request does not start with nginx's signature"
    end
    local index = tonumber(C.ngx_http_core_module.ctx_index)
    local conf = ffi_cast(main_conf_t, head.main_conf[index])
    if conf == nil then
        return nil, "no core main configuration"
    end
    local prefixes = conf.prefix_variables
    if prefixes.size ~= VARIABLE_SIZE or conf.variables.size ~= VARIABLE_SIZE
            or prefixes.nelts == 0 or prefixes.nelts > 256 then
        return nil, "the variable arrays are not of ngx_http_variable_t"
    end
    local seen = {}
    local list = ffi_cast(variable_t, prefixes.elts)
    for i = 0, tonumber(prefixes.nelts) - 1 do
        local len = tonumber(list[i].name.len)
        if len == 0 or len > 64 then
            return nil, "a prefix variable's name is not one"
        end
        seen[text_of(list[i].name)] = true
    end
    if not (seen.http_ and seen.cookie_ and seen.arg_) then
        return nil, "nginx's own prefix variables are not where expected"
    end
    return conf
end


-- Whether names can be resolved: nginx's structures checked on the first
-- request that asks (`r` nil outside a request: not yet).
local function layout_settled(r)
    if layout_ok and main_conf == nil and r ~= nil then
        local conf, err = core_main_conf(r)
        if conf == nil then
            layout_ok = false
            ngx_log(WARN, "edgeroute: nginx variables are read by name: ", err)
        else
            main_conf = conf
        end
    end
    return layout_ok and main_conf ~= nil
end


-- The prefix variable nginx would call for `low`: the longest prefix of it,
-- found as ngx_http_get_variable() finds it.
local function prefix_of(conf, low)
    local list = ffi_cast(variable_t, conf.prefix_variables.elts)
    local found, longest = nil, 0
    for i = 0, tonumber(conf.prefix_variables.nelts) - 1 do
        local len = tonumber(list[i].name.len)
        if #low >= len and #low > longest and sub(low, 1, len) == text_of(list[i].name) then
            found, longest = list[i], len
        end
    end
    return found
end


local function read_by_handler(r, spec)
    scratch[0].bits = 0
    if spec.handler(r, scratch, spec.data) ~= NGX_OK then
        return nil
    end
    return (value_of(scratch[0]))
end


-- How `spec` is read: by index or by its handler when nginx's structures are as
-- declared and the answer of this request agrees with nginx's own lookup;
-- by name otherwise.
local function resolve(r, spec)
    if r == nil then
        -- Outside a request: nothing to resolve against yet.
        return
    end
    spec.how = BY_NAME
    if not layout_settled(r) then
        return
    end
    local low = spec.low
    local found = C.ngx_hash_find(main_conf.variables_hash, spec.key, spec.str[0].data, #low)
    if found ~= nil then
        local variable = ffi_cast(variable_t, found)
        if text_of(variable.name) ~= low then
            return
        end
        local flags = tonumber(variable.flags)
        if band(flags, VAR_INDEXED) ~= 0 then
            spec.how, spec.index = BY_INDEX, tonumber(variable.index)
            -- A `set` variable: its value is the request's slot. One with a
            -- set handler ($args, $limit_rate) is written through it.
            spec.slot_writable = band(flags, VAR_CHANGEABLE) ~= 0 and variable.set_handler == nil
        elseif variable.get_handler ~= nil then
            spec.how, spec.handler, spec.data = BY_HANDLER, variable.get_handler, variable.data
        else
            return
        end
    else
        local prefix = prefix_of(main_conf, low)
        if prefix == nil then
            return
        end
        -- A prefix's handler takes the full name, as nginx gives it.
        spec.how, spec.handler, spec.data = BY_HANDLER, prefix.get_handler, ffi_cast(uintptr_t, spec.str)
    end
    local expected = value_of(get_variable(r, spec.str, spec.key))
    local got
    if spec.how == BY_INDEX then
        got = value_of(get_flushed(r, spec.index))
    else
        got = read_by_handler(r, spec)
    end
    if got ~= expected then
        ngx_log(WARN, "edgeroute: nginx variable \"", low, "\" read directly differs from its lookup by name; read by name")
        spec.how = BY_NAME
    end
end


-- Calls return in parentheses: LuaJIT counts tail calls towards its loop
-- unroll limit, and a trace that reaches it is not compiled.
local function read(spec)
    local r = get_request()
    local how = spec.how
    if how == nil then
        resolve(r, spec)
        how = spec.how
    end
    if how == BY_INDEX then
        return (value_of(get_flushed(r, spec.index)))
    elseif how == BY_HANDLER then
        return (read_by_handler(r, spec))
    end
    return (value_of(get_variable(r, spec.str, spec.key)))
end


-- The variable `name` of the current request, as ngx.var[name] gives it.
function _M.get(name)
    if get_variable then
        local spec = specs[name] or spec_of(name)
        if spec ~= nil then
            return (read(spec))
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
        return (read(spec))
    end
end


-- How this worker reads variables, for the admin status: "resolved" (by
-- index or prefix handler, each name looked up once), "by name" (nginx's
-- lookup with the hash computed once: its structures are not as expected)
-- or "ngx.var". Called in the admin request, which settles the first two.
function _M.mode()
    if not get_variable then
        return "ngx.var"
    end
    return layout_settled(get_request()) and "resolved" or "by name"
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


-- A function that sets the variable `name` of the current request. A
-- variable nginx.conf declares with `set` (indexed, changeable, without a
-- set handler) is written into the request's slot, as ngx.var writes it:
-- the value valid and cacheable. Any other name is written through ngx.var,
-- which calls its set handler or says why it cannot be set. For values
-- from a small set (version names).
function _M.writer(name)
    local spec = get_variable and spec_of(name)
    if not spec then
        return function(value)
            ngx_var[name] = value
        end
    end
    return function(value)
        local copy = copies[value] or copy_of(value)
        local slot
        if copy then
            local r = get_request()
            if spec.how == nil then
                resolve(r, spec)
            end
            if spec.how == BY_INDEX and spec.slot_writable then
                slot = get_flushed(r, spec.index)
            end
        end
        if slot == nil then
            ngx_var[name] = value
            return
        end
        slot.data = copy
        slot.bits = bor(#value, VALID)
    end
end


-- How `name` is read once resolved ("index", "handler", "name"), nil before
-- its first read; for the tests.
local HOW = { [BY_NAME] = "name", [BY_INDEX] = "index", [BY_HANDLER] = "handler" }

function _M.resolution(name)
    local spec = specs[name]
    return spec and HOW[spec.how]
end


return _M
