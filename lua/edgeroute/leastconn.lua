-- Least connections: the peer with the fewest requests in flight for its
-- weight. Counts live in a shared dict of their own (an increment in a full
-- dict evicts other keys, which must never be a route) so that every worker
-- of the node sees the others' requests (a per-worker count would let two workers pile
-- onto the same slow task). Equal scores are broken by a rotating start, so
-- idle peers share requests evenly.

local config = require "edgeroute.config"

local ngx = ngx
local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

-- One small key per task ever balanced this way; kept at 0 rather than
-- deleted, since a delete would race with another worker's increment.
local KEY_PREFIX = "lc:"

local shared


local function dict()
    if shared == nil then
        shared = ngx.shared[config.counters_dict_name]
    end
    return shared
end


-- peers: as for swrr.new; each gets the key of its counter.
function _M.new(peers)
    for i = 1, #peers do
        peers[i].lc_key = KEY_PREFIX .. peers[i].id
    end
    return setmetatable({ peers = peers, count = #peers, start = 0 }, mt)
end


-- Returns the chosen peer, skipping the peers in `tried` while another remains.
function _M.pick(self, tried)
    local peers, count = self.peers, self.count
    local counts = dict()
    local start = self.start % count
    self.start = start + 1
    local best, best_score, fallback
    for k = 0, count - 1 do
        local peer = peers[(start + k) % count + 1]
        if tried ~= nil and tried[peer] then
            fallback = fallback or peer
        else
            local score = ((counts:get(peer.lc_key) or 0) + 1) / peer.weight
            if best == nil or score < best_score then
                best, best_score = peer, score
            end
        end
    end
    return best or fallback
end


function _M.enter(peer)
    dict():incr(peer.lc_key, 1, 0)
end


function _M.leave(peer)
    dict():incr(peer.lc_key, -1, 0)
end


return _M
