/**
 * Reads an app's marathon-lb labels (HAPROXY_*) with marathon-lb's own
 * meanings (mesosphere/marathon-lb: config.py's label table, marathon_lb.py's
 * get_apps and config) and says them in edgeroute.* labels. Both data planes
 * then route them through the one label reader, as if the app carried those
 * labels, and the migration report can say what each label became. Pure.
 *
 * Port index 0 only: marathon-lb routes every service port of an app, which
 * edgeroute cannot yet (one port per app); the others are reported.
 */
import { EVERY_GROUP, GROUP_NAME, groupSelected, parseGroupList } from './groups.js';
import { LABEL, readRoutingLabels, SERVICE_PORT } from './labels.js';
import { ROUTE_LABEL } from './route-settings.js';
import { PORT_LABEL_PREFIX, readPortLabels } from './port-labels.js';
import { isCidr } from '../policy/cidr.js';
import { parseBasicAuth } from './basic-auth.js';
import { parseTcpBind } from './tcp-bind.js';
import type { HealthCheckSpec, InputProblem, MarathonApp } from './marathon-types.js';
import type { DeploymentMark } from './zdd-merge.js';

/** edgeroute.app's syntax (labels.ts). */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._\/-]{0,127}$/;

/**
 * What became of one marathon-lb label (or of a service port, which has none):
 * - mapped: it is routed as marathon-lb routes it, by the edgeroute labels in `note`;
 * - same: read, with nothing to say in edgeroute (a default, or ignored by marathon-lb too);
 * - differs: honoured, with a difference edgeroute makes on purpose;
 * - unsupported: not honoured (or only the nearest), so the app needs attention;
 * - bad: a value marathon-lb could not read either; ignored, the rest of the app routes.
 */
export type LabelFate = 'mapped' | 'same' | 'differs' | 'unsupported' | 'bad';

export interface LabelReading {
  /** The label's name, or "service port" / "port index N" for what no label names. */
  readonly label: string;
  readonly value: string;
  readonly fate: LabelFate;
  /** What it became (edgeroute labels), or why not and what to do instead. */
  readonly note: string;
}

export interface MarathonLbReading {
  /** The edgeroute.* labels that mean the same; null when marathon-lb would not route port 0 (or edgeroute refuses to, failing closed). */
  readonly labels: Readonly<Record<string, string>> | null;
  readonly readings: readonly LabelReading[];
  /** HTTP (by Host on the HTTP listeners) or TCP (on a port): marathon-lb's mode of port 0. */
  readonly mode: 'http' | 'tcp';
  /** The ports marathon-lb reads (0 and each with a service port), their groups, and whether this agent routes them. */
  readonly ports: readonly PortSelection[];
  /** A colour of a zdd blue/green deployment: the app is `group` (edgeroute.app), merged with its other colour. */
  readonly deployment: Omit<DeploymentMark, 'instances' | 'taskIds'> | null;
}

export interface PortSelection {
  readonly index: number;
  readonly groups: readonly string[];
  readonly selected: boolean;
}

const EDGEROUTE_PREFIX = 'edgeroute.';
const HAPROXY_PREFIX = 'HAPROXY_';
const PER_PORT = /^HAPROXY_(\d+)_(.+)$/;

/** Per-app overrides of marathon-lb's config templates (config.py, set_label): HAProxy config text edgeroute has no place for. */
const TEMPLATE_LABELS = new Set([
  'FRONTEND_HEAD', 'USERLIST_HEAD', 'BACKEND_REDIRECT_HTTP_TO_HTTPS', 'BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH', 'BACKEND_HEAD',
  'HTTP_FRONTEND_ACL', 'MAP_HTTP_FRONTEND_ACL', 'HTTP_FRONTEND_ACL_ONLY', 'MAP_HTTP_FRONTEND_ACL_ONLY', 'HTTP_FRONTEND_ROUTING_ONLY',
  'HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH', 'HTTP_FRONTEND_ACL_WITH_AUTH', 'HTTP_FRONTEND_ACL_WITH_PATH', 'HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH',
  'HTTP_FRONTEND_ACL_ONLY_WITH_PATH', 'HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH', 'HTTPS_FRONTEND_ACL_ONLY_WITH_PATH', 'HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH',
  'HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH', 'HTTP_FRONTEND_APPID_ACL', 'MAP_HTTP_FRONTEND_APPID_ACL', 'HTTPS_FRONTEND_ACL', 'MAP_HTTPS_FRONTEND_ACL',
  'HTTPS_FRONTEND_ACL_WITH_AUTH', 'HTTPS_FRONTEND_ACL_WITH_PATH', 'HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH', 'BACKEND_HTTP_OPTIONS', 'HTTP_BACKEND_PROXYPASS_GLUE',
  'HTTP_BACKEND_REVPROXY_GLUE', 'BACKEND_HSTS_OPTIONS', 'BACKEND_HTTP_HEALTHCHECK_OPTIONS', 'BACKEND_TCP_HEALTHCHECK_OPTIONS', 'BACKEND_STICKY_OPTIONS',
  'BACKEND_SERVER_OPTIONS', 'BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS', 'BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS', 'FRONTEND_BACKEND_GLUE',
  'HTTP_BACKEND_NETWORK_ALLOWED_ACL', 'TCP_BACKEND_NETWORK_ALLOWED_ACL',
]);

/** zdd.py's blue/green labels (bluegreen_deploy.py writes them). */
const DEPLOYMENT_LABELS = new Set(['DEPLOYMENT_GROUP', 'DEPLOYMENT_COLOUR', 'DEPLOYMENT_ALT_PORT', 'DEPLOYMENT_STARTED_AT', 'DEPLOYMENT_TARGET_INSTANCES', 'DEPLOYMENT_NEW_INSTANCES']);

/** marathon-lb's BALANCE is passed to HAProxy as it is; edgeroute balances round robin or by least connections. */
const NEAREST_BALANCE: Readonly<Record<string, { balance: 'roundrobin' | 'leastconn'; why: string }>> = {
  'static-rr': { balance: 'roundrobin', why: 'static-rr is weighted round robin without weight changes' },
  random: { balance: 'roundrobin', why: 'random spreads as round robin does' },
  first: { balance: 'leastconn', why: 'first fills one server before the next; least connections is the nearest' },
  source: { balance: 'roundrobin', why: 'hash-based affinity is not offered: set HAPROXY_0_STICKY=true for affinity by cookie' },
  uri: { balance: 'roundrobin', why: 'hash-based affinity is not offered: set HAPROXY_0_STICKY=true for affinity by cookie' },
  url_param: { balance: 'roundrobin', why: 'hash-based affinity is not offered: set HAPROXY_0_STICKY=true for affinity by cookie' },
  hdr: { balance: 'roundrobin', why: 'hash-based affinity is not offered: set HAPROXY_0_STICKY=true for affinity by cookie' },
  'rdp-cookie': { balance: 'roundrobin', why: 'hash-based affinity is not offered: set HAPROXY_0_STICKY=true for affinity by cookie' },
  hash: { balance: 'roundrobin', why: 'hash-based affinity is not offered: set HAPROXY_0_STICKY=true for affinity by cookie' },
};

const HTTP_CHECKS = new Set(['HTTP', 'HTTPS', 'MESOS_HTTP', 'MESOS_HTTPS']);

/** HAPROXY_{n}_AUTH: realm:user:crypted-password. */
const AUTH_LABEL = /^HAPROXY_\d+_AUTH$/;

/** realm:user:(hidden) for realm:user:HASH, else (hidden): what may be shown of an AUTH value. */
function hiddenHash(value: string): string {
  const fields = value.split(':');
  return fields.length === 3 ? `${fields[0]}:${fields[1]}:(hidden)` : '(hidden)';
}

export function hasEdgerouteLabels(labels: Readonly<Record<string, string>>): boolean {
  return Object.keys(labels).some((key) => key.startsWith(EDGEROUTE_PREFIX));
}

export function hasMarathonLbLabels(labels: Readonly<Record<string, string>>): boolean {
  return Object.keys(labels).some((key) => key.startsWith(HAPROXY_PREFIX));
}

/**
 * Whether an agent with --marathon-lb-labels reads this app by its
 * marathon-lb labels: it has no edgeroute.* label, and it has a marathon-lb
 * label or the agent routes every app ("*" routes even unlabelled apps'
 * service ports, as marathon-lb does).
 */
export function readsMarathonLbLabels(labels: Readonly<Record<string, string>>, selector: string | null): boolean {
  if (hasEdgerouteLabels(labels)) return false;
  return hasMarathonLbLabels(labels) || (selector !== null && parseGroupList(selector).includes(EVERY_GROUP));
}

/** marathon-lb's string_to_bool. */
function isTrue(value: string): boolean {
  return ['true', 't', 'yes', 'y'].includes(value.toLowerCase());
}

/** marathon-lb's get_health_check: the first check with a port, or the first at this port index. */
function healthCheckAt(checks: readonly HealthCheckSpec[] | undefined, portIndex: number): HealthCheckSpec | null {
  for (const check of checks ?? []) {
    if (check.port !== null) return check;
    if (check.portIndex === portIndex) return check;
  }
  return null;
}

export function readMarathonLbLabels(app: MarathonApp, selector: string | null): MarathonLbReading {
  const labels = app.labels;
  const readings: LabelReading[] = [];
  const seen = new Set<string>();
  const read = (label: string, fate: LabelFate, note: string, value = labels[label] ?? ''): void => {
    // An app-wide label (HAPROXY_GROUP) is read for every port: reported once.
    if (seen.has(label) && readings.some((r) => r.label === label)) return;
    seen.add(label);
    // A password hash is never shown (warnings, the report): realm and user are enough to find it.
    readings.push({ label, value: AUTH_LABEL.test(label) ? hiddenHash(value) : value, fate, note });
  };
  const out: Record<string, string> = {};
  const source = new Map<string, string>();
  const ports: PortSelection[] = [];
  let mode: 'http' | 'tcp' = 'tcp';
  let closed = false;
  // marathon-lb reads every service port (a port index without one is skipped), and port 0.
  const indexes = [0, ...(app.servicePorts ?? []).flatMap((port, i) => (i > 0 && port !== null ? [i] : []))];
  for (const n of indexes) {
    const groups = parseGroupList(labels[`HAPROXY_${n}_GROUP`] ?? labels.HAPROXY_GROUP ?? '');
    const selected = groupSelected(selector, groups);
    ports.push({ index: n, groups, selected });
    // Another agent's port: read (for its mode), but neither reported nor routed here.
    // Port n's notes name the edgeroute.port.n.* labels it becomes.
    const readN: typeof read = n === 0 ? read : (label, fate, note, value) => read(label, fate, note.replace(/\bedgeroute\.(?!port\.)(?=[a-z])/g, `${PORT_LABEL_PREFIX}${n}.`), value);
    const port = readPort(app, n, selected ? readN : (label) => void seen.add(label));
    if (n === 0) mode = port.mode;
    if (!selected) {
      read(`port index ${n}`, 'same', `in ${groups.length === 0 ? 'no group' : `group ${groups.join(',')}`}: another agent's to route`, '');
      continue;
    }
    if (port.failClosed) {
      closed = true;
      continue;
    }
    const prefix = n === 0 ? 'edgeroute.' : `${PORT_LABEL_PREFIX}${n}.`;
    for (const [key, value] of Object.entries(port.out)) {
      const name = `${prefix}${key.slice('edgeroute.'.length)}`;
      out[name] = value;
      source.set(name, port.source.get(key) ?? key);
    }
  }
  const readIndexes = new Set(ports.filter((p) => p.selected).map((p) => p.index));
  const deployment = readDeployment(labels, read);
  if (deployment !== null && Object.keys(out).length > 0) {
    out[LABEL.app] = deployment.group;
    source.set(LABEL.app, 'HAPROXY_DEPLOYMENT_GROUP');
  }

  // Everything else.
  const notes: Record<string, [LabelFate, string]> = {
    SSL_CERT: ['unsupported', 'certificates are per node: put it in the agent\'s --certs folder (nginx) or haproxy-conf --tls-cert (HAProxy)'],
    BIND_OPTIONS: ['unsupported', 'bind options are per node: haproxy-conf and nginx-conf set the listeners'],
    HTTP_BACKEND_REVPROXY_PATH: ['unsupported', 'Location headers are not rewritten: have the app send its own paths'],
    BACKEND_WEIGHT: ['same', 'not needed: the longest matching path prefix wins, whatever the order'],
    BACKEND_HEALTHCHECK_PORT_INDEX: ['differs', "edgeroute follows Marathon's health results, not HAProxy's own checks"],
  };
  for (const [key, value] of Object.entries(labels)) {
    if (seen.has(key) || !key.startsWith(HAPROXY_PREFIX)) continue;
    const perPort = PER_PORT.exec(key);
    const index = perPort ? Number(perPort[1]) : null;
    const name = perPort ? (perPort[2] ?? '') : key.slice(HAPROXY_PREFIX.length);
    if (index !== null && !readIndexes.has(index)) {
      const known = ports.some((p) => p.index === index);
      read(key, 'same', known ? `port index ${index} is another agent's to route` : `the app has no service port at index ${index}: ignored, as marathon-lb does`, value);
    } else if (perPort && TEMPLATE_LABELS.has(name)) read(key, 'unsupported', 'overrides a marathon-lb config template: HAProxy config text edgeroute cannot honour (the README says what to use instead)', value);
    else if (index !== null && notes[name]) {
      const [fate, note] = notes[name];
      read(key, fate, note, value);
    } else if (index === null && DEPLOYMENT_LABELS.has(name)) read(key, 'same', 'without HAPROXY_DEPLOYMENT_GROUP: ignored, as marathon-lb does', value);
    else if (index === null && name === 'GROUP') continue;
    else read(key, 'same', 'not a marathon-lb label: ignored, as marathon-lb does', value);
  }

  const result = Object.keys(out).length === 0 && closed ? null : checked(out, source, readings);
  return { labels: result, readings: sortReadings(readings), mode, ports, deployment: result?.[LABEL.app] === undefined ? null : deployment };
}

/** zdd.py's labels: the deployment group is the app, its colours merged (zdd-merge.ts). */
function readDeployment(labels: Readonly<Record<string, string>>, read: (label: string, fate: LabelFate, note: string) => void): MarathonLbReading['deployment'] {
  const raw = labels.HAPROXY_DEPLOYMENT_GROUP;
  if (raw === undefined) return null;
  const group = raw.trim().replace(/^\/+/, '');
  if (!APP_NAME.test(group)) {
    read('HAPROXY_DEPLOYMENT_GROUP', 'bad', 'is not an app name: ignored, each colour is its own app');
    return null;
  }
  read('HAPROXY_DEPLOYMENT_GROUP', 'mapped', `${LABEL.app}=${group}: its colours are one app, both colours' tasks served, the old colour's drained as the new one's become healthy (as marathon-lb merges them)`);
  const startedAt = Date.parse(labels.HAPROXY_DEPLOYMENT_STARTED_AT ?? '');
  if (labels.HAPROXY_DEPLOYMENT_STARTED_AT !== undefined) read('HAPROXY_DEPLOYMENT_STARTED_AT', Number.isNaN(startedAt) ? 'bad' : 'same', Number.isNaN(startedAt) ? 'is not a time: this colour counts as the older' : 'tells the newer colour');
  // marathon-lb drains towards TARGET_INSTANCES only when NEW_INSTANCES is there too, else towards 1.
  const target = labels.HAPROXY_DEPLOYMENT_NEW_INSTANCES !== undefined ? Number(labels.HAPROXY_DEPLOYMENT_TARGET_INSTANCES?.trim() ?? NaN) : 1;
  for (const key of ['HAPROXY_DEPLOYMENT_COLOUR', 'HAPROXY_DEPLOYMENT_TARGET_INSTANCES', 'HAPROXY_DEPLOYMENT_NEW_INSTANCES', 'HAPROXY_DEPLOYMENT_ALT_PORT']) {
    if (labels[key] !== undefined) read(key, 'same', key === 'HAPROXY_DEPLOYMENT_ALT_PORT' ? "the new colour's service port while both run (zdd.py's)" : 'read to merge the colours, as marathon-lb does');
  }
  return { group, startedAt: Number.isNaN(startedAt) ? null : startedAt, targetInstances: Number.isInteger(target) && target >= 0 ? target : 1 };
}

/** One port's marathon-lb labels said in edgeroute terms (its keys unprefixed). */
interface PortReading {
  readonly out: Record<string, string>;
  /** edgeroute label → the marathon-lb label it came from. */
  readonly source: Map<string, string>;
  readonly mode: 'http' | 'tcp';
  readonly failClosed: boolean;
}

function readPort(app: MarathonApp, n: number, read: (label: string, fate: LabelFate, note: string, value?: string) => void): PortReading {
  const labels = app.labels;
  const p = `HAPROXY_${n}_`;
  const at0 = (name: string): string | undefined => labels[`${p}${name}`];
  const out: Record<string, string> = {};
  const servicePortLabel = n === 0 ? 'service port' : `port index ${n}`;
  /** edgeroute label → the marathon-lb label it came from, to name it if the label reader refuses the value. */
  const source = new Map<string, string>();
  const set = (key: string, value: string, from: string): void => {
    out[key] = value;
    source.set(key, from);
  };
  let failClosed = false;

  // Groups: ${p}GROUP, the more specific, wins over HAPROXY_GROUP.
  const groupLabel = at0('GROUP') !== undefined ? `${p}GROUP` : labels.HAPROXY_GROUP !== undefined ? 'HAPROXY_GROUP' : null;
  if (groupLabel !== null) {
    const groups = parseGroupList(labels[groupLabel] ?? '');
    const bad = groups.length === 0 ? '' : groups.find((g) => !GROUP_NAME.test(g));
    if (bad !== undefined) read(groupLabel, 'bad', `has ${JSON.stringify(bad)}, which is not a group name: port ${n} is in no group`);
    else {
      set(LABEL.group, groups.join(','), groupLabel);
      read(groupLabel, 'mapped', `${LABEL.group}=${groups.join(',')}`);
    }
    if (groupLabel === `${p}GROUP` && labels.HAPROXY_GROUP !== undefined) read('HAPROXY_GROUP', 'same', `port ${n} takes ${p}GROUP, the more specific`);
  }

  const enabled = at0('ENABLED');
  if (enabled !== undefined) read(`${p}ENABLED`, isTrue(enabled) ? 'same' : 'mapped', isTrue(enabled) ? 'routed (the default)' : `port ${n} is not routed, as marathon-lb does`);
  if (enabled !== undefined && !isTrue(enabled)) failClosed = true;

  // Mode: marathon-lb's MarathonService takes http from an HTTP health check, the MODE label
  // overrides it, a vhost decides when neither did, and a health check at
  // BACKEND_HEALTHCHECK_PORT_INDEX overrides everything.
  const vhostRaw = at0('VHOST');
  const hosts = vhostRaw === undefined ? [] : vhostRaw.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '');
  let mode: 'http' | 'tcp' | null = healthCheckAt(app.healthChecks, n)?.protocol === 'HTTP' ? 'http' : null;
  const modeRaw = at0('MODE');
  if (modeRaw !== undefined) {
    const value = modeRaw.trim().toLowerCase();
    if (value === 'http' || value === 'tcp') {
      mode = value;
      read(`${p}MODE`, value === 'tcp' && hosts.length > 0 ? 'differs' : 'mapped', value === 'tcp' && hosts.length > 0 ? 'the vhost is routed over HTTP, the service port in TCP' : `${value} mode`);
    } else read(`${p}MODE`, 'bad', 'is not tcp or http: ignored');
  }
  if (mode === null && healthCheckAt(app.healthChecks, n) === null) {
    const index = at0('BACKEND_HEALTHCHECK_PORT_INDEX');
    const check = index !== undefined && /^\d+$/.test(index.trim()) ? healthCheckAt(app.healthChecks, Number(index)) : null;
    if (check?.protocol && HTTP_CHECKS.has(check.protocol)) mode = 'http';
  }
  mode ??= hosts.length > 0 ? 'http' : 'tcp';
  const byHost = mode === 'http' && hosts.length > 0;

  if (vhostRaw !== undefined) {
    if (hosts.length === 0) read(`${p}VHOST`, 'bad', 'is empty: ignored');
    else {
      set(LABEL.vhosts, hosts.join(','), `${p}VHOST`);
      read(`${p}VHOST`, 'mapped', `${LABEL.vhosts}=${hosts.join(',')}`);
    }
  }

  // Labels that act on HTTP requests: by Host they map; on an HTTP service port they would
  // need HTTP there, which edgeroute passes as TCP; in TCP mode marathon-lb ignores them too.
  const onHttp = (label: string, map: () => void): void => {
    if (byHost) map();
    else if (mode === 'http') read(label, 'unsupported', "applies on marathon-lb's HTTP service port; edgeroute passes that port through as TCP: give the app ${p}VHOST");
    else read(label, 'same', 'ignored in TCP mode, as marathon-lb does');
  };

  let paths: string[] = [];
  const pathRaw = at0('PATH');
  if (pathRaw !== undefined) {
    if (hosts.length === 0) read(`${p}PATH`, 'same', 'ignored without ${p}VHOST, as marathon-lb does');
    else
      onHttp(`${p}PATH`, () => {
        const tokens = pathRaw.split(/\s+/).filter((t) => t !== '');
        const flags = tokens.filter((t) => t.startsWith('-'));
        paths = tokens.filter((t) => !t.startsWith('-'));
        if (paths.length === 0) return read(`${p}PATH`, 'bad', 'names no path: ignored');
        set(ROUTE_LABEL.path, paths.join(','), `${p}PATH`);
        if (flags.length > 0) read(`${p}PATH`, 'unsupported', `${ROUTE_LABEL.path}=${paths.join(',')}; the flag(s) ${flags.join(' ')} are not honoured (paths match case-sensitively, as prefixes at a / boundary)`);
        else read(`${p}PATH`, 'mapped', `${ROUTE_LABEL.path}=${paths.join(',')}`);
      });
  }

  const proxypass = at0('HTTP_BACKEND_PROXYPASS_PATH');
  if (proxypass !== undefined)
    onHttp(`${p}HTTP_BACKEND_PROXYPASS_PATH`, () => {
      const strip = trimSlash(proxypass.trim());
      if (strip === '' ) return read(`${p}HTTP_BACKEND_PROXYPASS_PATH`, 'same', 'strips nothing');
      if (paths.length > 0 && paths.every((p) => trimSlash(p) === strip)) {
        set(ROUTE_LABEL.stripPath, 'true', `${p}HTTP_BACKEND_PROXYPASS_PATH`);
        return read(`${p}HTTP_BACKEND_PROXYPASS_PATH`, 'mapped', `${ROUTE_LABEL.stripPath}=true`);
      }
      read(`${p}HTTP_BACKEND_PROXYPASS_PATH`, 'unsupported', `edgeroute strips the matched path prefix only: set ${p}PATH to ${strip} (alone) for the same strip`);
    });

  const redirect = at0('REDIRECT_TO_HTTPS');
  if (redirect !== undefined) {
    if (!isTrue(redirect)) read(`${p}REDIRECT_TO_HTTPS`, 'same', 'no redirect (the default)');
    else if (hosts.length === 0) read(`${p}REDIRECT_TO_HTTPS`, 'same', 'ignored without ${p}VHOST, as marathon-lb does');
    else
      onHttp(`${p}REDIRECT_TO_HTTPS`, () => {
        set(ROUTE_LABEL.redirectHttps, 'true', `${p}REDIRECT_TO_HTTPS`);
        read(`${p}REDIRECT_TO_HTTPS`, 'mapped', `${ROUTE_LABEL.redirectHttps}=true`);
      });
  }

  // marathon-lb's backend: `redirect code 301 location {redirpath} if is_domain is_root` (HTTP mode, by vhost).
  const redir = at0('HTTP_BACKEND_REDIR');
  if (redir !== undefined) {
    const target = redir.trim();
    if (target === '') read(`${p}HTTP_BACKEND_REDIR`, 'same', 'redirects nothing');
    else if (hosts.length === 0) read(`${p}HTTP_BACKEND_REDIR`, 'same', `ignored without ${p}VHOST, as marathon-lb does`);
    else
      onHttp(`${p}HTTP_BACKEND_REDIR`, () => {
        set(ROUTE_LABEL.redirectRoot, target, `${p}HTTP_BACKEND_REDIR`);
        read(`${p}HTTP_BACKEND_REDIR`, 'mapped', `${ROUTE_LABEL.redirectRoot}=${target}`);
      });
  }

  // marathon-lb's backend: BACKEND_HSTS_OPTIONS (HTTP mode).
  const hsts = at0('USE_HSTS');
  if (hsts !== undefined) {
    if (!isTrue(hsts)) read(`${p}USE_HSTS`, 'same', 'no HSTS (the default)');
    else
      onHttp(`${p}USE_HSTS`, () => {
        set(ROUTE_LABEL.hsts, 'true', `${p}USE_HSTS`);
        read(`${p}USE_HSTS`, 'mapped', `${ROUTE_LABEL.hsts}=true`);
      });
  }

  const sticky = at0('STICKY');
  if (sticky !== undefined) {
    if (!isTrue(sticky)) read(`${p}STICKY`, 'same', 'not sticky (the default)');
    else
      onHttp(`${p}STICKY`, () => {
        set(ROUTE_LABEL.sticky, 'true', `${p}STICKY`);
        read(`${p}STICKY`, 'mapped', `${ROUTE_LABEL.sticky}=true`);
      });
  }

  const balanceRaw = at0('BALANCE');
  if (balanceRaw !== undefined) {
    const value = balanceRaw.trim().toLowerCase();
    const name = value.replace(/\(.*$/, '').split(/\s+/)[0] ?? '';
    const nearest = NEAREST_BALANCE[name];
    if (value === 'roundrobin') read(`${p}BALANCE`, 'same', 'round robin (the default)');
    else if (value === 'leastconn') {
      set(ROUTE_LABEL.balance, 'leastconn', `${p}BALANCE`);
      read(`${p}BALANCE`, 'mapped', `${ROUTE_LABEL.balance}=leastconn`);
    } else if (nearest) {
      if (nearest.balance === 'leastconn') set(ROUTE_LABEL.balance, 'leastconn', `${p}BALANCE`);
      read(`${p}BALANCE`, 'unsupported', `balanced by ${nearest.balance}, the nearest edgeroute offers (${nearest.why})`);
    } else read(`${p}BALANCE`, 'bad', 'is not an HAProxy balance algorithm: round robin');
  }

  const aclRaw = at0('BACKEND_NETWORK_ALLOWED_ACL');
  if (aclRaw !== undefined) {
    const entries = aclRaw.split(/\s+/).filter((e) => e !== '');
    const good = entries.filter((e) => isCidr(e));
    const bad = entries.filter((e) => !isCidr(e));
    if (!byHost) {
      read(`${p}BACKEND_NETWORK_ALLOWED_ACL`, 'unsupported', 'edgeroute does not filter TCP ports by client yet: the service port is not routed rather than open to everyone');
    } else if (good.length === 0) {
      failClosed = true;
      read(`${p}BACKEND_NETWORK_ALLOWED_ACL`, 'bad', 'names no IP address or CIDR: not routed rather than open to everyone');
    } else {
      set(ROUTE_LABEL.allowFrom, good.join(','), `${p}BACKEND_NETWORK_ALLOWED_ACL`);
      if (bad.length > 0) read(`${p}BACKEND_NETWORK_ALLOWED_ACL`, 'bad', `has ${bad.map((b) => JSON.stringify(b)).join(', ')}, not an IP address or CIDR: left out (${ROUTE_LABEL.allowFrom}=${good.join(',')})`);
      else read(`${p}BACKEND_NETWORK_ALLOWED_ACL`, 'mapped', `${ROUTE_LABEL.allowFrom}=${good.join(',')}`);
    }
  }

  // marathon-lb's `userlist` (`user USER password HASH`, checked by crypt(3)) and `http-request auth
  // realm "REALM"` on the vhost's HTTP and HTTPS frontends, whatever the mode; no password on a service port.
  const auth = at0('AUTH');
  if (auth !== undefined) {
    const fields = auth.split(':');
    // A value edgeroute cannot check leaves the port closed: left out, it would serve the app without a password.
    const checkedAuth = fields.length === 3 && hosts.length > 0 ? parseBasicAuth(auth) : null;
    if (fields.length !== 3) {
      failClosed = true;
      read(`${p}AUTH`, 'bad', `has ${fields.length} field(s), not realm:user:encrypted-password: not routed rather than served without a password`);
    } else if (hosts.length === 0) read(`${p}AUTH`, 'same', `ignored without ${p}VHOST, as marathon-lb does (it asks no password on a service port)`);
    else if (typeof checkedAuth === 'string') {
      failClosed = true;
      read(`${p}AUTH`, 'bad', `${checkedAuth}: not routed rather than served without a password`);
    } else {
      set(ROUTE_LABEL.basicAuth, auth, `${p}AUTH`);
      read(`${p}AUTH`, 'mapped', `${ROUTE_LABEL.basicAuth}=${hiddenHash(auth)}`);
    }
  }

  // The service port: TCP mode routes it on HAProxy nodes; HTTP mode without a vhost too
  // (passed through as TCP); HTTP by vhost is served by Host, not on a service port.
  const portRaw = at0('PORT');
  let port: number | null = null;
  let portOk = true;
  if (portRaw !== undefined) {
    const text = portRaw.trim();
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (value >= 1 && value <= 65_535) port = value;
    else {
      portOk = false;
      read(`${p}PORT`, 'bad', `is not a port (1 to 65535): ignored, ${byHost ? 'the app is routed by its vhost' : 'no TCP port is routed'}`);
    }
  }
  const servicePort = app.servicePorts?.[n] ?? null;
  const bindAddr = at0('BIND_ADDR');
  const bind = bindAddr === undefined ? null : parseTcpBind(bindAddr);
  if (byHost) {
    const listener = port ?? servicePort;
    if (port !== null) read(`${p}PORT`, 'differs', `marathon-lb also serves the app in HTTP on port ${port}; edgeroute serves it by Host on its HTTP listeners only`);
    else if (listener !== null) read(servicePortLabel, 'differs', `marathon-lb also serves the app in HTTP on service port ${listener}; edgeroute serves it by Host on its HTTP listeners only`, String(listener));
    if (bindAddr !== undefined) read(`${p}BIND_ADDR`, 'differs', "binds marathon-lb's service-port listener, which edgeroute does not open for an app routed by Host");
  } else if (aclRaw === undefined && portOk) {
    const tcp = port ?? servicePort;
    if (tcp === null) read(servicePortLabel, 'same', `the app declares no service port at index ${n}: not routed, as marathon-lb does`, '');
    // marathon-lb's HAProxy would refuse the config; opening the port on every address instead could expose it.
    else if (bind !== null && !bind.ok) read(`${p}BIND_ADDR`, 'bad', `${bind.why}: the TCP port is not routed rather than opened on every address`);
    else {
      set(LABEL.tcpPort, port === null ? SERVICE_PORT : String(port), port === null ? servicePortLabel : `${p}PORT`);
      const how = `${LABEL.tcpPort}=${port === null ? SERVICE_PORT : port} (HAProxy nodes${mode === 'http' ? '; HTTP passed through as TCP' : ''})`;
      if (port !== null) read(`${p}PORT`, 'mapped', how);
      else read(servicePortLabel, mode === 'http' ? 'differs' : 'mapped', how, String(tcp));
      if (bind?.ok && bind.address !== null) {
        set(LABEL.tcpBind, bind.address, `${p}BIND_ADDR`);
        read(`${p}BIND_ADDR`, 'mapped', `${LABEL.tcpBind}=${bind.address} (HAProxy nodes listen for the port on that address only)`);
      } else if (bindAddr !== undefined) read(`${p}BIND_ADDR`, 'same', 'every address (the default)');
    }
  }

  return { out, source, mode, failClosed };
}

/**
 * Runs the edgeroute label reader over the translation; a value it refuses
 * (a host name it cannot route, say) is left out, named by its marathon-lb
 * label, so the rest of the app still routes.
 */
function checked(out: Record<string, string>, source: Map<string, string>, readings: LabelReading[]): Record<string, string> {
  for (let attempt = 0; attempt < 16; attempt++) {
    const main = readRoutingLabels(out);
    const refused = main.ok ? readPortLabels(out, 0).find((p) => !p.result.ok)?.result : main;
    if (refused === undefined || refused.ok) return out;
    const result = refused;
    // The longest key the message starts with: edgeroute.port.1.path, not edgeroute.port.1.p...
    const key = Object.keys(out)
      .filter((k) => result.message.startsWith(k))
      .sort((a, b) => b.length - a.length)[0];
    if (key === undefined) return {};
    const from = source.get(key) ?? key;
    const i = readings.findIndex((r) => r.label === from);
    const reading: LabelReading = { label: from, value: readings[i]?.value ?? '', fate: 'bad', note: `${result.message.replace(key, 'its value')}: ignored` };
    if (i >= 0) readings[i] = reading;
    else readings.push(reading);
    delete out[key];
  }
  return {};
}

function sortReadings(readings: LabelReading[]): LabelReading[] {
  return readings.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

function trimSlash(path: string): string {
  return path.replace(/\/+$/, '');
}

/**
 * The warnings an agent logs for one app read by its marathon-lb labels: one
 * per bad label, naming it, and one naming every label not honoured.
 */
export function marathonLbProblems(appId: string, readings: readonly LabelReading[]): InputProblem[] {
  const problems: InputProblem[] = readings
    .filter((r) => r.fate === 'bad')
    .map((r) => ({ appId, message: `marathon-lb label ${r.label}=${JSON.stringify(r.value)} ${r.note}` }));
  const unsupported = readings.filter((r) => r.fate === 'unsupported');
  if (unsupported.length > 0) {
    problems.push({ appId, message: `marathon-lb labels not honoured: ${unsupported.map((r) => `${r.label} (${r.note})`).join('; ')}` });
  }
  return problems;
}
