-- Smooth weighted round robin (the algorithm of nginx's own upstream module):
-- every pick raises each peer by its weight and lowers the chosen one by the
-- total, which spreads a 5:1:1 weighting as a,a,b,a,c,a,a instead of bursts.

local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }


-- peers: array of { address = "127.0.0.1", port = 8080, weight = 100, id = "task" }
function _M.new(peers)
    local total = 0
    for i = 1, #peers do
        local peer = peers[i]
        peer.current = 0
        total = total + peer.weight
    end
    return setmetatable({ peers = peers, count = #peers, total = total }, mt)
end


-- Returns the chosen peer. `tried` (nil on a first attempt) is a set of
-- peers that already failed this request; they are skipped while another
-- peer remains.
function _M.pick(self, tried)
    local peers = self.peers
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
