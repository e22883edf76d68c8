-- Writes a compiled policy out as one straight-line Lua function, loaded
-- once per policy change, so a request's version is chosen without a loop.
--
-- Why: LuaJIT compiles the request path as traces, and a trace cannot hold
-- an inner loop. The generic walk (matcher.choose) loops over rules, tests,
-- patterns and CIDRs, so the path of a request to a multi-version app was
-- compiled in pieces, with the glue between them left to the interpreter
-- (BENCHMARKS.md, "The ten rules, written out"). Written out, a rule is a few
-- `if`s, and the access phase compiles whole.
--
-- Nothing from the policy is spliced into the source but numbers this file
-- computes (byte values, bounds, hashes, indexes): names, values and
-- patterns are read from the constant table K at run time. The source has
-- no string literal at all, and is loaded as text into an empty
-- environment (SECURITY.md; tests: policy_spec.lua, data-is-never-code).

local cidr = require "edgeroute.policy.cidr"
local bucket = require "edgeroute.policy.bucket"

local concat = table.concat
local format = string.format
local byte = string.byte
local floor = math.floor
local load = load
local ipairs = ipairs
local next = next

local _M = { _VERSION = "0.1.0" }

-- Past these a policy keeps the generic walk: its function would be too
-- long for one trace, or its lists too long to write out.
local MAX_RULES = 64
local MAX_CIDRS = 16
local MAX_PATTERNS = 8
local MAX_SLOTS = 100

local ADDRESS_VAR = "binary_remote_addr"

_M.TOO_LARGE = "too large to write out"


-- The first `bits` bits of the address in `a`, from byte `offset` + 1,
-- against those of `bytes`.
local function prefix_test(bytes, bits, offset)
    local parts = {}
    local whole = floor(bits / 8)
    for i = 1, whole do
        parts[#parts + 1] = format("byte(a, %d) == %d", offset + i, byte(bytes, i))
    end
    local rest = bits % 8
    if rest > 0 then
        local shift = 2 ^ (8 - rest)
        parts[#parts + 1] = format("floor(byte(a, %d) / %d) == %d", offset + whole + 1, shift, floor(byte(bytes, whole + 1) / shift))
    end
    if #parts == 0 then
        return "true"
    end
    return concat(parts, " and ")
end


-- The same answer as cidr.contains: an IPv4 CIDR also holds IPv4-mapped
-- IPv6 addresses; `n` is #a.
local function cidr_test(parsed)
    if #parsed.bytes == 4 then
        return format("(n == 4 and %s or n == 16 and v4_mapped(a) and %s)",
            prefix_test(parsed.bytes, parsed.bits, 0), prefix_test(parsed.bytes, parsed.bits, 12))
    end
    return format("(n == 16 and %s)", prefix_test(parsed.bytes, parsed.bits, 0))
end


local function writable(compiled)
    local rules = compiled.rules
    if #rules > MAX_RULES then
        return false
    end
    for _, rule in ipairs(rules) do
        for _, t in ipairs(rule.tests) do
            if t.kind == "ip" and #t.cidrs > MAX_CIDRS then
                return false
            end
            if t.test and t.test.patterns and #t.test.patterns > MAX_PATTERNS then
                return false
            end
        end
    end
    return true
end


-- Returns the function run(get, re_find, region) → version name, or nil
-- and why when the policy keeps the generic walk. `compiled` is what
-- matcher.compile built.
function _M.build(compiled)
    if not writable(compiled) then
        return nil, _M.TOO_LARGE
    end
    local K = {}
    local function constant(value)
        K[#K + 1] = value
        return #K
    end
    local slot_of = {}
    local slot_count = 0
    local function slot(var)
        local s = slot_of[var]
        if s == nil then
            slot_count = slot_count + 1
            s = { index = slot_count, name = constant(var) }
            slot_of[var] = s
        end
        return s
    end

    local body = {}
    local function emit(line)
        body[#body + 1] = line
    end
    -- A value read at most once a request: nil until read, false when absent.
    local function read(var)
        local s = slot(var)
        local v = "v" .. s.index
        emit(format("    if %s == nil then %s = get(K[%d]) or false end", v, v, s.name))
        return v
    end
    local address_name
    local function read_address()
        address_name = address_name or constant(ADDRESS_VAR)
        emit(format("    if a == nil then a = get(K[%d]) or false end", address_name))
        emit("    n = a and #a or 0")
    end

    for r, rule in ipairs(compiled.rules) do
        local next_rule = "rule" .. (r + 1)
        for _, t in ipairs(rule.tests) do
            local condition
            if t.kind == "value" then
                local test = t.test
                local v = read(test.var)
                -- check.lua refuses empty lists; "false" keeps the source valid all the same.
                if test.set then
                    local only = next(test.set)
                    if only == nil then
                        condition = "false"
                    elseif next(test.set, only) == nil then
                        condition = format("%s == K[%d]", v, constant(only))
                    else
                        condition = format("%s and K[%d][%s] == true", v, constant(test.set), v)
                    end
                else
                    local finds = {}
                    for i, pattern in ipairs(test.patterns) do
                        finds[i] = format("re_find(%s, K[%d])", v, constant(pattern))
                    end
                    condition = #finds > 0 and format("%s and (%s)", v, concat(finds, " or ")) or "false"
                end
            elseif t.kind == "ip" then
                read_address()
                local tests = {}
                for i, parsed in ipairs(t.cidrs) do
                    tests[i] = cidr_test(parsed)
                end
                condition = #tests > 0 and format("a and (%s)", concat(tests, " or ")) or "false"
            elseif t.kind == "region" then
                emit("    if where == nil then where, a = region(a, get); where = where or false end")
                condition = format("where and K[%d][where] == true", constant(t.set))
            else
                local v = read(t.var)
                condition = format("%s and #%s > 0 and bucket_from(%d, %s) < %d", v, v, t.prefix_hash, v, t.bound)
            end
            emit(format("    if not (%s) then goto %s end", condition, next_rule))
        end
        emit(format("    do return K[%d] end", constant(rule.version)))
        emit(format("    ::%s::", next_rule))
    end
    emit(format("    do return K[%d] end", constant(compiled.default)))

    -- Counted as they were written: a local each, and Lua allows 200 in a function.
    if slot_count > MAX_SLOTS then
        return nil, _M.TOO_LARGE
    end
    local slots = {}
    for i = 1, slot_count do
        slots[i] = "v" .. i
    end
    local source = concat({
        "local K, byte, floor, v4_mapped, bucket_from = ...",
        "return function(get, re_find, region)",
        "    local a, n, where" .. (#slots > 0 and ", " .. concat(slots, ", ") or ""),
        concat(body, "\n"),
        "end",
    }, "\n")
    local chunk, err = load(source, "=edgeroute.policy.unrolled", "t", {})
    if chunk == nil then
        return nil, err
    end
    return chunk(K, byte, floor, cidr.v4_mapped, bucket.bucket_from), source
end


return _M
