package.path = "lua/?.lua;" .. package.path

local host_index = require "edgeroute.host_index"

local function app(id, vhosts, paths)
    return { id = id, vhosts = vhosts, paths = paths }
end

local function id_at(site, uri)
    local found, prefix = host_index.match(site, uri)
    return found and found.id, prefix
end


describe("host index", function()
    it("keeps an app alone at / as the site's only app", function()
        local index = host_index.new()
        local web = app("/web", { "a.test", "*.a.test" })
        host_index.add(index, web)
        assert.are.equal(web, index.hosts["a.test"].only)
        assert.are.equal(web, index.wildcards[".a.test"].only)
    end)

    it("matches the longest prefix at a / boundary", function()
        local index = host_index.new()
        host_index.add(index, app("/web", { "a.test" }))
        host_index.add(index, app("/api", { "a.test" }, { ["a.test"] = { "/api" } }))
        host_index.add(index, app("/v2", { "a.test" }, { ["a.test"] = { "/api/v2" } }))
        local site = index.hosts["a.test"]
        assert.is_nil(site.only)
        assert.are.same({ "/api", "/api" }, { id_at(site, "/api") })
        assert.are.same({ "/api", "/api" }, { id_at(site, "/api/x") })
        assert.are.same({ "/v2", "/api/v2" }, { id_at(site, "/api/v2/x") })
        assert.are.same({ "/api", "/api" }, { id_at(site, "/api/v2x") })
        assert.are.same({ "/web", "/" }, { id_at(site, "/apix") })
        assert.are.same({ "/web", "/" }, { id_at(site, "/") })
    end)

    it("finds the longest of many prefixes, past the three tried without a loop", function()
        local index = host_index.new()
        local prefixes = { "/a", "/a/b", "/a/b/c", "/a/b/c/d", "/x", "/y/z", "/long/prefix/here" }
        for _, prefix in ipairs(prefixes) do
            host_index.add(index, app(prefix, { "m.test" }, { ["m.test"] = { prefix } }))
        end
        local site = index.hosts["m.test"]
        local function longest(uri)
            local best
            for _, prefix in ipairs(prefixes) do
                local boundary = uri:sub(#prefix + 1, #prefix + 1)
                if uri:sub(1, #prefix) == prefix and (boundary == "" or boundary == "/") and (best == nil or #prefix > #best) then
                    best = prefix
                end
            end
            return best
        end
        for _, uri in ipairs({ "/a", "/a/", "/a/b", "/a/bc", "/a/b/c/d/e", "/a/b/c/dd", "/x/1", "/xx", "/y", "/y/z/", "/long/prefix/here/x", "/long/prefix", "/", "/z" }) do
            local found, prefix = id_at(site, uri)
            assert.are.equal(longest(uri), prefix, uri)
            assert.are.equal(longest(uri), found, uri)
        end
    end)

    it("serves nothing where no prefix matches", function()
        local index = host_index.new()
        host_index.add(index, app("/api", { "a.test" }, { ["a.test"] = { "/api" } }))
        assert.is_nil(id_at(index.hosts["a.test"], "/other"))
    end)

    it("removes only the entries still pointing at the app, and drops empty sites", function()
        local index = host_index.new()
        local old = app("/old", { "a.test" }, { ["a.test"] = { "/api" } })
        local new = app("/new", { "a.test" }, { ["a.test"] = { "/api" } })
        local web = app("/web", { "a.test", "b.test" })
        host_index.add(index, old)
        host_index.add(index, web)
        host_index.add(index, new)
        host_index.remove(index, old)
        assert.are.equal("/new", id_at(index.hosts["a.test"], "/api/x"))
        host_index.remove(index, web)
        assert.is_nil(index.hosts["b.test"])
        assert.are.equal("/new", id_at(index.hosts["a.test"], "/api"))
        assert.is_nil(id_at(index.hosts["a.test"], "/"))
        host_index.remove(index, new)
        assert.is_nil(index.hosts["a.test"])
    end)
end)
