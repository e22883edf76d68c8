package.path = "lua/?.lua;" .. package.path

-- edgeroute.basicAuth's Lua: the header reading both data planes share, the
-- nginx plugin's check (libcrypt's crypt_r through the FFI, with a stub of
-- just enough of nginx), and HAProxy's crypt.lua against libcrypt itself
-- (here its digests come from OpenSSL's libcrypto through the FFI; on
-- HAProxy nodes from HAProxy's converters). Real nginx and HAProxy are
-- checked by test/integration/basic-auth.test.ts.

local ffi = require "ffi"

ffi.cdef [[
unsigned char *SHA512(const unsigned char *d, size_t n, unsigned char *md);
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
unsigned char *MD5(const unsigned char *d, size_t n, unsigned char *md);
int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n);
int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n);
]]
pcall(ffi.cdef, "char *crypt_r(const char *phrase, const char *setting, void *data);")
local libcrypto = ffi.load("libcrypto.so.3")
local libcrypt = ffi.load("libcrypt.so.1")

-- Made with `openssl passwd -6 -salt Q9pCzW4eRt7Lm2Xa grafana-ops-2026`, and
-- -5 / -1 with salt abcdEFGH and password x.
local SHA512 = "$6$Q9pCzW4eRt7Lm2Xa$72Fqd6/pTYlKEcPSPb6GAOVwsW7.IpXc7jfk0qJ9prs1Rdr2VYgSucmQJJMhAQF1gJE0OKNWWFL91.mXdEhDM."
local SHA256 = "$5$abcdEFGH$fKitG5RztnzQ9uwhL35ayYIG4hG5e4Ul5sw30/1vW45"
local MD5 = "$1$abcdEFGH$YwB5GTTIiGk/xvQF0MFtt."

local digest_out = ffi.new("unsigned char[64]")
local DIGESTS = {
    sha512 = function(s) libcrypto.SHA512(s, #s, digest_out) return ffi.string(digest_out, 64) end,
    sha256 = function(s) libcrypto.SHA256(s, #s, digest_out) return ffi.string(digest_out, 32) end,
    md5 = function(s) libcrypto.MD5(s, #s, digest_out) return ffi.string(digest_out, 16) end,
}

-- Strict base64 (nil when malformed), as HAProxy's b64dec and nginx's decoder.
local function decode_base64(text)
    if #text % 4 ~= 0 or text:find("[^%w+/=]") then
        return nil
    end
    local out = ffi.new("unsigned char[?]", #text)
    local n = libcrypto.EVP_DecodeBlock(out, text, #text)
    if n < 0 then
        return nil
    end
    local pad = select(2, text:gsub("=", ""))
    return ffi.string(out, n - pad)
end

local function base64(text)
    local out = ffi.new("unsigned char[?]", #text * 2 + 4)
    return ffi.string(out, libcrypto.EVP_EncodeBlock(out, text, #text))
end

local function basic(user_password)
    return "Basic " .. base64(user_password)
end


describe("basic_credentials", function()
    local credentials = require "edgeroute.basic_credentials"

    it("reads Basic credentials, the scheme in any case, the password up to the end", function()
        assert.same({ "alice", "s3:cr:et" }, { credentials.parse(basic("alice:s3:cr:et"), decode_base64) })
        assert.same({ "alice", "" }, { credentials.parse("bAsIc   " .. base64("alice:") .. " ", decode_base64) })
        assert.same({ "", "pw" }, { credentials.parse(basic(":pw"), decode_base64) })
    end)

    it("takes nothing else", function()
        for _, value in ipairs({
            "Bearer abc", "Basic", "Basic ", "Basic !!!!", "Basicx " .. base64("a:b"),
            "Basic " .. base64("no colon"),
            "Basic YQ", -- unpadded: nginx's decoder would take it, HAProxy's not
            basic("alice:" .. string.rep("p", 512)), -- libcrypt refuses 512 bytes and more
            basic("alice:secret\0more"), -- crypt(3) would stop at the NUL on nginx only
        }) do
            assert.is_nil(credentials.parse(value, decode_base64), value)
        end
        assert.is_not_nil(credentials.parse(basic("alice:" .. string.rep("p", 511)), decode_base64))
    end)

    it("checks an unknown user against a decoy hash, so it costs one crypt too", function()
        local auth = credentials.compile("ops", { bob = SHA256, alice = SHA512 })
        assert.equal('Basic realm="ops"', auth.challenge)
        assert.equal(SHA512, auth.decoy)
        local checked = {}
        local function matches(password, hash)
            checked[#checked + 1] = hash
            return password == "right" and hash == SHA256
        end
        assert.is_true(credentials.check(auth, "bob", "right", matches))
        assert.is_false(credentials.check(auth, "bob", "wrong", matches))
        assert.is_false(credentials.check(auth, "mallory", "right", matches))
        assert.same({ SHA256, SHA256, SHA512 }, checked)
        assert.is_nil(credentials.check(auth, "bob", "x", function() return nil end))
        assert.is_false(credentials.check(credentials.compile("ops", {}), "bob", "x", matches))
    end)

    it("gives each setting its own fingerprint", function()
        local a = credentials.compile("ops", { alice = SHA512 }).fingerprint
        assert.equal(a, credentials.compile("ops", { alice = SHA512 }).fingerprint)
        assert.not_equal(a, credentials.compile("ops2", { alice = SHA512 }).fingerprint)
        assert.not_equal(a, credentials.compile("ops", { alice = SHA256 }).fingerprint)
        assert.not_equal(a, credentials.compile("ops", { alice = SHA512, bob = MD5 }).fingerprint)
    end)
end)


describe("HAProxy's crypt.lua", function()
    local crypt = require "edgeroute.haproxy.crypt"
    local crypt_data = ffi.new("char[?]", 131232)
    local function libcrypt_crypt(password, setting)
        return ffi.string(libcrypt.crypt_r(password, setting, crypt_data))
    end

    it("gives openssl passwd's hashes", function()
        assert.equal(SHA512, crypt.crypt("grafana-ops-2026", SHA512, DIGESTS))
        assert.equal(SHA256, crypt.crypt("x", SHA256, DIGESTS))
        assert.equal(MD5, crypt.crypt("x", MD5, DIGESTS))
        assert.not_equal(SHA512, crypt.crypt("grafana-ops-2025", SHA512, DIGESTS))
    end)

    it("gives libcrypt's crypt for any password and salt, rounds= too", function()
        math.randomseed(20261129)
        local SALT = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        local kinds = { "$6$", "$5$", "$1$", "$6$rounds=1000$", "$5$rounds=1234$" }
        for t = 1, 60 do
            local password = {}
            -- Lengths across the digest sizes (16, 32, 64) and beyond; any byte but NUL.
            for i = 1, math.random(0, 140) do
                password[i] = string.char(math.random(1, 255))
            end
            password = table.concat(password)
            local salt = {}
            for i = 1, math.random(0, 20) do
                local k = math.random(1, 64)
                salt[i] = SALT:sub(k, k)
            end
            local setting = kinds[t % #kinds + 1] .. table.concat(salt)
            local want = libcrypt_crypt(password, setting)
            assert.equal(want, crypt.crypt(password, setting, DIGESTS), setting)
            -- And checked against the whole hash, as the action does.
            assert.equal(want, crypt.crypt(password, want, DIGESTS))
        end
    end)

    it("refuses what libcrypt refuses, and other forms", function()
        assert.equal("*0", libcrypt_crypt("x", "$6$rounds=999$salt"))
        assert.is_nil(crypt.crypt("x", "$6$rounds=999$salt", DIGESTS))
        assert.is_nil(crypt.crypt("x", "$y$j9T$salt", DIGESTS))
        assert.is_nil(crypt.crypt("x", "abJnggxhB/yWI", DIGESTS))
    end)
end)


describe("the nginx plugin's basic_auth", function()
    local answered, credentials, basic_auth

    before_each(function()
        answered = {}
        _G.ngx = {
            var = {},
            header = {},
            ERR = 4,
            log = function() end,
            now = function() return 1 end,
            worker = { pid = function() return 1 end },
            -- Only whether keys differ matters here.
            hmac_sha1 = function(key, text) return key .. "|" .. text end,
            sha1_bin = function(text) return "sha1(" .. text .. ")" end,
            decode_base64 = decode_base64,
            say = function(text) answered.body = text end,
            exit = function(status) answered.exit = status end,
        }
        package.loaded["edgeroute.basic_auth"] = nil
        package.loaded["edgeroute.basic_credentials"] = nil
        credentials = require "edgeroute.basic_credentials"
        basic_auth = require "edgeroute.basic_auth"
    end)

    local function request(auth, authorization)
        ngx.var.http_authorization = authorization
        answered = {}
        ngx.status = nil
        ngx.header = {}
        return basic_auth.deny(auth)
    end

    it("lets the right password through with libcrypt's crypt_r, and asks for one otherwise", function()
        local auth = basic_auth.compile({ realm = "Grafana (ops)", users = { admin = SHA512, x = SHA256, y = MD5 } })
        assert.is_false(request(auth, basic("admin:grafana-ops-2026")))
        assert.is_false(request(auth, basic("x:x")))
        assert.is_false(request(auth, basic("y:x")))
        for _, value in ipairs({ false, basic("admin:grafana-ops-2025"), basic("nobody:x"), basic("admin:"), "Bearer t" }) do
            assert.is_true(request(auth, value or nil))
            assert.equal(401, ngx.status)
            assert.equal(401, answered.exit)
            assert.equal('Basic realm="Grafana (ops)"', ngx.header["WWW-Authenticate"])
        end
    end)

    it("remembers what it checked, right and wrong, per setting", function()
        local check = spy.on(credentials, "check")
        local auth = basic_auth.compile({ realm = "ops", users = { x = SHA256 } })
        for _ = 1, 3 do
            assert.is_false(request(auth, basic("x:x")))
            assert.is_true(request(auth, basic("x:y")))
        end
        assert.spy(check).was.called(2)
        -- Another setting (the same realm and user, another hash) checks afresh: x's password is no longer x.
        local changed = basic_auth.compile({ realm = "ops", users = { x = SHA512 } })
        assert.is_true(request(changed, basic("x:x")))
        assert.is_false(request(changed, basic("x:grafana-ops-2026")))
        assert.spy(check).was.called(4)
        -- A request of the first setting still passes from memory.
        assert.is_false(request(auth, basic("x:x")))
        assert.spy(check).was.called(4)
    end)
end)
