#!/usr/bin/env bash
# Makes sure the system packages edgeroute runs on are present: nginx with the
# Lua module (Debian's nginx-extras), lua-cjson, lua-resty-redis, HAProxy
# (Debian's haproxy 2.6, for HAProxy routing nodes) and redis-server, plus
# wrk, busted and LuaJIT for the tests and benchmarks, and Debian's pebble (an
# ACME test server with its mock DNS, pebble-challtestsrv) for the ACME tests.
# Installs them with apt-get when it can; otherwise says what to run.
#
# LuaJIT comes from luajit2 (OpenResty's branch): Debian's plain `luajit`
# conflicts with the library nginx's Lua module links, and installing it
# makes apt remove nginx-extras.
#
# `--runtime` installs only what a routing node runs (nginx with the Lua
# module, lua-cjson, lua-resty-redis): no Redis server (the fleet shares one,
# elsewhere), no test or benchmark tools, no browser, no HAProxy.
#
# `--runtime-haproxy` installs only what an HAProxy routing node runs
# (`edgeroute haproxy-conf`): HAProxy, and no nginx. A routing node runs nginx
# or HAProxy, never both.
set -euo pipefail

RUNTIME_PACKAGES=(nginx-extras lua-nginx-redis lua-cjson)
HAPROXY_PACKAGES=(haproxy)
PACKAGES=("${RUNTIME_PACKAGES[@]}" "${HAPROXY_PACKAGES[@]}" redis-server wrk lua-busted lua5.2 luajit2 chromium pebble valgrind)
RUNTIME_ONLY=false
MODE=full
case "${1:-}" in
  --runtime)
    RUNTIME_ONLY=true
    PACKAGES=("${RUNTIME_PACKAGES[@]}")
    ;;
  --runtime-haproxy)
    MODE=haproxy
    PACKAGES=("${HAPROXY_PACKAGES[@]}")
    ;;
esac

have_haproxy() {
  [ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1
}

have_all() {
  if [ "$MODE" = haproxy ]; then
    have_haproxy
    return
  fi
  [ -x /usr/sbin/nginx ] || return 1
  [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || return 1
  [ -f /usr/lib/nginx/modules/ndk_http_module.so ] || return 1
  [ -f /usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so ] || ls /usr/lib/*/lua/5.1/cjson.so >/dev/null 2>&1 || return 1
  [ -f /usr/share/lua/5.1/nginx/redis.lua ] || [ -f /usr/share/lua/5.1/resty/redis.lua ] || return 1
  [ "$RUNTIME_ONLY" = true ] && return 0
  have_haproxy || return 1
  command -v redis-server >/dev/null 2>&1 || return 1
  command -v wrk >/dev/null 2>&1 || return 1
  command -v busted >/dev/null 2>&1 || return 1
  command -v luajit >/dev/null 2>&1 || return 1
  # busted runs the Lua of HAProxy nodes (5.3 inside HAProxy) on Lua 5.2: test/lua-haproxy.
  command -v lua5.2 >/dev/null 2>&1 || return 1
  command -v chromium >/dev/null 2>&1 || return 1
  # test/integration/acme.test.ts: the ACME directory and its mock DNS.
  command -v pebble >/dev/null 2>&1 || return 1
  command -v pebble-challtestsrv >/dev/null 2>&1 || return 1
  # bench/instructions.ts: the request path counted in instructions.
  command -v valgrind >/dev/null 2>&1 || return 1
  command -v callgrind_control >/dev/null 2>&1 || return 1
}

if have_all; then
  exit 0
fi

# OpenResty users bring their own nginx; they still need redis-server (and
# HAProxy, for the HAProxy tests).
if [ "$MODE" = full ] && [ -x /usr/local/openresty/nginx/sbin/nginx ] && command -v redis-server >/dev/null 2>&1 && { [ "$RUNTIME_ONLY" = true ] || have_haproxy; }; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "edgeroute: this is not a Debian/Ubuntu machine. Install nginx with the Lua module" >&2
  echo "  (OpenResty), lua-cjson, lua-resty-redis and redis-server, then run this again." >&2
  echo "  The tests also need HAProxy, wrk, busted, LuaJIT, Lua 5.2, chromium, pebble and valgrind" >&2
  echo "  (Let's Encrypt's ACME test server: pebble and pebble-challtestsrv on the PATH)." >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
  else
    echo "edgeroute: missing system packages and not root. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${PACKAGES[*]}" >&2
    exit 1
  fi
fi

echo "edgeroute: installing ${PACKAGES[*]} ..."
# Keep the packages from starting their own nginx on :80, HAProxy, and redis on :6379.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
if ! have_all; then
  echo "edgeroute: packages installed but one is still missing (nginx's Lua module, haproxy, redis-server, or a test tool: wrk, busted, luajit, lua5.2, chromium, pebble, valgrind)" >&2
  if [ "$MODE" = full ] && [ "$RUNTIME_ONLY" = false ] && ! command -v pebble >/dev/null 2>&1; then
    echo "  pebble is in Debian 12 (bookworm) and later; elsewhere install it from https://github.com/letsencrypt/pebble (pebble and pebble-challtestsrv)" >&2
  fi
  exit 1
fi
echo "edgeroute: system packages ready."
