-- Paths as the nginx plugin routes them: nginx's $uri is the request path
-- with every %XX decoded, "//" merged and "." and ".." segments resolved.
-- HAProxy routes on the raw path, so requests that route by path prefix are
-- normalized here first (and forwarded normalized, as nginx does), else
-- "/web/../api/x" would route to /web and reach its backend unresolved.

local gsub = string.gsub
local gmatch = string.gmatch
local find = string.find
local sub = string.sub
local byte = string.byte
local char = string.char
local format = string.format
local concat = table.concat
local tonumber = tonumber

local _M = { _VERSION = "0.1.0" }


local function hex_char(hex)
    return char(tonumber(hex, 16))
end


-- The normalized path, or nil when a ".." climbs above the root (nginx
-- answers 400).
function _M.normalize(path)
    if path == nil or path == "" then
        return "/"
    end
    local decoded = gsub(path, "%%(%x%x)", hex_char)
    local stack = {}
    local trailing = false
    for segment in gmatch(decoded, "[^/]+") do
        trailing = false
        if segment == "." then
            trailing = true
        elseif segment == ".." then
            if #stack == 0 then
                return nil
            end
            stack[#stack] = nil
            trailing = true
        else
            stack[#stack + 1] = segment
        end
    end
    if byte(decoded, #decoded) == 47 then
        trailing = true
    end
    local out = "/" .. concat(stack, "/")
    if trailing and #stack > 0 then
        out = out .. "/"
    end
    return out
end


-- Whether the raw path could differ from its normalized form.
function _M.may_differ(path)
    return find(path, "%", 1, true) or find(path, "/.", 1, true) or find(path, "//", 1, true)
end


local function escape_byte(c)
    return format("%%%02X", byte(c))
end


-- A decoded path as it may go on the request line: what cannot appear
-- there raw (controls, space, '"', "#", "%", "?", non-ASCII...) escaped.
function _M.escape(path)
    return (gsub(path, '[%z\1-\32"#%%%?<>\\^`{|}\127-\255]', escape_byte))
end


-- What is left of `path` once the routing `prefix` is taken off ("/" for
-- nothing left), as edgeroute.stripPath forwards it.
function _M.strip(path, prefix)
    if prefix == "/" then
        return path
    end
    local rest = sub(path, #prefix + 1)
    if rest == "" then
        return "/"
    end
    return rest
end


return _M
