/** The plugin's admin endpoint on the routing node's nginx. */
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import type { InflightReport } from '../data-plane.js';
import type { PluginCountersBody } from './plugin-traffic.js';
import { pushBodyChunks, pushBodyText, type BackendShape, type PushBody } from './push-format.js';

/** `generation`: the nginx that took the push (it changes when nginx restarts). */
export type PushResult = ({ ok: true; generation?: string | null } | { ok: false; status: number; error: string }) & { bytes?: number };

export interface PluginStatus {
  readonly version: string | null;
  readonly generation: string | null;
  /** The Lua plugin's release; null from a plugin older than 0.2.0. */
  readonly pluginVersion: string | null;
  /** Multi-version apps → md5 of the split policy text nginx applies (null: none); null from a plugin that does not say. */
  readonly policyDigests: ReadonlyMap<string, string | null> | null;
  /** What the plugin takes in a push beyond the first format ("backendsFlat"); empty from an older plugin. */
  readonly pushFeatures: readonly string[];
}

/** Pushes of more apps than this are streamed. */
const STREAMED_FROM_APPS = 500;

export class NginxAdmin {
  /** Pushes go through undici's request(), about half the cost of fetch() per call: every event pays it. */
  private readonly pushes = new Agent();

  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async push(body: PushBody, shape: BackendShape = 'objects'): Promise<PushResult> {
    // A large push (a whole table) is sent as it is written, piece by piece, instead of as one text built first.
    let bytes = 0;
    let payload: string | Readable;
    if (Object.keys(body.apps).length > STREAMED_FROM_APPS) {
      payload = Readable.from(
        (function* (): Generator<string> {
          for (const chunk of pushBodyChunks(body, undefined, shape)) {
            bytes += Buffer.byteLength(chunk);
            yield chunk;
          }
        })(),
      );
    } else {
      payload = pushBodyText(body, shape);
      bytes = Buffer.byteLength(payload);
    }
    const res = await request(`${this.baseUrl}/edgeroute/apps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/x-ndjson' },
      body: payload,
      signal: AbortSignal.timeout(this.timeoutMs),
      dispatcher: this.pushes,
    });
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) {
      let generation: string | null = null;
      try {
        const parsed = JSON.parse(text) as { generation?: unknown };
        if (typeof parsed.generation === 'string') generation = parsed.generation;
      } catch {
        // an older plugin: no generation
      }
      return { ok: true, bytes, generation };
    }
    let error = text.trim();
    try {
      error = String((JSON.parse(text) as { error?: unknown }).error ?? error);
    } catch {
      // keep the raw text
    }
    return { ok: false, status: res.statusCode, error, bytes };
  }

  async status(): Promise<PluginStatus> {
    const res = await fetch(`${this.baseUrl}/edgeroute/status`, {
      headers: { authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) throw new Error(`nginx admin status answered HTTP ${res.status}`);
    const body = (await res.json()) as { version?: unknown; generation?: unknown; plugin_version?: unknown; policies?: unknown; push_features?: unknown };
    return {
      version: typeof body.version === 'string' ? body.version : null,
      generation: typeof body.generation === 'string' ? body.generation : null,
      pluginVersion: typeof body.plugin_version === 'string' ? body.plugin_version : null,
      policyDigests: policyDigests(body.policies),
      pushFeatures: Array.isArray(body.push_features) ? body.push_features.filter((f): f is string => typeof f === 'string') : [],
    };
  }

  /** Each worker's request counters, as stored (see plugin-traffic.ts). */
  async counters(): Promise<PluginCountersBody> {
    const res = await fetch(`${this.baseUrl}/metrics?format=json`, {
      headers: { authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) throw new Error(`nginx admin metrics answered HTTP ${res.status}`);
    const body = (await res.json()) as unknown;
    // A plugin older than the JSON view answers Prometheus text, which res.json() refused above.
    if (typeof body !== 'object' || body === null) throw new Error('nginx admin metrics answered no JSON object');
    return body as PluginCountersBody;
  }

  async inflight(taskIds: readonly string[]): Promise<InflightReport> {
    const query = taskIds.length > 0 ? `?tasks=${encodeURIComponent(taskIds.join(','))}` : '';
    const res = await fetch(`${this.baseUrl}/edgeroute/inflight${query}`, {
      headers: { authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) throw new Error(`nginx admin inflight answered HTTP ${res.status}`);
    const body = (await res.json()) as { version?: unknown; settled?: unknown; backends?: unknown };
    const backends = new Map<string, number>();
    if (body.backends && typeof body.backends === 'object') {
      for (const [id, count] of Object.entries(body.backends)) if (typeof count === 'number' && count > 0) backends.set(id, count);
    }
    return { version: typeof body.version === 'string' ? body.version : null, settled: body.settled === true, backends };
  }
}

/** The status's `policies` ({app: {digest}}); null when no app says a digest (a plugin older than the field). */
function policyDigests(policies: unknown): Map<string, string | null> | null {
  if (typeof policies !== 'object' || policies === null) return null;
  const digests = new Map<string, string | null>();
  let told = false;
  for (const [app, view] of Object.entries(policies as Record<string, unknown>)) {
    const digest = typeof view === 'object' && view !== null ? (view as { digest?: unknown }).digest : undefined;
    if (digest !== undefined) told = true;
    digests.set(app, typeof digest === 'string' ? digest : null);
  }
  return told || digests.size === 0 ? digests : null;
}
