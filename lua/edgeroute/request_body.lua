-- The request body as nginx buffered it: in memory, or in a temporary file
-- once it outgrew client_body_buffer_size. Reading it here is what nginx
-- does before proxying anyway (proxy_request_buffering).

local ngx = ngx
local io_open = io.open

local _M = { _VERSION = "0.1.0" }


-- Reads the body; returns its bytes in memory, or nil and the file holding them.
local function buffered()
    ngx.req.read_body()
    local data = ngx.req.get_body_data()
    if data then
        return data
    end
    return nil, ngx.req.get_body_file()
end


-- The whole body, or nil when there is none (or its file cannot be read).
function _M.read()
    local data, path = buffered()
    if data or not path then
        return data
    end
    local file = io_open(path, "rb")
    if not file then
        return nil
    end
    data = file:read("*a")
    file:close()
    return data
end


-- The body's size in bytes, without reading a buffered file into memory.
function _M.size()
    local data, path = buffered()
    if data then
        return #data
    end
    if not path then
        return 0
    end
    local file = io_open(path, "rb")
    if not file then
        return 0
    end
    local size = file:seek("end")
    file:close()
    return size or 0
end


return _M
