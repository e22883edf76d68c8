-- ACME HTTP-01 challenges. The agent that orders a certificate writes the
-- challenge's token and key authorization to Redis; every node's agent reads
-- them and pushes the whole pending set here (PUT /edgeroute/acme-challenges),
-- so that the CA's request for /.well-known/acme-challenge/TOKEN is answered
-- whichever routing node it reaches. nginx.conf sends that path prefix to its
-- own location, ahead of routing and of edgeroute.redirectHttps: a token
-- that is not pending is routed as any request (an app may answer its own).
--
-- Shared-dict keys (dict `edgeroute`):
--   acme:token:<token>  the key authorization, expiring after TOKEN_TTL
--   acme:tokens         JSON list of the tokens the last push set
--
-- Key authorizations are public by design (the CA fetches them over plain
-- HTTP); no private key ever reaches this module.

local cjson = require "cjson.safe"
local config = require "edgeroute.config"

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local sub = string.sub
local find = string.find
local json_decode = cjson.decode
local json_encode = cjson.encode

local _M = { _VERSION = "0.1.0" }

local PREFIX = "/.well-known/acme-challenge/"
local KEY_TOKEN = "acme:token:"
local KEY_TOKENS = "acme:tokens"
-- An order's challenges live for minutes; a token the agent never withdrew
-- (it died) goes away by itself.
local TOKEN_TTL = 3600
local MAX_CHALLENGES = 1000
-- RFC 8555 8.1 and 8.3: a token and a key authorization are base64url (the
-- latter "token.thumbprint").
local TOKEN = "^[A-Za-z0-9_-]+$"
local KEY_AUTHORIZATION = "^[A-Za-z0-9_-]+%.[A-Za-z0-9_-]+$"


local function dict()
    return ngx.shared[config.dict_name]
end


-- Replaces the pending set with the JSON `raw`: {"challenges": {token: key authorization}}.
-- Returns the number of challenges, or nil, http status, message.
function _M.replace(raw)
    local body = type(raw) == "string" and json_decode(raw) or nil
    if type(body) ~= "table" or type(body.challenges) ~= "table" then
        return nil, 400, "the body must be {\"challenges\": {token: keyAuthorization}}"
    end
    local tokens = {}
    for token, answer in pairs(body.challenges) do
        if type(token) ~= "string" or #token > 256 or not find(token, TOKEN) then
            return nil, 400, "a token is not base64url"
        end
        if type(answer) ~= "string" or #answer > 512 or not find(answer, KEY_AUTHORIZATION)
            or sub(answer, 1, #token + 1) ~= token .. "." then
            return nil, 400, "the key authorization of token " .. token .. " is not TOKEN.THUMBPRINT"
        end
        tokens[#tokens + 1] = token
        if #tokens > MAX_CHALLENGES then
            return nil, 400, "more than " .. MAX_CHALLENGES .. " challenges"
        end
    end
    local shared = dict()
    local kept = {}
    for _, token in ipairs(tokens) do
        local ok, err = shared:set(KEY_TOKEN .. token, body.challenges[token], TOKEN_TTL)
        if not ok then
            return nil, 507, "shared dict " .. config.dict_name .. ": " .. err
        end
        kept[token] = true
    end
    local before = json_decode(shared:get(KEY_TOKENS) or "null")
    if type(before) == "table" then
        for _, token in ipairs(before) do
            if not kept[token] then
                shared:delete(KEY_TOKEN .. token)
            end
        end
    end
    shared:set(KEY_TOKENS, json_encode(tokens))
    return #tokens
end


-- access_by_lua of the challenge location: answers a pending token, and
-- routes anything else as location / does.
function _M.serve()
    local uri = ngx.var.uri
    local token = sub(uri, #PREFIX + 1)
    local answer = token ~= "" and dict():get(KEY_TOKEN .. token)
    if answer then
        ngx.header["Content-Type"] = "text/plain"
        ngx.print(answer)
        return ngx.exit(ngx.HTTP_OK)
    end
    return package.loaded["edgeroute.plugin"].access()
end


return _M
