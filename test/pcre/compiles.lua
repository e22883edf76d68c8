-- Reads one pattern per line and answers, per line, whether PCRE 8 compiles
-- it ("OK") or not ("ERR <message>"). This is libpcre.so.3, the library
-- the plugin's ngx.re links, called as ngx.re compiles (no UTF mode).
local ffi = require "ffi"

ffi.cdef [[
void *pcre_compile(const char *pattern, int options, const char **errptr,
                   int *erroffset, const unsigned char *tableptr);
void pcre_free_compiled(void *code) asm("free");
]]

local pcre = ffi.load("libpcre.so.3")
local message = ffi.new("const char *[1]")
local offset = ffi.new("int[1]")

for pattern in io.lines() do
    local code = pcre.pcre_compile(pattern, 0, message, offset, nil)
    if code ~= nil then
        ffi.C.pcre_free_compiled(code)
        io.write("OK\n")
    else
        io.write("ERR ", ffi.string(message[0]), "\n")
    end
end
