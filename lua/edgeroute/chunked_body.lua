-- A request body sent with "Transfer-Encoding: chunked", read from the raw
-- request socket one chunk at a time. ngx.req.read_body() returns only once
-- the last byte is in, and this lua-nginx-module's ngx.req.socket() refuses
-- chunked bodies: reading the chunks here lets a caller work on the first
-- ones while the client still writes the rest.

local tonumber = tonumber
local match = string.match

local _M = { _VERSION = "0.1.0" }

-- A chunk-size line longer than this is not a size.
local MAX_SIZE_DIGITS = 15


-- Hands each chunk's data, in order, to `on_chunk`. Returns the body's size
-- in bytes; or nil and a message, with the HTTP status to answer (400 for
-- broken framing, 413 past `max_bytes`) or none when the client went away
-- or stopped sending (nobody is left to answer).
function _M.read(sock, on_chunk, max_bytes)
    local total = 0
    while true do
        local line, err = sock:receive("*l")
        if not line then
            return nil, "reading the body: " .. err
        end
        -- Extensions after ";" are allowed and ignored (RFC 9112 7.1.1).
        local digits = match(line, "^%x+")
        if digits == nil or #digits > MAX_SIZE_DIGITS then
            return nil, "malformed chunked body: a chunk size is not a hex number", 400
        end
        local size = tonumber(digits, 16)
        if size == 0 then
            -- Trailer fields, if any, end with an empty line.
            repeat
                line, err = sock:receive("*l")
                if not line then
                    return nil, "reading the body: " .. err
                end
            until line == ""
            return total
        end
        total = total + size
        if total > max_bytes then
            return nil, "body over " .. max_bytes .. " bytes", 413
        end
        local data
        data, err = sock:receive(size)
        if not data then
            return nil, "reading the body: " .. err
        end
        on_chunk(data)
        local ending
        ending, err = sock:receive(2)
        if not ending then
            return nil, "reading the body: " .. err
        end
        if ending ~= "\r\n" then
            return nil, "malformed chunked body: a chunk does not end with CRLF", 400
        end
    end
end


return _M
