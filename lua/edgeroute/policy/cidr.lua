-- IPv4 and IPv6 CIDRs, matched against nginx's $binary_remote_addr (4 or 16
-- bytes), so the request path never parses an address from text.

local byte = string.byte
local sub = string.sub
local find = string.find
local match = string.match
local tonumber = tonumber
local floor = math.floor
local concat = table.concat
local char = string.char

local _M = { _VERSION = "0.1.0" }

-- ::ffff:a.b.c.d, as IPv4 clients appear on an IPv6 listener.
local V4_MAPPED = "\0\0\0\0\0\0\0\0\0\0\255\255"


-- A dotted-quad part; leading zeros are refused (they mean octal to some parsers).
local function octet(text)
    if #text > 1 and byte(text, 1) == 48 then
        return nil
    end
    local n = tonumber(text)
    return n <= 255 and n or nil
end


local function parse_ipv4(text)
    local a, b, c, d = match(text, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
    if not a then
        return nil
    end
    a, b, c, d = octet(a), octet(b), octet(c), octet(d)
    if not (a and b and c and d) then
        return nil
    end
    return char(a, b, c, d)
end


local function parse_groups(text, out)
    if text == "" then
        return true
    end
    local pos = 1
    while true do
        local stop = find(text, ":", pos, true)
        local group = sub(text, pos, (stop or 0) - 1)
        if not match(group, "^%x%x?%x?%x?$") then
            return nil
        end
        out[#out + 1] = tonumber(group, 16)
        if not stop then
            return true
        end
        pos = stop + 1
    end
end


local function parse_ipv6(text)
    if not find(text, ":", 1, true) then
        return nil
    end
    local tail_v4
    local last_colon = match(text, "^.*():")
    if find(text, ".", 1, true) then
        tail_v4 = parse_ipv4(sub(text, last_colon + 1))
        if not tail_v4 then
            return nil
        end
        text = sub(text, 1, last_colon) .. "0:0"
    end
    local head, rest = match(text, "^(.-)::(.*)$")
    local groups, tail = {}, {}
    if head then
        if find(rest, "::", 1, true) then
            return nil
        end
        if not parse_groups(head, groups) or not parse_groups(rest, tail) then
            return nil
        end
        if #groups + #tail > 7 then
            return nil
        end
        for _ = 1, 8 - #groups - #tail do
            groups[#groups + 1] = 0
        end
        for i = 1, #tail do
            groups[#groups + 1] = tail[i]
        end
    else
        if not parse_groups(text, groups) or #groups ~= 8 then
            return nil
        end
    end
    local bytes = {}
    for i = 1, 8 do
        bytes[#bytes + 1] = char(floor(groups[i] / 256), groups[i] % 256)
    end
    local packed = concat(bytes)
    if tail_v4 then
        packed = sub(packed, 1, 12) .. tail_v4
    end
    return packed
end


-- Returns { bytes = packed address, bits = prefix length } or nil, err.
function _M.parse(text)
    if type(text) ~= "string" or #text > 64 then
        return nil, "not a CIDR"
    end
    -- One to three digits, as the CLI reads a prefix length ("/0032" is refused by both).
    local address, prefix = match(text, "^([^/]+)/(%d%d?%d?)$")
    if not address then
        address = text
    end
    local packed = parse_ipv4(address) or parse_ipv6(address)
    if not packed then
        return nil, "not an IPv4 or IPv6 CIDR"
    end
    local max = #packed * 8
    local bits = prefix and tonumber(prefix) or max
    if bits > max then
        return nil, "not an IPv4 or IPv6 CIDR"
    end
    return { bytes = packed, bits = bits }
end


-- Whether the binary address `addr` lies in `cidr`.
function _M.contains(cidr, addr)
    local bytes = cidr.bytes
    if #addr ~= #bytes then
        if #bytes == 4 and #addr == 16 and sub(addr, 1, 12) == V4_MAPPED then
            addr = sub(addr, 13)
        else
            return false
        end
    end
    local bits = cidr.bits
    local whole = floor(bits / 8)
    for i = 1, whole do
        if byte(addr, i) ~= byte(bytes, i) then
            return false
        end
    end
    local rest = bits % 8
    if rest == 0 then
        return true
    end
    local shift = 2 ^ (8 - rest)
    return floor(byte(addr, whole + 1) / shift) == floor(byte(bytes, whole + 1) / shift)
end


local contains = _M.contains


-- Whether a 16-byte address is an IPv4-mapped IPv6 one (::ffff:a.b.c.d),
-- byte by byte: no loop, and no string made per request.
function _M.v4_mapped(addr)
    local a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12 = byte(addr, 1, 12)
    return a1 == 0 and a2 == 0 and a3 == 0 and a4 == 0 and a5 == 0 and a6 == 0
        and a7 == 0 and a8 == 0 and a9 == 0 and a10 == 0 and a11 == 255 and a12 == 255
end


-- Whether `addr` lies in any CIDR of `list`. The first two are tested
-- without a loop: a loop of one or two turns (with contains' own inside) in
-- the request path made LuaJIT abort the trace around it ("inner loop in
-- root trace") until, in workers where that path got hot first, it gave the
-- code up to the interpreter, which boxes every FFI result (about 50 bytes a
-- request more; request-allocation.test.ts).
function _M.any(list, addr)
    local first, second = list[1], list[2]
    if first == nil then
        return false
    end
    if contains(first, addr) then
        return true
    end
    if second == nil then
        return false
    end
    if contains(second, addr) then
        return true
    end
    for i = 3, #list do
        if contains(list[i], addr) then
            return true
        end
    end
    return false
end


return _M
