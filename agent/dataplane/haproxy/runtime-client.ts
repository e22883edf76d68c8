/**
 * HAProxy's runtime API on its admin stats socket: one connection in `prompt`
 * mode, kept open, commands pipelined, each reply ending at the prompt
 * ("\n> "). Success is told by the reply's text only (PLATFORM-NOTES).
 */
import { createConnection, type Socket } from 'node:net';

const PROMPT = '\n> ';

interface Pending {
  readonly resolve: (reply: string) => void;
  readonly reject: (err: Error) => void;
}

export class HaproxyRuntime {
  private socket: Socket | null = null;
  private connecting: Promise<Socket> | null = null;
  private buffer = '';
  /** Replies awaited, in order, from `answered` on (shift() copies a long array on every call). */
  private pending: Pending[] = [];
  private answered = 0;
  private closed = false;
  /** Fails the connection when replies are awaited and none came for timeoutMs (re-armed by every reply, so a long batch may take longer). */
  private watchdog: NodeJS.Timeout | null = null;

  constructor(
    readonly path: string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Sends the commands in one write and resolves with their replies, in order. */
  async run(commands: readonly string[]): Promise<string[]> {
    if (commands.length === 0) return [];
    for (const c of commands) if (c.includes('\n')) throw new Error(`a runtime-API command holds a line break: ${JSON.stringify(c)}`);
    const socket = await this.connect();
    const replies = commands.map(
      () =>
        new Promise<string>((resolve, reject) => {
          this.pending.push({ resolve, reject });
        }),
    );
    this.watchdog ??= setTimeout(() => this.fail(socket, new Error(`HAProxy's runtime API gave no reply for ${this.timeoutMs} ms`)), this.timeoutMs);
    socket.write(`${commands.join('\n')}\n`);
    return Promise.all(replies);
  }

  async one(command: string): Promise<string> {
    return (await this.run([command]))[0]!;
  }

  /**
   * One command taking a payload (`COMMAND <<`, its lines, an empty line):
   * a certificate for `set ssl cert`, an entry for `add ssl crt-list`. Blank
   * lines are dropped (one would end the payload). In prompt mode HAProxy
   * answers each payload line with "+ ", stripped from the reply.
   */
  async withPayload(command: string, payload: string): Promise<string> {
    if (command.includes('\n')) throw new Error(`a runtime-API command holds a line break: ${JSON.stringify(command)}`);
    const lines = payload.split(/\r?\n/).filter((line) => line.trim() !== '');
    if (lines.length === 0) throw new Error(`${command}: empty payload`);
    const socket = await this.connect();
    const reply = new Promise<string>((resolve, reject) => {
      this.pending.push({ resolve, reject });
    });
    this.watchdog ??= setTimeout(() => this.fail(socket, new Error(`HAProxy's runtime API gave no reply for ${this.timeoutMs} ms`)), this.timeoutMs);
    socket.write(`${command} <<\n${lines.join('\n')}\n\n`);
    return (await reply).replace(/^(\+ )+/, '');
  }

  /** Closes the connection (failing what waits on it); the next command opens a new one, to the current worker. */
  drop(): void {
    if (this.socket) this.fail(this.socket, new Error('runtime API connection dropped'));
  }

  close(): void {
    this.closed = true;
    if (this.socket) this.fail(this.socket, new Error('runtime API client closed'));
  }

  private connect(): Promise<Socket> {
    if (this.closed) return Promise.reject(new Error('runtime API client closed'));
    if (this.socket) return Promise.resolve(this.socket);
    if (this.connecting) return this.connecting;
    this.connecting = new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(this.path);
      socket.setEncoding('utf8');
      let ready = false;
      const timer = setTimeout(() => socket.destroy(new Error(`cannot reach HAProxy's runtime API at ${this.path} within ${this.timeoutMs} ms`)), this.timeoutMs);
      socket.on('error', (err) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`HAProxy's runtime API at ${this.path}: ${err.message}`));
        this.fail(socket, err);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`HAProxy's runtime API at ${this.path} closed the connection`));
        this.fail(socket, new Error("HAProxy's runtime API closed the connection"));
      });
      socket.on('data', (chunk: string) => this.receive(chunk));
      socket.on('connect', () => {
        // The replies to `prompt` and `set timeout` come first; idle sessions would close after 10 s.
        const setup = [0, 1].map(() => new Promise<string>((res, rej) => this.pending.push({ resolve: res, reject: rej })));
        socket.write('prompt\nset timeout cli 3600\n');
        this.socket = socket;
        this.buffer = '';
        Promise.all(setup).then(
          () => {
            clearTimeout(timer);
            ready = true;
            resolve(socket);
          },
          (err: Error) => reject(err),
        );
      });
    }).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    // One pass over what arrived, one slice at the end: a batch of 100,000 replies must not copy the buffer per reply.
    let from = 0;
    for (;;) {
      const at = this.buffer.indexOf(PROMPT, from);
      if (at === -1) break;
      const reply = this.buffer.slice(from, at);
      from = at + PROMPT.length;
      const waiting = this.pending[this.answered];
      if (waiting) this.answered++;
      waiting?.resolve(reply.replace(/\n$/, ''));
    }
    if (from > 0) this.buffer = this.buffer.slice(from);
    if (this.answered === this.pending.length) {
      this.pending = [];
      this.answered = 0;
      this.disarm();
    } else if (this.answered > 4096 && this.answered * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.answered);
      this.answered = 0;
      this.watchdog?.refresh();
    } else {
      this.watchdog?.refresh();
    }
  }

  private disarm(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  private fail(socket: Socket, err: Error): void {
    socket.destroy();
    // A connection already failed (its late 'close'): what waits now belongs to the next one.
    if (this.socket !== socket) return;
    this.socket = null;
    this.disarm();
    const pending = this.pending.slice(this.answered);
    this.pending = [];
    this.answered = 0;
    this.buffer = '';
    for (const p of pending) p.reject(err);
  }
}
