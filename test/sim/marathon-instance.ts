import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { closeServer, listen, type AnyHttpServer } from './server-lifecycle.js';
import { SseHub } from './sse-hub.js';

/** PEM key and certificate for HTTPS fronts. */
export interface SimTlsOptions {
  key: string;
  cert: string;
}

export type InstanceRequestHandler = (instance: MarathonInstance, req: IncomingMessage, res: ServerResponse) => void;

export interface MarathonInstanceOptions {
  index: number;
  host: string;
  heartbeatMs: number;
  tls: SimTlsOptions | undefined;
  onRequest: InstanceRequestHandler;
}

/**
 * One Marathon process of a simulated cluster: its own port, HTTP(S) server and `/v2/events` streams.
 * The cluster state lives in MarathonSim; an instance only listens, or not.
 */
export class MarathonInstance {
  /** "http(s)://HOST:PORT" */
  readonly url: string;
  /** "HOST:PORT", as `/v2/leader` names it. */
  readonly hostPort: string;
  private down = false;
  /** Serializes down/up transitions so close and re-listen never overlap. */
  private transition: Promise<void> = Promise.resolve();

  private constructor(
    readonly index: number,
    readonly tls: boolean,
    readonly host: string,
    readonly port: number,
    private readonly server: AnyHttpServer,
    readonly hub: SseHub,
  ) {
    this.hostPort = `${host}:${port}`;
    this.url = `${tls ? 'https' : 'http'}://${this.hostPort}`;
  }

  /** Listens on a free port of `opts.host`. */
  static async start(opts: MarathonInstanceOptions): Promise<MarathonInstance> {
    const server: AnyHttpServer = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }) : createHttpServer();
    const hub = new SseHub(opts.heartbeatMs);
    try {
      await listen(server, 0, opts.host);
    } catch (err) {
      hub.close();
      throw err;
    }
    const { port } = server.address() as AddressInfo;
    const instance = new MarathonInstance(opts.index, opts.tls !== undefined, opts.host, port, server, hub);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => opts.onRequest(instance, req, res));
    return instance;
  }

  isDown(): boolean {
    return this.down;
  }

  /** `true`: cut this instance's streams and refuse connections; `false`: listen again on the same port. */
  setDown(down: boolean): Promise<void> {
    this.transition = this.transition.then(async () => {
      if (down === this.down) return;
      this.down = down;
      if (down) {
        this.hub.disconnectAll();
        await closeServer(this.server);
      } else {
        await listen(this.server, this.port, this.host);
      }
    });
    return this.transition;
  }

  /** Closes the streams and the server for good. */
  async stop(): Promise<void> {
    await this.transition.catch(() => undefined);
    this.hub.close();
    await closeServer(this.server);
  }
}
