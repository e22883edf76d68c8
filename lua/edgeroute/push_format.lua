-- The push format, NDJSON: a header line {"version": ..., "base": ...}, then
-- one line per changed app route, or {"remove": id} for a removed app. Each
-- route line is kept as sent, so nothing is re-encoded. The agent's snapshot
-- file is a full push in the same format.

local cjson = require "cjson.safe"
local route_check = require "edgeroute.route_check"

local type = type
local setmetatable = setmetatable
local concat = table.concat
local find = string.find
local sub = string.sub
local json_decode = cjson.decode
local json_null = cjson.null

local _M = { _VERSION = "0.1.0" }


-- One non-empty line: the header first, then a route or a removal. Returns
-- nil, or the message refusing the push.
local function take_line(reader, line)
    local line_number = reader.line_number + 1
    reader.line_number = line_number
    local item, err = json_decode(line)
    if type(item) ~= "table" then
        return "line " .. line_number .. " is not a JSON object: " .. (err or "wrong type")
    end
    if reader.header == nil then
        reader.header = item
    elseif item.remove ~= nil then
        if type(item.remove) ~= "string" or #item.remove > route_check.MAX_ID_BYTES then
            return "line " .. line_number .. ": remove must name an app id"
        end
        local removed = reader.removed
        removed[#removed + 1] = item.remove
    else
        if type(item.id) ~= "string" then
            return "line " .. line_number .. ": an app route needs an id"
        end
        local problem = route_check.check(item.id, item)
        if problem then
            return problem
        end
        reader.routes[item.id] = { raw = line, hash = item.hash }
    end
end


local Reader = {}
Reader.__index = Reader

-- A push read in pieces as they arrive (nginx decodes the lines of a large
-- push while the agent is still writing the rest); `feed` the pieces, then
-- `finish`. The first refused line ends the reading: later pieces are
-- ignored and `finish` gives its message.
function _M.reader()
    return setmetatable({ line_number = 0, routes = {}, removed = {}, partial = {}, header = nil, problem = nil }, Reader)
end


function Reader:feed(text)
    if self.problem then
        return
    end
    local pos = 1
    local length = #text
    local partial = self.partial
    if partial[1] then
        -- A line cut between pieces: its start is kept until its end comes.
        local stop = find(text, "\n", 1, true)
        if not stop then
            partial[#partial + 1] = text
            return
        end
        partial[#partial + 1] = sub(text, 1, stop - 1)
        local line = concat(partial)
        self.partial = {}
        if line ~= "" then
            self.problem = take_line(self, line)
            if self.problem then
                return
            end
        end
        pos = stop + 1
    end
    while pos <= length do
        local stop = find(text, "\n", pos, true)
        if not stop then
            self.partial[1] = sub(text, pos)
            return
        end
        if stop > pos then
            local problem = take_line(self, sub(text, pos, stop - 1))
            if problem then
                self.problem = problem
                return
            end
        end
        pos = stop + 1
    end
end


-- Returns version, base, routes (id → {raw, hash}), removed ids; or nil and a message.
function Reader:finish()
    if not self.problem and self.partial[1] then
        -- The last line needs no newline.
        local line = concat(self.partial)
        self.partial = {}
        if line ~= "" then
            self.problem = take_line(self, line)
        end
    end
    if self.problem then
        return nil, self.problem
    end
    local header = self.header
    if header == nil then
        return nil, "empty body"
    end
    if type(header.version) ~= "string" or header.version == "" then
        return nil, "version must be a non-empty string"
    end
    local base = header.base
    if base == json_null then
        base = nil
    elseif base ~= nil and type(base) ~= "string" then
        return nil, "base must be a string or null"
    end
    return header.version, base, self.routes, self.removed
end


-- A whole push at once (a buffered body, the snapshot file).
function _M.parse(body)
    local reader = _M.reader()
    reader:feed(body)
    return reader:finish()
end


return _M
