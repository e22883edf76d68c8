// request_var.lua reads nginx variables by index or by their handler, each
// name resolved once against nginx's own structures. Real nginx: for every
// kind of name the request path and the policies read (indexed, named but
// not indexed, by prefix, unknown, asked in capitals), the value read that
// way must be the one ngx.var gives, for requests that have the header,
// cookie or argument, have it twice, or lack it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';

let node: NginxNode;

const NAMES = [
  'host', 'http_host', 'uri', 'binary_remote_addr', 'edgeroute_connection', 'request_uri',
  'http_user_agent', 'http_cookie', 'remote_addr',
  'cookie_uid', 'cookie_beta', 'cookie_grey', 'cookie_absent',
  'http_x_canary', 'http_x_device_model', 'http_x_absent', 'HTTP_X_Canary',
  'arg_ab', 'arg_absent', 'no_such_variable',
];

function withProbe(conf: string): string {
  const admin = '        server_name edgeroute-admin;\n';
  if (!conf.includes(admin)) throw new Error('the template changed: update this test');
  return conf.replace(
    admin,
    `${admin}        location = /test/vars {
            content_by_lua_block {
                local request_var = require "edgeroute.request_var"
                local cjson = require "cjson"
                local out = {}
                for name in string.gmatch(ngx.var.arg_names, "[^,]+") do
                    out[name] = {
                        direct = request_var.get(name) or cjson.null,
                        ngx_var = ngx.var[name] or cjson.null,
                        how = request_var.resolution(name) or cjson.null,
                    }
                end
                ngx.say(cjson.encode(out))
            }
        }
        location = /test/write {
            content_by_lua_block {
                local request_var = require "edgeroute.request_var"
                local cjson = require "cjson"
                local out = {}
                request_var.writer("edgeroute_version")("grey")
                out.version = ngx.var.edgeroute_version
                out.version_how = request_var.resolution("edgeroute_version")
                -- $args has a set handler: writing it changes the request's arguments.
                request_var.writer("args")("x=2")
                out.args, out.arg_x = ngx.var.args, ngx.var.arg_x
                -- $host cannot be set: the write fails as through ngx.var, and $host is untouched.
                local ok, err = pcall(request_var.writer("host"), "elsewhere")
                out.host_written, out.host_error, out.host = ok, tostring(err), ngx.var.host
                ngx.say(cjson.encode(out))
            }
        }
`,
  );
}

interface Read {
  direct: string | null;
  ngx_var: string | null;
  how: string | null;
}

/** One request written by hand: headers repeated and `Upgrade` as sent, which HTTP clients do not allow. */
function rawGet(url: string, path: string, headers: Array<[string, string]>): Promise<string> {
  const { hostname, port } = new URL(url);
  const lines = [`GET ${path} HTTP/1.1`, 'Host: edgeroute-admin', ...headers.map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''];
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(lines.join('\r\n')));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

async function readVars(path: string, headers: Array<[string, string]>): Promise<Record<string, Read>> {
  const reply = await rawGet(node.adminUrl, `${path}${path.includes('?') ? '&' : '?'}names=${NAMES.join(',')}`, headers);
  expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
  return JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, '')) as Record<string, Read>;
}

beforeAll(async () => {
  node = await startNginxNode({ workerProcesses: 1, errorLogLevel: 'warn', editConf: withProbe });
}, 60_000);

afterAll(async () => {
  await node?.process.stop();
});

describe('nginx variables read by index or handler (request_var.lua)', () => {
  const requests: Array<{ label: string; path: string; headers: Array<[string, string]> }> = [
    {
      label: 'every header, cookie and argument present',
      path: '/test/vars?ab=b&x=1',
      headers: [['user-agent', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)'], ['cookie', 'uid=u-1; Beta=yes-please'], ['x-canary', 'always'], ['x-device-model', 'MI 9'], ['upgrade', 'websocket'], ['connection', 'upgrade']],
    },
    {
      label: 'headers and cookies sent twice',
      path: '/test/vars?ab=a&ab=b',
      headers: [['cookie', 'uid=u-2'], ['cookie', 'grey=1; beta=no'], ['x-canary', 'first'], ['x-canary', 'second']],
    },
    { label: 'none of them', path: '/test/vars', headers: [] },
  ];

  for (const { label, path, headers } of requests) {
    it(`reads what ngx.var reads: ${label}`, async () => {
      const reads = await readVars(path, headers);
      for (const name of NAMES) {
        expect({ name, value: reads[name]?.direct }).toEqual({ name, value: reads[name]?.ngx_var });
      }
      // Which values were present: so that a request that reached nothing cannot pass.
      if (label.startsWith('every')) {
        expect(reads.cookie_beta?.direct).toBe('yes-please');
        expect(reads.http_x_canary?.direct).toBe('always');
        expect(reads.HTTP_X_Canary?.direct).toBe('always');
        expect(reads.arg_ab?.direct).toBe('b');
        expect(reads.edgeroute_connection?.direct).toBe('upgrade');
      }
      if (label.startsWith('none')) {
        expect(reads.cookie_uid?.direct).toBeNull();
        expect(reads.http_x_canary?.direct).toBeNull();
      }
    });
  }

  it('writes a `set` variable, a variable with a set handler, and refuses one that cannot be set, as ngx.var does', async () => {
    const reply = await rawGet(node.adminUrl, '/test/write?x=1', []);
    expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    const out = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, '')) as Record<string, unknown>;
    expect(out).toMatchObject({ version: 'grey', version_how: 'index', args: 'x=2', arg_x: '2', host_written: false, host: 'edgeroute-admin' });
    expect(out.host_error).toMatch(/not changeable/);
  });

  it('resolves names by index, by handler or (for a name nginx does not know) by name, and says so', async () => {
    const reads = await readVars('/test/vars', []);
    // nginx.conf uses these: indexed.
    for (const name of ['host', 'http_host', 'edgeroute_connection']) expect({ name, how: reads[name]?.how }).toEqual({ name, how: 'index' });
    // By prefix, or named and not indexed: the handler.
    for (const name of ['cookie_uid', 'http_x_canary', 'arg_ab', 'http_user_agent']) expect({ name, how: reads[name]?.how }).toEqual({ name, how: 'handler' });
    expect(reads.no_such_variable?.how).toBe('name');
    const status = await fetch(`${node.adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${node.adminToken}` } });
    expect(((await status.json()) as { variable_reads?: unknown }).variable_reads).toBe('resolved');
    expect(node.process.errorLog()).not.toMatch(/variables are read by name|differs from its lookup by name/);
  });
});
