/**
 * The adapter's model of HAProxy's servers, keyed "backend/name", indexed by
 * backend as well: at 10,000 apps and 100,000 servers, finding a free pool
 * backend or an app's servers must not walk every server.
 */

export interface ServerModel {
  readonly backend: string;
  readonly name: string;
  readonly taskId: string | null;
  weight: number;
  draining: boolean;
}

export function serverKey(backend: string, name: string): string {
  return `${backend}/${name}`;
}

export class ServerModels extends Map<string, ServerModel> {
  private readonly byBackend = new Map<string, Map<string, ServerModel>>();

  static of(models: Iterable<ServerModel>): ServerModels {
    const all = new ServerModels();
    for (const m of models) all.set(serverKey(m.backend, m.name), m);
    return all;
  }

  override set(key: string, model: ServerModel): this {
    this.unindex(key);
    super.set(key, model);
    let inBackend = this.byBackend.get(model.backend);
    if (!inBackend) {
      inBackend = new Map();
      this.byBackend.set(model.backend, inBackend);
    }
    inBackend.set(key, model);
    return this;
  }

  override delete(key: string): boolean {
    this.unindex(key);
    return super.delete(key);
  }

  override clear(): void {
    this.byBackend.clear();
    super.clear();
  }

  /** The servers of one backend. */
  inBackend(backend: string): Iterable<ServerModel> {
    return this.byBackend.get(backend)?.values() ?? [];
  }

  /** Whether HAProxy holds any server (ready or draining) in the backend. */
  holdsAny(backend: string): boolean {
    return this.byBackend.has(backend);
  }

  /** The backends holding servers. */
  backends(): Iterable<string> {
    return this.byBackend.keys();
  }

  private unindex(key: string): void {
    // The constructor's own set() calls come before the index exists.
    if (this.byBackend === undefined) return;
    const old = super.get(key);
    if (!old) return;
    const inBackend = this.byBackend.get(old.backend);
    inBackend?.delete(key);
    if (inBackend?.size === 0) this.byBackend.delete(old.backend);
  }
}
