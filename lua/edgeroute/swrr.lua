-- Smooth weighted round robin (the algorithm of nginx's own upstream module):
-- every pick raises each peer by its weight and lowers the chosen one by the
-- total, which spreads a 5:1:1 weighting as a,a,b,a,c,a,a instead of bursts.
-- That is a pass over every peer per request. With equal weights (every task
-- of an app past its warm-up, which is most of the time) it picks the peers
-- in array order, one after another, so a cursor does the same in constant
-- time: a 100-task app costs what a 2-task app does.

local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }


-- peers: array of { address = "127.0.0.1", port = 8080, weight = 100, id = "task" }
function _M.new(peers)
    local total = 0
    local uniform = true
    local first = peers[1]
    for i = 1, #peers do
        local peer = peers[i]
        peer.current = 0
        total = total + peer.weight
        if peer.weight ~= first.weight then
            uniform = false
        end
    end
    return setmetatable({ peers = peers, count = #peers, total = total, uniform = uniform and #peers > 0, cursor = 1 }, mt)
end


-- Returns the chosen peer. `tried` (nil on a first attempt) is a set of
-- peers that already failed this request; they are skipped while another
-- peer remains.
function _M.pick(self, tried)
    local peers = self.peers
    if tried == nil and self.uniform then
        local i = self.cursor
        self.cursor = i < self.count and i + 1 or 1
        return peers[i]
    end
    local best, fallback
    for i = 1, self.count do
        local peer = peers[i]
        peer.current = peer.current + peer.weight
        if tried ~= nil and tried[peer] then
            if fallback == nil or peer.current > fallback.current then
                fallback = peer
            end
        elseif best == nil or peer.current > best.current then
            best = peer
        end
    end
    if best == nil then
        best = fallback
    end
    if best ~= nil then
        best.current = best.current - self.total
    end
    return best
end


return _M
