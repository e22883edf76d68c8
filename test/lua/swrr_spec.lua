package.path = "lua/?.lua;" .. package.path

local swrr = require "edgeroute.swrr"

local function peers_of(weights)
    local peers = {}
    for i, w in ipairs(weights) do
        peers[i] = { id = "t" .. i, weight = w }
    end
    return peers
end

-- nginx's smooth weighted round robin, a pass over every peer each pick.
local function reference(weights, picks)
    local current, total, out = {}, 0, {}
    for i, w in ipairs(weights) do
        current[i] = 0
        total = total + w
    end
    for n = 1, picks do
        local best
        for i, w in ipairs(weights) do
            current[i] = current[i] + w
            if best == nil or current[i] > current[best] then
                best = i
            end
        end
        current[best] = current[best] - total
        out[n] = "t" .. best
    end
    return out
end

local function picked(balancer, picks, tried)
    local out = {}
    for n = 1, picks do
        out[n] = balancer:pick(tried).id
    end
    return out
end

describe("smooth weighted round robin", function()
    it("picks as nginx's algorithm does, with equal weights (by a cursor) and unequal ones", function()
        for _, weights in ipairs({ { 1 }, { 100, 100 }, { 7, 7, 7 }, { 1, 1, 1, 1, 1, 1, 1 }, { 5, 1, 1 }, { 100, 1, 50, 100 }, { 3, 3, 4 } }) do
            local balancer = swrr.new(peers_of(weights))
            assert.same(reference(weights, 5 * #weights + 3), picked(balancer, 5 * #weights + 3))
        end
        assert.same({ "t1", "t1", "t2", "t1", "t3", "t1", "t1" }, picked(swrr.new(peers_of({ 5, 1, 1 })), 7))
    end)

    it("skips peers that failed this request, whatever the weights, and falls back to one of them when all have", function()
        for _, weights in ipairs({ { 10, 10, 10 }, { 10, 20, 30 } }) do
            local peers = peers_of(weights)
            local balancer = swrr.new(peers)
            for _ = 1, 20 do
                local got = balancer:pick({ [peers[1]] = true, [peers[3]] = true })
                assert.equal("t2", got.id)
            end
            local all = { [peers[1]] = true, [peers[2]] = true, [peers[3]] = true }
            assert.is_not_nil(all[balancer:pick(all)])
        end
    end)

    it("goes on in turn after a retry among equal weights", function()
        local peers = peers_of({ 1, 1, 1 })
        local balancer = swrr.new(peers)
        assert.equal("t1", balancer:pick(nil).id)
        assert.are_not.equal("t2", balancer:pick({ [peers[2]] = true }).id)
        assert.same({ "t2", "t3", "t1", "t2" }, picked(balancer, 4))
    end)
end)
