-- Least connections: the peer with the fewest requests in flight for its
-- weight. Counts live in a shared dict of their own (an increment in a full
-- dict evicts other keys, which must never be a route) so that every worker
-- of the node sees the others' requests (a per-worker count would let two workers pile
-- onto the same slow task). Equal scores are broken by a rotating start, so
-- idle peers share requests evenly.
--
-- Comparing every task costs a shared-dict read per task per request (about
-- 800 instructions each: a 100-task app made a request cost 3.4 times a
-- round-robin one). Above EXACT_MAX tasks, two tasks chosen at random are
-- compared instead, the power of two choices (Envoy's least-request
-- balancer does the same): a request never goes to the busier of the two,
-- so a slow task is rarely chosen, at two reads whatever the app's size.

local config = require "edgeroute.config"

local ngx = ngx
local setmetatable = setmetatable
local random = math.random
local randomseed = math.randomseed

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

-- Up to this many tasks, every one is compared.
local EXACT_MAX = 4

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


-- The peer's requests in flight, plus this one, for its weight.
local function score(counts, peer)
    return ((counts:get(peer.lc_key) or 0) + 1) / peer.weight
end


-- Returns the chosen peer, skipping the peers in `tried` while another remains.
function _M.pick(self, tried)
    local peers, count = self.peers, self.count
    local counts = dict()
    if tried == nil and count > EXACT_MAX then
        local i = random(count)
        local j = random(count - 1)
        if j >= i then
            j = j + 1
        end
        local first, second = peers[i], peers[j]
        if score(counts, second) < score(counts, first) then
            return second
        end
        return first
    end
    local start = self.start % count
    self.start = start + 1
    local best, best_score, fallback
    for k = 0, count - 1 do
        local peer = peers[(start + k) % count + 1]
        if tried ~= nil and tried[peer] then
            fallback = fallback or peer
        else
            local peer_score = score(counts, peer)
            if best == nil or peer_score < best_score then
                best, best_score = peer, peer_score
            end
        end
    end
    return best or fallback
end


-- Workers fork from one master: each draws its own random choices.
function _M.init_worker()
    randomseed(ngx.now() * 1000 + ngx.worker.pid())
end


function _M.enter(peer)
    dict():incr(peer.lc_key, 1, 0)
end


function _M.leave(peer)
    dict():incr(peer.lc_key, -1, 0)
end


return _M
