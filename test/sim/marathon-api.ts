import type { IncomingMessage, ServerResponse } from 'node:http';
import { renderDeployment, type DeploymentPlan } from './marathon-events.js';
import { appServicePorts, renderApp, renderAppJson, renderTask } from './marathon-json.js';
import {
  JSON_CONTENT_TYPE,
  readJsonBody,
  sendEventStreamNotAccepted,
  sendJson,
  sendJsonParts,
  sendMessage,
  sendRaw,
} from './http-replies.js';
import { normalizeAppId, type AppRecord, type NormalizedAppSpec, type SimAppSpec, type TaskRecord } from './sim-model.js';

/** Routes Marathon's `/v2` REST surface onto a {@link MarathonBackend}. */

/** A deployment Marathon has accepted: the REST answer is sent before `done` settles. */
export interface DeploymentTicket {
  deploymentId: string;
  version: string;
  done: Promise<void>;
}

/** What the routes need from the simulator. */
export interface MarathonBackend {
  /** "HOST:PORT" of the current leader; null when there is none (the leader instance is down). */
  leaderAddress(): string | null;
  info(): Record<string, unknown>;
  apps(): AppRecord[];
  findApp(appId: string): AppRecord | undefined;
  findTask(taskId: string): { app: AppRecord; task: TaskRecord } | undefined;
  rawAppsResponse(): string | null;
  deployments(): DeploymentPlan[];
  openEventStream(req: IncomingMessage, res: ServerResponse, eventTypes: ReadonlySet<string> | null): void;
  applyAppSpec(spec: SimAppSpec, uri: string): DeploymentTicket;
  beginRemoveApp(appId: string): DeploymentTicket;
  beginRestartApp(appId: string): DeploymentTicket;
  /** Kills tasks of one app and lowers its instance count (Marathon's `scale=true`). */
  beginKillAndScale(app: AppRecord, tasks: TaskRecord[]): DeploymentTicket;
  /** Kills a task and launches a replacement (Marathon's default). */
  killAndReplace(app: AppRecord, task: TaskRecord): Promise<void>;
}

const APPS_HEAD = Buffer.from('{"apps":[');
const APPS_TAIL = Buffer.from(']}');
const APP_HEAD = Buffer.from('{"app":');
const APP_TAIL = Buffer.from('}');
const COMMA = Buffer.from(',');

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

export function createApiHandler(backend: MarathonBackend): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://marathon.invalid');
    const handler = route(backend, req.method ?? 'GET', url.pathname);
    Promise.resolve(handler(req, res, url)).catch((err: unknown) => {
      if (!res.headersSent) sendMessage(res, 400, err instanceof Error ? err.message : String(err));
      else res.destroy();
    });
  };
}

function route(backend: MarathonBackend, method: string, path: string): Handler {
  const get = method === 'GET' || method === 'HEAD';
  if (path === '/ping' && get) return (_req, res) => sendRaw(res, 200, 'text/plain; charset=utf-8', 'pong');
  if (path === '/v2/leader' && get) return (_req, res) => sendLeader(backend, res);
  if (path === '/v2/info' && get) return (_req, res) => sendJson(res, 200, backend.info());
  if (path === '/v2/events' && get) return (req, res, url) => openEvents(backend, req, res, url);
  if (path === '/v2/deployments' && get) return (_req, res) => sendJson(res, 200, backend.deployments().map(renderDeployment));
  if (path === '/v2/tasks' && get) return (_req, res, url) => listAllTasks(backend, res, url);
  if (path === '/v2/tasks/delete' && method === 'POST') return (req, res, url) => killTasksById(backend, req, res, url);
  if (path === '/v2/apps' || path === '/v2/apps/') return appsCollection(backend, method);
  if (path.startsWith('/v2/apps/')) return appResource(backend, method, path.slice('/v2/apps'.length));
  return (_req, res) => sendMessage(res, 404, `No resource for ${method} ${path}`);
}

function sendLeader(backend: MarathonBackend, res: ServerResponse): void {
  const leader = backend.leaderAddress();
  if (leader === null) return sendMessage(res, 404, 'There is no leader');
  sendJson(res, 200, { leader });
}

function openEvents(backend: MarathonBackend, req: IncomingMessage, res: ServerResponse, url: URL): void {
  if (!(req.headers.accept ?? '').includes('text/event-stream')) return sendEventStreamNotAccepted(res);
  const eventTypes = url.searchParams.getAll('event_type');
  backend.openEventStream(req, res, eventTypes.length > 0 ? new Set(eventTypes) : null);
}

function appsCollection(backend: MarathonBackend, method: string): Handler {
  if (method === 'GET') {
    return (_req, res, url) => {
      const raw = backend.rawAppsResponse();
      if (raw !== null) return sendRaw(res, 200, JSON_CONTENT_TYPE, raw);
      const embed = new Set(url.searchParams.getAll('embed'));
      const embedTasks = embed.has('apps.tasks') || embed.has('apps.failures');
      // Each app's JSON is cached until it changes: a large, mostly unchanged listing renders almost nothing.
      const parts: Buffer[] = [APPS_HEAD];
      for (const app of backend.apps()) {
        if (parts.length > 1) parts.push(COMMA);
        parts.push(renderAppJson(app, embedTasks));
      }
      parts.push(APPS_TAIL);
      sendJsonParts(res, 200, parts);
    };
  }
  if (method === 'POST') return (req, res) => createApp(backend, req, res);
  return methodNotAllowed;
}

async function createApp(backend: MarathonBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJsonBody(req);
  if (typeof body.id !== 'string') return sendMessage(res, 422, 'Object is not valid: id is required');
  const appId = normalizeAppId(body.id);
  if (backend.findApp(appId)) return sendMessage(res, 409, `An app with id [${appId}] already exists.`);
  const ticket = backend.applyAppSpec(specFromJson(body, undefined), '/v2/apps');
  ignoreOutcome(ticket);
  const app = backend.findApp(appId);
  sendJson(res, 201, app ? renderApp(app, true) : {}, { 'Marathon-Deployment-Id': ticket.deploymentId });
}

/** `/v2/apps/{id}`, `/v2/apps/{id}/tasks`, `/v2/apps/{id}/tasks/{taskId}`, `/v2/apps/{id}/restart`. */
function appResource(backend: MarathonBackend, method: string, rest: string): Handler {
  const tasksAt = rest.lastIndexOf('/tasks');
  const taskSuffix = tasksAt >= 0 ? rest.slice(tasksAt + '/tasks'.length) : null;
  if (taskSuffix !== null && /^(\/[^/]+)?\/?$/.test(taskSuffix)) {
    const appId = normalizeAppId(rest.slice(0, tasksAt));
    const taskId = decodeURIComponent(taskSuffix.replace(/^\/|\/$/g, ''));
    if (method === 'GET' && taskId === '') return (_req, res) => listAppTasks(backend, res, appId);
    if (method === 'DELETE' && taskId !== '') return (_req, res, url) => killAppTask(backend, res, url, appId, taskId);
  }
  if (rest.endsWith('/restart') && method === 'POST') {
    const appId = normalizeAppId(rest.slice(0, -'/restart'.length));
    return (_req, res) => withApp(backend, res, appId, () => sendTicket(res, backend.beginRestartApp(appId)));
  }
  const appId = normalizeAppId(rest);
  if (method === 'GET') {
    // Marathon always embeds tasks, counts and deployments here, whatever `embed` says.
    return (_req, res) => withApp(backend, res, appId, (app) => sendJsonParts(res, 200, [APP_HEAD, renderAppJson(app, true), APP_TAIL]));
  }
  if (method === 'PUT') return (req, res) => putApp(backend, req, res, appId);
  if (method === 'DELETE') return (_req, res) => withApp(backend, res, appId, () => sendTicket(res, backend.beginRemoveApp(appId)));
  return methodNotAllowed;
}

async function putApp(backend: MarathonBackend, req: IncomingMessage, res: ServerResponse, appId: string): Promise<void> {
  const body = await readJsonBody(req);
  const existing = backend.findApp(appId);
  const ticket = backend.applyAppSpec(specFromJson({ ...body, id: appId }, existing?.spec), `/v2/apps${appId}`);
  ignoreOutcome(ticket);
  sendTicket(res, ticket, existing ? 200 : 201);
}

function listAppTasks(backend: MarathonBackend, res: ServerResponse, appId: string): void {
  withApp(backend, res, appId, (app) => {
    const ports = appServicePorts(app);
    sendJson(res, 200, { tasks: [...app.tasks.values()].map((task) => renderTask(task, app, ports)) });
  });
}

function listAllTasks(backend: MarathonBackend, res: ServerResponse, url: URL): void {
  const wanted = url.searchParams.get('status');
  const tasks = backend.apps().flatMap((app) => {
    const ports = appServicePorts(app);
    return [...app.tasks.values()].filter((task) => matchesStatus(task, wanted)).map((task) => renderTask(task, app, ports));
  });
  sendJson(res, 200, { tasks });
}

/** `?status=running|staging|killing` filters like Marathon's `/v2/tasks?status=`. */
function matchesStatus(task: TaskRecord, status: string | null): boolean {
  if (status === null || status === '') return true;
  return task.state === `TASK_${status.toUpperCase()}`;
}

function killAppTask(backend: MarathonBackend, res: ServerResponse, url: URL, appId: string, taskId: string): void {
  const found = backend.findTask(taskId);
  if (!found || found.app.spec.id !== appId) return sendMessage(res, 404, `Task '${taskId}' does not exist`);
  if (url.searchParams.get('scale') === 'true') return sendTicket(res, backend.beginKillAndScale(found.app, [found.task]));
  const rendered = renderTask(found.task, found.app);
  backend.killAndReplace(found.app, found.task).catch(() => undefined);
  sendJson(res, 200, { task: rendered });
}

async function killTasksById(backend: MarathonBackend, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const body = await readJsonBody(req);
  const ids = Array.isArray(body.ids) ? body.ids.filter((id): id is string => typeof id === 'string') : [];
  const found = ids.map((id) => backend.findTask(id)).filter((entry) => entry !== undefined);
  if (url.searchParams.get('scale') === 'true') {
    const tickets = [...groupTasksByApp(found)].map(([app, tasks]) => backend.beginKillAndScale(app, tasks));
    tickets.forEach(ignoreOutcome);
    const first = tickets[0];
    return sendJson(res, 200, first ? { version: first.version, deploymentId: first.deploymentId } : {});
  }
  const rendered = found.map(({ app, task }) => renderTask(task, app));
  for (const { app, task } of found) backend.killAndReplace(app, task).catch(() => undefined);
  sendJson(res, 200, { tasks: rendered });
}

function groupTasksByApp(found: Array<{ app: AppRecord; task: TaskRecord }>): Map<AppRecord, TaskRecord[]> {
  const byApp = new Map<AppRecord, TaskRecord[]>();
  for (const { app, task } of found) {
    const tasks = byApp.get(app);
    if (tasks) tasks.push(task);
    else byApp.set(app, [task]);
  }
  return byApp;
}

function withApp(backend: MarathonBackend, res: ServerResponse, appId: string, then: (app: AppRecord) => void): void {
  const app = backend.findApp(appId);
  if (!app) return sendMessage(res, 404, `App '${appId}' does not exist`);
  then(app);
}

function sendTicket(res: ServerResponse, ticket: DeploymentTicket, status = 200): void {
  ignoreOutcome(ticket);
  sendJson(res, status, { version: ticket.version, deploymentId: ticket.deploymentId }, { 'Marathon-Deployment-Id': ticket.deploymentId });
}

/** REST callers learn about the outcome from the event stream, as with Marathon. */
function ignoreOutcome(ticket: DeploymentTicket): void {
  ticket.done.catch(() => undefined);
}

function methodNotAllowed(_req: IncomingMessage, res: ServerResponse): void {
  sendMessage(res, 405, 'HTTP method not allowed');
}

/** Reads a Marathon app JSON into a spec; fields the simulator does not model go to `extra`. */
export function specFromJson(body: Record<string, unknown>, base: NormalizedAppSpec | undefined): SimAppSpec {
  const { id, instances, labels, healthChecks, taskKillGracePeriodSeconds, ...rest } = body;
  return {
    id: String(id),
    instances: typeof instances === 'number' ? instances : (base?.instances ?? 1),
    labels: isStringRecord(labels) ? labels : (base?.labels ?? {}),
    healthChecks: Array.isArray(healthChecks) ? (healthChecks as Array<Record<string, unknown>>) : (base?.healthChecks ?? []),
    startHealthy: base?.startHealthy ?? true,
    firstHealthyAfterMs: base?.firstHealthyAfterMs ?? 0,
    taskKillGracePeriodSeconds:
      typeof taskKillGracePeriodSeconds === 'number' ? taskKillGracePeriodSeconds : (base?.taskKillGracePeriodSeconds ?? 0),
    extra: { ...(base?.extra ?? {}), ...withoutReadOnlyFields(rest) },
    backendPorts: base?.backendPorts,
    morePorts: base?.morePorts,
    killLatencyMs: base?.killLatencyMs,
  };
}

/** Fields Marathon computes itself; echoing a GET body back through PUT must not pin them. */
const READ_ONLY_APP_FIELDS = new Set([
  'version', 'versionInfo', 'tasks', 'deployments', 'tasksStaged', 'tasksRunning', 'tasksHealthy', 'tasksUnhealthy', 'lastTaskFailure',
]);

function withoutReadOnlyFields(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([key]) => !READ_ONLY_APP_FIELDS.has(key)));
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}
