package.path = "lua/?.lua;" .. package.path
local json = require "edgeroute.policy.json"

-- The plugin decodes policies with this, not cjson: found by fuzzing, cjson
-- took NaN, 0x10, 1., raw tabs and "[]" for "{}", so policies the CLI refuses
-- loaded in nginx, and the other way round.
describe("strict JSON for policies", function()
    for _, text in ipairs({
        '{"v":NaN}', '{"v":Infinity}', '{"v":-Infinity}', '{"v":0x10}', '{"v":-0x10}', '{"v":01}', '{"v":-01}',
        '{"v":1.}', '{"v":.5}', '{"v":-.5}', '{"v":+1}', '{"v":1e}', '{"v":-}', '{"s":"a\tb"}', '{"s":"a\nb"}',
        '{"s":"\\ud800"}', '{"s":"\\udc00"}', '{"s":"\\ud800\\u0041"}', '{"s":"\\x41"}', '{"s":"\\uZZZZ"}',
        '{"a":1,}', '[1,]', "{'a':1}", '{"a":1} x', '{"a":1}\0', '\239\187\191{}', '\f{}', '', ' ', '{"a" 1}',
        '{"s":"\255"}', '{"s":"\192\175"}', '{"s":"\237\160\128"}', 'nul', 'tru', '"unterminated',
    }) do
        local shown = text:gsub("[%c\128-\255]", function(c)
            return "\\" .. c:byte()
        end)
        it("refuses " .. shown, function()
            local value, err = json.decode(text)
            assert.is_nil(value)
            assert.is_string(err)
        end)
    end

    it("decodes what JSON.parse decodes", function()
        local value = assert(json.decode(' {"a": [1, -0, 1.5e3, 2E-2, true, false, null, "\\u00e9\\ud83d\\ude00\\/\\"\\\\\\n"], "b": {}} '))
        assert.are.same({ 1, -0, 1500, 0.02, true, false, json.null, "é😀/\"\\\n" }, { unpack(value.a) })
        assert.are.equal(1, #value.a - 7)
        assert.are.equal("object", json.kind(value.b))
    end)

    it("tells an empty array from an empty object", function()
        assert.are.equal("array", json.kind(json.decode("[]")))
        assert.are.equal("object", json.kind(json.decode("{}")))
        assert.is_nil(json.kind({}))
    end)

    it("keeps the last of duplicate keys, as JSON.parse does", function()
        assert.are.equal("grey", json.decode('{"d":"stable","d":"grey"}').d)
    end)

    it("refuses nesting deeper than 1000 levels, without overflowing", function()
        assert.is_table(json.decode(string.rep("[", 1000) .. string.rep("]", 1000)))
        local value, err = json.decode(string.rep("[", 10000) .. string.rep("]", 10000))
        assert.is_nil(value)
        assert.matches("nested deeper than 1000", err)
    end)
end)
