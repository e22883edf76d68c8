-- What both data planes do alike for edgeroute.basicAuth (marathon-lb's
-- HAPROXY_n_AUTH): read the Authorization header and pick the hash a
-- password is checked against. The crypt itself is each plane's (nginx:
-- libcrypt's crypt_r; HAProxy: SHA-crypt over its C digests). Plain Lua, so
-- it runs in LuaJIT, HAProxy's Lua 5.3 and the tests' Lua 5.2.

local match = string.match
local find = string.find
local sub = string.sub
local sort = table.sort
local concat = table.concat
local pairs = pairs

local _M = { _VERSION = "0.1.0" }

-- libcrypt refuses a passphrase of 512 bytes or more (CRYPT_MAX_PASSPHRASE_SIZE).
local MAX_PASSWORD_BYTES = 511


-- `value`: the Authorization header ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
-- the scheme in any case). `decode_base64` returns nil for bad input.
-- Returns user, password; nil when the header holds no Basic credentials.
function _M.parse(value, decode_base64)
    local token = match(value, "^[Bb][Aa][Ss][Ii][Cc] +([%w+/=]+) *$")
    -- Padded base64 only: nginx's decoder takes it unpadded too, HAProxy's does not.
    if token == nil or #token % 4 ~= 0 then
        return nil
    end
    local decoded = decode_base64(token)
    if decoded == nil then
        return nil
    end
    -- RFC 7617: the user ends at the first colon; the password may hold more.
    local colon = find(decoded, ":", 1, true)
    if colon == nil then
        return nil
    end
    local password = sub(decoded, colon + 1)
    -- crypt(3) reads a C string: "secret\0anything" would pass as "secret"
    -- on nginx nodes and fail on HAProxy nodes. Refused on both.
    if #password > MAX_PASSWORD_BYTES or find(password, "\0", 1, true) then
        return nil
    end
    return sub(decoded, 1, colon - 1), password
end


-- Whether `password` is `user`'s in `auth` (users: name → hash; decoy: a
-- hash of the same kind), by `matches(password, hash)`. An unknown user
-- costs one crypt as well, so the time of a 401 does not tell which users
-- exist. Returns nil when `matches` could not check (it returned nil).
function _M.check(auth, user, password, matches)
    local hash = auth.users[user]
    if hash == nil then
        if auth.decoy == nil then
            return false
        end
        if matches(password, auth.decoy) == nil then
            return nil
        end
        return false
    end
    return matches(password, hash)
end


-- The compiled form both planes keep per app: the challenge header, a hash
-- for unknown users, and `fingerprint`, the whole setting as one string (a
-- credential checked against one setting is valid for no other).
function _M.compile(realm, users)
    local names = {}
    for name in pairs(users) do
        names[#names + 1] = name
    end
    sort(names)
    local parts = { realm }
    for i = 1, #names do
        parts[#parts + 1] = names[i]
        parts[#parts + 1] = users[names[i]]
    end
    return {
        realm = realm,
        users = users,
        decoy = users[names[1]],
        challenge = 'Basic realm="' .. realm .. '"',
        fingerprint = concat(parts, "\0"),
    }
end


return _M
