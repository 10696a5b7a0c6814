import { mkdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Folder for the data files; `null` keeps everything in memory (tests). */
  dataDir: string | null;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

/** The part of PGlite this server uses. */
interface WireDatabase {
  execProtocolRaw(message: Uint8Array): Promise<Uint8Array>;
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
  isInTransaction(): boolean;
  exec(query: string): Promise<unknown>;
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;

/**
 * Hands the single PGlite session to one client connection at a time. A connection keeps it for a
 * whole protocol cycle — from its first message to its Sync (extended protocol) or Query (simple
 * protocol) — and for as long as it has a transaction open. Interleaving at message level (what
 * @electric-sql/pglite-socket does) lets a second connection's Parse replace the first one's
 * unnamed statement between its Parse and Bind: "unnamed prepared statement does not exist".
 */
class SessionLock {
  private owner: number | null = null;
  private readonly waiters: { id: number; grant: () => void }[] = [];

  async acquire(id: number): Promise<void> {
    if (this.owner === id) return;
    if (this.owner === null) {
      this.owner = id;
      return;
    }
    await new Promise<void>((grant) => this.waiters.push({ id, grant }));
  }

  release(id: number): void {
    if (this.owner !== id) return;
    const next = this.waiters.shift();
    this.owner = next ? next.id : null;
    next?.grant();
  }

  holds(id: number): boolean {
    return this.owner === id;
  }

  forget(id: number): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) if (this.waiters[i].id === id) this.waiters.splice(i, 1);
  }
}

/**
 * PostgreSQL compiled to WebAssembly (PGlite), served over the Postgres wire protocol so the ordinary
 * `pg` driver and TypeORM connect to it unchanged. For development and tests only: one query runs at
 * a time, and while one connection has a transaction open the others wait.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  // Loaded lazily: production (DATABASE_URL set) never pays for the WebAssembly build.
  const { PGlite } = await import('@electric-sql/pglite');
  let dataDir: string | undefined;
  if (options.dataDir) {
    dataDir = resolve(options.dataDir);
    mkdirSync(dataDir, { recursive: true });
  }
  const db: WireDatabase = await PGlite.create(dataDir ? { dataDir } : {});
  const lock = new SessionLock();
  const sockets = new Set<Socket>();
  let nextId = 1;

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const connection = new Connection(nextId++, socket, db, lock);
    socket.on('data', (chunk: Buffer) => connection.receive(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      void connection.closed();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolveListen());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `postgres://postgres:postgres@${host}:${port}/postgres`,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => server.close(() => done()));
      await db.close();
    },
  };
}

class Connection {
  private buffer = Buffer.alloc(0);
  private started = false;
  private pumping: Promise<void> = Promise.resolve();
  private open = true;

  constructor(
    private readonly id: number,
    private readonly socket: Socket,
    private readonly db: WireDatabase,
    private readonly lock: SessionLock,
  ) {}

  receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    // Messages of one connection are handled strictly in order.
    this.pumping = this.pumping.then(() => this.pump()).catch(() => {
      this.socket.destroy();
    });
  }

  async closed(): Promise<void> {
    this.open = false;
    this.lock.forget(this.id);
    await this.pumping;
    if (this.lock.holds(this.id)) {
      // A client that vanished mid-transaction must not leave the database locked.
      if (this.db.isInTransaction()) await this.db.exec('ROLLBACK').catch(() => undefined);
      this.lock.release(this.id);
    }
  }

  private async pump(): Promise<void> {
    while (this.open) {
      const message = this.nextMessage();
      if (!message) return;
      if (message.kind === 'ssl') {
        this.socket.write('N'); // no TLS on the loopback development server
        continue;
      }
      if (message.kind !== 'message') {
        // CancelRequest (not supported) or Terminate: the connection ends.
        this.socket.end();
        return;
      }
      await this.lock.acquire(this.id);
      if (!this.open) {
        this.lock.release(this.id);
        return;
      }
      const response = await this.db.runExclusive(() => this.db.execProtocolRaw(new Uint8Array(message.bytes)));
      if (response.length && this.socket.writable) this.socket.write(response);
      // End of a cycle, and no transaction left open: let the next connection in.
      if (message.endsCycle && !this.db.isInTransaction()) this.lock.release(this.id);
    }
  }

  private nextMessage():
    | { kind: 'ssl' | 'cancel' | 'terminate' }
    | { kind: 'message'; bytes: Buffer; endsCycle: boolean }
    | undefined {
    if (!this.started) {
      if (this.buffer.length < 8) return undefined;
      const length = this.buffer.readInt32BE(0);
      if (this.buffer.length < length) return undefined;
      const code = this.buffer.readInt32BE(4);
      const bytes = this.buffer.subarray(0, length);
      this.buffer = this.buffer.subarray(length);
      if (code === SSL_REQUEST) return { kind: 'ssl' };
      if (code === CANCEL_REQUEST) return { kind: 'cancel' };
      this.started = true;
      return { kind: 'message', bytes: Buffer.from(bytes), endsCycle: true };
    }
    if (this.buffer.length < 5) return undefined;
    const total = 1 + this.buffer.readInt32BE(1);
    if (this.buffer.length < total) return undefined;
    const type = String.fromCharCode(this.buffer[0]);
    const bytes = Buffer.from(this.buffer.subarray(0, total));
    this.buffer = this.buffer.subarray(total);
    if (type === 'X') return { kind: 'terminate' };
    // 'S' Sync ends an extended-protocol cycle, 'Q' is a whole simple-protocol cycle.
    return { kind: 'message', bytes, endsCycle: type === 'S' || type === 'Q' };
  }
}
