-- crypt(3) of the three hash forms edgeroute.basicAuth takes, for HAProxy's
-- Lua (5.3, no FFI to libcrypt): SHA-crypt ($6$ SHA-512, $5$ SHA-256, as
-- Ulrich Drepper's specification and libcrypt define it) and MD5-crypt
-- ($1$, Poul-Henning Kamp's). The digests are the caller's: on HAProxy
-- nodes its C converters (sha2, digest), so the thousands of digests a
-- crypt needs run in C and only their chaining runs in Lua. Measured on
-- HAProxy 2.6 here: $6$ with 5,000 rounds 4.8 ms (libcrypt's crypt: 1.2 ms;
-- the same chaining over a SHA-512 written in Lua: 280 ms).
--
-- Plain string functions only, so the tests run it in LuaJIT against
-- libcrypt's own crypt_r. A result that differs from the stored hash is a
-- refusal: a mistake here can only turn a right password away.

local byte = string.byte
local sub = string.sub
local rep = string.rep
local match = string.match
local concat = table.concat
local floor = math.floor
local tonumber = tonumber

local _M = { _VERSION = "0.1.0" }

local B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local ROUNDS_DEFAULT = 5000
-- libcrypt refuses a rounds= outside these (it does not clamp).
local ROUNDS_MIN = 1000
local ROUNDS_MAX = 999999999

-- Which digest bytes go into each group of four characters, last group apart.
local SHA512_ORDER = {
    0, 21, 42, 22, 43, 1, 44, 2, 23, 3, 24, 45, 25, 46, 4, 47, 5, 26, 6, 27, 48,
    28, 49, 7, 50, 8, 29, 9, 30, 51, 31, 52, 10, 53, 11, 32, 12, 33, 54, 34, 55, 13,
    56, 14, 35, 15, 36, 57, 37, 58, 16, 59, 17, 38, 18, 39, 60, 40, 61, 19, 62, 20, 41,
}
local SHA256_ORDER = {
    0, 10, 20, 21, 1, 11, 12, 22, 2, 3, 13, 23, 24, 4, 14, 15, 25, 5, 6, 16, 26,
    27, 7, 17, 18, 28, 8, 9, 19, 29,
}


-- Appends n characters of crypt's base64 for the 24 bits b2 b1 b0, low bits first.
local function b64_24(out, b2, b1, b0, n)
    local w = b2 * 65536 + b1 * 256 + b0
    for _ = 1, n do
        local i = w % 64
        out[#out + 1] = sub(B64, i + 1, i + 1)
        w = floor(w / 64)
    end
end


-- `digest` repeated, then cut, to `length` bytes.
local function stretch(digest, size, length)
    return rep(digest, floor(length / size)) .. sub(digest, 1, length % size)
end


local function sha_crypt(password, setting, H, size, id)
    local prefix = "$" .. id .. "$"
    local rest = sub(setting, #prefix + 1)
    local rounds, custom = ROUNDS_DEFAULT, false
    local text, after = match(rest, "^rounds=(%d+)%$()")
    if text then
        rounds = tonumber(text)
        if rounds < ROUNDS_MIN or rounds > ROUNDS_MAX then
            return nil
        end
        custom = true
        rest = sub(rest, after)
    end
    local salt = sub(match(rest, "^[^$]*"), 1, 16)
    local P, S = password, salt
    local plen = #P

    local B = H(P .. S .. P)
    local parts = { P, S, stretch(B, size, plen) }
    local n = plen
    while n > 0 do
        parts[#parts + 1] = (n % 2 == 1) and B or P
        n = floor(n / 2)
    end
    local A = H(concat(parts))
    local p_seq = stretch(H(rep(P, plen)), size, plen)
    local s_seq = sub(H(rep(S, 16 + byte(A, 1))), 1, #S)

    -- Round i digests A with P and S in an order set by i's parity and
    -- whether 3 and 7 divide it: the eight strings around A, made once.
    local even, odd = {}, {}
    for k = 0, 3 do
        local with_s = k % 2 == 1
        local with_p = k >= 2
        even[k] = (with_s and s_seq or "") .. (with_p and p_seq or "") .. p_seq
        odd[k] = p_seq .. (with_s and s_seq or "") .. (with_p and p_seq or "")
    end
    for i = 0, rounds - 1 do
        local k = (i % 3 ~= 0 and 1 or 0) + (i % 7 ~= 0 and 2 or 0)
        if i % 2 == 1 then
            A = H(odd[k] .. A)
        else
            A = H(A .. even[k])
        end
    end

    local out = { prefix }
    if custom then
        out[#out + 1] = "rounds=" .. rounds .. "$"
    end
    out[#out + 1] = salt
    out[#out + 1] = "$"
    local order = size == 64 and SHA512_ORDER or SHA256_ORDER
    for i = 1, #order, 3 do
        b64_24(out, byte(A, order[i] + 1), byte(A, order[i + 1] + 1), byte(A, order[i + 2] + 1), 4)
    end
    if size == 64 then
        b64_24(out, 0, 0, byte(A, 64), 2)
    else
        b64_24(out, 0, byte(A, 32), byte(A, 31), 3)
    end
    return concat(out)
end


local function md5_crypt(password, setting, H)
    local salt = sub(match(sub(setting, 4), "^[^$]*"), 1, 8)
    local P = password
    local final = H(P .. salt .. P)
    local parts = { P, "$1$", salt, stretch(final, 16, #P) }
    local n = #P
    while n > 0 do
        parts[#parts + 1] = (n % 2 == 1) and "\0" or sub(P, 1, 1)
        n = floor(n / 2)
    end
    final = H(concat(parts))
    for i = 0, 999 do
        local c = (i % 2 == 1) and P or final
        if i % 3 ~= 0 then
            c = c .. salt
        end
        if i % 7 ~= 0 then
            c = c .. P
        end
        final = H(c .. ((i % 2 == 1) and final or P))
    end
    local f = { byte(final, 1, 16) }
    local out = { "$1$", salt, "$" }
    b64_24(out, f[1], f[7], f[13], 4)
    b64_24(out, f[2], f[8], f[14], 4)
    b64_24(out, f[3], f[9], f[15], 4)
    b64_24(out, f[4], f[10], f[16], 4)
    b64_24(out, f[5], f[11], f[6], 4)
    b64_24(out, 0, 0, f[12], 2)
    return concat(out)
end


-- crypt(password, setting) as libcrypt computes it, for a setting (or a
-- whole hash) of the forms $6$, $5$ and $1$; nil for another form.
-- `digests`: { sha512 = f, sha256 = f, md5 = f }, each f(bytes) → raw digest.
function _M.crypt(password, setting, digests)
    local id = sub(setting, 1, 3)
    if id == "$6$" then
        return sha_crypt(password, setting, digests.sha512, 64, "6")
    elseif id == "$5$" then
        return sha_crypt(password, setting, digests.sha256, 32, "5")
    elseif id == "$1$" then
        return md5_crypt(password, setting, digests.md5)
    end
    return nil
end


return _M
