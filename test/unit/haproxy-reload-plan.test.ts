import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readConfRecord } from '../../agent/dataplane/haproxy/conf-record.js';
import { haproxyConfFiles, renderHaproxyConf } from '../../agent/dataplane/haproxy/render.js';
import { agentServers, grownPool, hasNeeds, mapFileText, planReload } from '../../agent/dataplane/haproxy/reload-plan.js';
import type { StatReport } from '../../agent/dataplane/haproxy/runtime-plan.js';
import { isStopping } from '../../agent/dataplane/haproxy/worker-watch.js';

const dirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-reload-plan-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const server = (backend: string, name: string, status = 'no check', address = '10.0.0.1', port = 31000, weight = 256) => ({ backend, name, address, port, weight, status, busy: 0 });

describe('planReload', () => {
  const stat: StatReport = {
    pool: ['pool-1', 'pool-2'],
    tcpPool: ['tcp-pool-1'],
    servers: [server('pool-1', 'ta1'), server('pool-1', 'tb2', 'DRAIN'), server('pool-2', 'tc3', 'MAINT'), server('tcp-pool-1', 'td4', 'UP', 'fd00::1', 9000, 12)],
  };

  it('doubles a pool that ran out, or grows it by what waits when more', () => {
    expect(grownPool(64, 1)).toBe(128);
    expect(grownPool(2, 3)).toBe(5);
    expect(grownPool(0, 2)).toBe(2);
    expect(grownPool(8, 0)).toBe(8);
  });

  it('carries the servers that route now (not those draining or in maintenance) into their backends', () => {
    const plan = planReload(stat, { http: 1, tcp: 0, ports: [] }, { tcpBackendPool: 32, extraTcpPorts: [], tcpSection: true });
    expect(plan.backendPool).toBe(4);
    expect(plan.tcpBackendPool).toBe(1);
    expect(plan.carried).toBe(2);
    expect(plan.servers.get('pool-1')).toEqual([{ name: 'ta1', address: '10.0.0.1:31000', weight: 256 }]);
    expect(plan.servers.get('pool-2')).toBeUndefined();
    expect(plan.servers.get('tcp-pool-1')).toEqual([{ name: 'td4', address: '[fd00::1]:9000', weight: 12 }]);
  });

  it('adds the ports that wait to those recorded; a node without TCP gets the recorded TCP pool', () => {
    const plan = planReload({ ...stat, tcpPool: [] }, { http: 0, tcp: 1, ports: [7000, 6000] }, { tcpBackendPool: 32, extraTcpPorts: [6000, 5000], tcpSection: false });
    expect(plan.extraTcpPorts).toEqual([5000, 6000, 7000]);
    expect(plan.tcpBackendPool).toBe(32);
    expect(plan.backendPool).toBe(2);
    expect(hasNeeds({ http: 0, tcp: 0, ports: [] })).toBe(false);
  });

  it("reads the agent's servers from show stat in any backend, whatever its pool", () => {
    const csv = [
      '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_connections,',
    ];
    const row = (px: string, sv: string, status: string, addr: string, uweight: number) => {
      const f = Array.from({ length: csv[0]!.split(',').length }, () => '');
      const h = csv[0]!.replace(/^# /, '').split(',');
      f[h.indexOf('pxname')] = px;
      f[h.indexOf('svname')] = sv;
      f[h.indexOf('status')] = status;
      f[h.indexOf('addr')] = addr;
      f[h.indexOf('uweight')] = String(uweight);
      return f.join(',');
    };
    csv.push(row('pool-lc-2', 'tab12', 'no check', '10.0.0.9:31000', 40), row('pool-lc-2', 'BACKEND', 'UP', '', 0), row('tcp-pool-1', 'tcd34', 'DRAIN', '[fd00::2]:9000', 7), row('edgeroute-lua', 'x', 'UP', '1.2.3.4:5', 1));
    const servers = agentServers(csv.join('\n'));
    expect(servers.map((s) => `${s.backend}/${s.name} ${s.address}:${s.port} ${s.weight} ${s.status}`)).toEqual(['pool-lc-2/tab12 10.0.0.9:31000 40 no check', 'tcp-pool-1/tcd34 fd00::2:9000 7 DRAIN']);
    const plan = planReload({ pool: [], tcpPool: [], servers: [] }, { http: 0, tcp: 0, ports: [] }, { tcpBackendPool: 0, extraTcpPorts: [], tcpSection: false }, servers);
    expect(plan.servers.get('pool-lc-2')).toEqual([{ name: 'tab12', address: '10.0.0.9:31000', weight: 40 }]);
    expect(plan.carried).toBe(1);
  });

  it('writes map files as HAProxy loads them', () => {
    expect(mapFileText(new Map([['a.test', 'pool-1'], ['b.test', 'pool-2']]))).toBe('a.test pool-1\nb.test pool-2\n');
  });

  it("tells a worker left by a reload from `show info`'s Stopping field", () => {
    expect(isStopping('Pid: 12\nStopping: 1\n')).toBe(true);
    expect(isStopping('Pid: 12\nStopping: 0\n')).toBe(false);
  });
});

describe('haproxy-conf records what it rendered with, and renders servers and extra TCP ports', () => {
  it('haproxy-conf.json gives back the options, which render the same haproxy.cfg', () => {
    const dir = scratch();
    const first = renderHaproxyConf({ outDir: dir, listen: ['127.0.0.1:8080'], backendPool: 3, tcpPorts: '10000-10010', tcpBackendPool: 2, haproxy: '/usr/sbin/haproxy' });
    const record = readConfRecord(dir);
    expect(record).toMatchObject({ outDir: dir, listen: ['127.0.0.1:8080'], backendPool: 3, tcpPorts: '10000-10010', tcpBackendPool: 2, haproxy: '/usr/sbin/haproxy', extraTcpPorts: [] });
    const again = haproxyConfFiles(record);
    expect(again.files.find((f) => f.path === again.confPath)!.content).toBe(readFileSync(first.confPath, 'utf8'));
  });

  it('declares carried servers in their backends and binds extra TCP ports, published for the agent', () => {
    const dir = scratch();
    const files = haproxyConfFiles({
      outDir: dir,
      listen: ['127.0.0.1:8080'],
      backendPool: 2,
      tcpPorts: '10000-10010',
      extraTcpPorts: [12000, 10005],
      servers: new Map([['pool-2', [{ name: 'tabc123', address: '10.0.0.7:31000', weight: 9 }]]]),
    });
    const conf = files.files.find((f) => f.path === files.confPath)!.content;
    expect(conf).toMatch(/backend pool-2\n(.*\n)*?\s+server tabc123 10\.0\.0\.7:31000 weight 9 pool-max-conn -1 pool-purge-delay 500ms\n/);
    expect(conf).toContain('bind 127.0.0.1:10000-10010\n');
    // 10005 is inside the range: no second bind.
    expect(conf).toContain('bind 127.0.0.1:12000\n');
    expect(conf).not.toContain('bind 127.0.0.1:10005');
    expect(conf).toContain('set-var proc.edgeroute_tcp_extra_ports str(12000)');
    expect(files.tcp?.extraPorts).toEqual([12000]);
  });

  it('binds extra TCP ports on a node rendered without --tcp-ports', () => {
    const files = haproxyConfFiles({ outDir: scratch(), listen: ['127.0.0.1:8080'], extraTcpPorts: [12000] });
    const conf = files.files.find((f) => f.path === files.confPath)!.content;
    expect(conf).toContain('bind 127.0.0.1:12000\n');
    expect(conf).not.toContain('edgeroute_tcp_ports_from');
    expect(files.tcp).toMatchObject({ from: null, to: null, extraPorts: [12000], pool: 32 });
  });

  it('refuses a server it cannot write safely', () => {
    expect(() => haproxyConfFiles({ outDir: scratch(), listen: ['8080'], servers: new Map([['pool-1', [{ name: 'x y', address: '10.0.0.1:1', weight: 1 }]]]) })).toThrow(/cannot write server/);
  });
});
