/** Which nginx build will load the plugin: Debian's nginx-extras or OpenResty. */
import { existsSync } from 'node:fs';

export type Flavor = 'debian' | 'openresty';

const DEBIAN_MODULES = '/usr/lib/nginx/modules';
const OPENRESTY_NGINX = '/usr/local/openresty/nginx/sbin/nginx';

export function detectFlavor(): Flavor | null {
  if (existsSync(`${DEBIAN_MODULES}/ngx_http_lua_module.so`)) return 'debian';
  if (existsSync(OPENRESTY_NGINX)) return 'openresty';
  return null;
}

/** Absolute paths: `nginx -p DIR` would resolve Debian's relative module paths under DIR. */
export function moduleLines(flavor: Flavor): string[] {
  if (flavor === 'openresty') return [];
  // NDK first, or the Lua module fails with "undefined symbol: ndk_set_var_value".
  return [`${DEBIAN_MODULES}/ndk_http_module.so`, `${DEBIAN_MODULES}/ngx_http_lua_module.so`];
}

export function defaultNginxBinary(flavor: Flavor): string {
  return flavor === 'openresty' ? OPENRESTY_NGINX : '/usr/sbin/nginx';
}
