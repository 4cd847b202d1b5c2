import { createHash } from 'node:crypto';
import { createClient, createCluster, RESP_TYPES, type RedisClientOptions, type RedisClusterOptions } from 'redis';

type Argument = string | Buffer;
/** Raw RESP2 replies with bulk strings as Buffers: event payloads are bytes. */
export type Reply = null | number | string | Buffer | Reply[];

const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;

/**
 * The few raw commands the driver sends, over a single node or a cluster alike. node-redis
 * routes cluster commands by their first key; every multi-key call here stays in one slot.
 */
export interface RedisConnection {
  send(key: string, args: readonly Argument[], readonly?: boolean): Promise<Reply>;
  /** A separate connection for blocking reads, so they never hold up appends. */
  blocking(): Promise<RedisConnection & { close(): Promise<void> }>;
  readonly cluster: boolean;
  /**
   * One SCAN step over every key matching `match` (on a cluster: master by master, the cursor
   * saying which). Cursor `'0'` starts, and a returned `'0'` means done.
   */
  scan(cursor: string, match: string, count: number): Promise<{ cursor: string; keys: string[] }>;
  close(): Promise<void>;
}

type ScanStep = (cursor: string, match: string, count: number) => Promise<{ cursor: string; keys: string[] }>;

async function scanNode(node: { sendCommand(args: string[]): Promise<unknown> }, cursor: string, match: string, count: number) {
  const [next, keys] = (await node.sendCommand(['SCAN', cursor, 'MATCH', match, 'COUNT', String(count)])) as [string, string[]];
  return { cursor: String(next), keys: keys.map(String) };
}

export async function connectClient(options: RedisClientOptions): Promise<RedisConnection> {
  const gate = firstConnectFails(options.socket?.reconnectStrategy);
  const client = createClient({
    ...options,
    socket: { ...options.socket, reconnectStrategy: gate.strategy } as RedisClientOptions['socket'],
  });
  const conn = await open(
    client,
    false,
    (c) => (_key, args) => c.sendCommand<Reply>(args, { typeMapping: BUFFERS }),
    (cursor, match, count) => scanNode(client, cursor, match, count),
  );
  gate.connected();
  return conn;
}

export async function connectCluster(options: RedisClusterOptions): Promise<RedisConnection> {
  const gate = firstConnectFails(options.defaults?.socket?.reconnectStrategy);
  const defaults = { ...options.defaults, socket: { ...options.defaults?.socket, reconnectStrategy: gate.strategy } };
  const cluster = createCluster({ ...options, defaults: defaults as RedisClusterOptions['defaults'] });
  const conn = await open(
    cluster,
    true,
    (c) =>
      (key, args, readonly = false) =>
        c.sendCommand<Reply>(key, readonly, [...args], { typeMapping: BUFFERS }),
    async (cursor, match, count) => {
      // "<master index>:<that master's cursor>": each master holds its own slots' keys.
      const [at, inner] = cursor === '0' ? [0, '0'] : [Number(cursor.slice(0, cursor.indexOf(':'))), cursor.slice(cursor.indexOf(':') + 1)];
      const master = cluster.masters[at];
      if (!master) return { cursor: '0', keys: [] };
      const step = await scanNode(await cluster.nodeClient(master), inner, match, count);
      if (step.cursor !== '0') return { cursor: `${at}:${step.cursor}`, keys: step.keys };
      return { cursor: at + 1 < cluster.masters.length ? `${at + 1}:0` : '0', keys: step.keys };
    },
  );
  gate.connected();
  return conn;
}

type ReconnectStrategy = false | number | ((retries: number, cause: Error) => false | number | Error);

/**
 * node-redis retries a refused first connection forever, so opening a store against a server
 * that is down would hang. Until the first connection succeeds, give up at once with the cause;
 * after that, reconnect as the caller asked (default: backoff up to 500 ms).
 */
function firstConnectFails(user: ReconnectStrategy | undefined): { strategy: ReconnectStrategy; connected(): void } {
  let connected = false;
  return {
    strategy: (retries, cause) => {
      if (!connected) return cause;
      if (typeof user === 'function') return user(retries, cause);
      return user ?? Math.min(retries * 50, 500);
    },
    connected: () => {
      connected = true;
    },
  };
}

/** Connects a node-redis client or cluster and wraps it; `blocking()` opens a duplicate the same way. */
async function open<C extends ClientLike<C>>(
  client: C,
  cluster: boolean,
  sender: (c: C) => RedisConnection['send'],
  scan: ScanStep,
  blocking = false,
): Promise<RedisConnection & { close(): Promise<void> }> {
  client.on('error', () => undefined); // node-redis reconnects by itself; failures surface on commands
  await client.connect();
  return {
    cluster,
    send: sender(client),
    scan,
    blocking: () => open(client.duplicate(), cluster, sender, scan, true),
    close: async () => {
      if (!client.isOpen) return;
      // A blocking connection may sit in XREAD BLOCK: drop it rather than wait for the reply.
      if (blocking) client.destroy();
      else await client.close();
    },
  };
}

/** What the wrapper needs of a node-redis client or cluster. */
interface ClientLike<C> {
  on(event: 'error', listener: (error: unknown) => void): unknown;
  connect(): Promise<unknown>;
  duplicate(): C;
  close(): Promise<unknown>;
  destroy(): void;
  readonly isOpen: boolean;
}

const shas = new Map<string, string>();

/** EVALSHA, falling back to EVAL (which caches the script) the first time a server lacks it. */
export async function evalScript(
  conn: RedisConnection,
  script: string,
  keys: readonly string[],
  args: readonly Argument[],
): Promise<Reply> {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  try {
    return await conn.send(keys[0]!, ['EVALSHA', sha, String(keys.length), ...keys, ...args]);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return conn.send(keys[0]!, ['EVAL', script, String(keys.length), ...keys, ...args]);
  }
}

export function str(reply: Reply | undefined): string {
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (typeof reply === 'number' || typeof reply === 'string') return String(reply);
  throw new TypeError(`expected a string reply, got ${reply === null ? 'null' : typeof reply}`);
}

export function arr(reply: Reply | undefined): Reply[] {
  if (Array.isArray(reply)) return reply;
  if (reply === null) return [];
  throw new TypeError(`expected an array reply, got ${typeof reply}`);
}

/** Field/value pairs of a stream entry or HGETALL reply. */
export function fields(reply: Reply | undefined): Map<string, Buffer> {
  const list = arr(reply);
  const out = new Map<string, Buffer>();
  for (let i = 0; i + 1 < list.length; i += 2) out.set(str(list[i]), list[i + 1] as Buffer);
  return out;
}
