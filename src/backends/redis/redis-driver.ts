import type { RedisClientOptions, RedisClusterOptions } from 'redis';
import type {
  AppendRequest,
  AppendResult,
  ConditionalAppendDriver,
  DriverCapabilities,
  Position,
  StoredEvent,
  StoredSnapshot,
  StreamPage,
  VersionRange,
} from '../../core/driver.ts';
import { untilAborted } from '../../core/sleep.ts';
import { DriverError, DuplicateEventIdError, ExpectedVersionConflictError, InvalidArgumentError } from '../../core/errors.ts';
import { appendManyCall, appendManyScript, eventArgs, expectedArgs } from './append-many-script.ts';
import { appendScript } from './append-script.ts';
import { DEFAULT_ID_WINDOW } from './id-window.ts';
import { arr, connectClient, connectCluster, evalScript, fields, str, type RedisConnection, type Reply } from './connection.ts';
import { idToOffset, offsetToId, RedisKeys } from './keys.ts';
import { RedisConsumerGroups } from './consumer-groups.ts';
import { RedisRecords } from './records.ts';
import { partitionOf as partitionOfStream } from '../../core/partition.ts';

export interface RedisDriverOptions {
  /** `redis://` or `rediss://` URL of a single node. Default `redis://127.0.0.1:6379`. */
  readonly url?: string;
  /** Options for node-redis `createClient` (TLS in `socket`, `username`/`password`, …), merged with `url`. */
  readonly client?: RedisClientOptions;
  /** Connect to a Redis Cluster instead: node-redis `createCluster` options (`rootNodes`, `defaults` for TLS/auth). */
  readonly cluster?: RedisClusterOptions;
  /** Number of partitions (each an "all" stream with its own hash slot). Fixed for the life of the data. Default 16. */
  readonly partitions?: number;
  /** Prefix of every key. Default `ef`. */
  readonly prefix?: string;
  /**
   * After each append, wait until the write is fsynced to the AOF of `local` (0 or 1) nodes and
   * `replicas` replicas (WAITAOF, Redis >= 7.2). Off by default: see the README.
   */
  readonly waitForAof?: { readonly local: 0 | 1; readonly replicas: number; readonly timeoutMs: number };
  /** Longest a blocking read of a live subscription waits before the core looks again. Default 1000 ms. */
  readonly blockMs?: number;
  /**
   * Event ids each partition's id index keeps for the duplicate check: an id among the
   * partition's last `idWindow` is refused; an older one is no longer checked (an exact retry
   * with an expected version is still recognised). Default 100000 (~100 bytes of Redis memory each).
   */
  readonly idWindow?: number;
}

const NAME = 'redis';

/**
 * Redis Streams: a stream per aggregate plus a per-partition log ("all" stream), both written
 * by one Lua script so the expected-version check, the duplicate check and the two XADDs are
 * atomic (`appendMany`: one script over several streams and partitions). Stream ids are
 * explicit: `0-<version>` in a stream, `<ms>-<seq>` in the log, which makes the log a time
 * index for `readSince`.
 */
export class RedisDriver implements ConditionalAppendDriver {
  readonly name = NAME;
  readonly partitions: number;
  /** `multiStreamAppend`: on a single node over any streams; on a cluster over streams of one hash slot (see `appendMany`). */
  readonly concurrency = 'conditional-append';
  readonly capabilities: DriverCapabilities = { timeIndex: true };
  readonly keys: RedisKeys;
  readonly consumerGroups: RedisConsumerGroups;
  readonly #records: RedisRecords;
  readonly #options: RedisDriverOptions;
  /** The append scripts, with the id window baked in. */
  readonly #appendScript: string;
  readonly #appendManyScript: string;
  #conn: RedisConnection | undefined;
  #idleBlocking: (RedisConnection & { close(): Promise<void> })[] = [];
  #allBlocking = new Set<RedisConnection & { close(): Promise<void> }>();
  #closing = false;

  constructor(options: RedisDriverOptions = {}) {
    const partitions = options.partitions ?? 16;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 16384) {
      throw new InvalidArgumentError('partitions must be an integer from 1 to 16384');
    }
    this.partitions = partitions;
    this.keys = new RedisKeys(options.prefix ?? 'ef');
    this.#options = options;
    const idWindow = options.idWindow ?? DEFAULT_ID_WINDOW;
    if (!Number.isSafeInteger(idWindow) || idWindow < 1) throw new InvalidArgumentError('idWindow must be a positive integer');
    this.#appendScript = appendScript(idWindow);
    this.#appendManyScript = appendManyScript(idWindow);
    this.consumerGroups = new RedisConsumerGroups({
      keys: this.keys,
      partitions,
      connection: () => this.#c,
      withBlocking: async (fn) => {
        const conn = this.#idleBlocking.pop() ?? (await this.#newBlocking());
        try {
          return await fn(conn);
        } finally {
          if (this.#allBlocking.has(conn)) this.#idleBlocking.push(conn);
        }
      },
      toStored,
    });
    this.#records = new RedisRecords(
      () => this.#c,
      this.keys,
      (id) => this.#partitionOf(id),
    );
  }

  async open(): Promise<void> {
    this.#closing = false;
    this.#conn = this.#options.cluster
      ? await connectCluster(this.#options.cluster)
      : await connectClient({ ...this.#options.client, url: this.#options.url ?? this.#options.client?.url ?? 'redis://127.0.0.1:6379' });
    if (this.#options.waitForAof) {
      const info = arr(await this.#c.send(this.keys.all(0), ['COMMAND', 'INFO', 'WAITAOF'], true));
      if (info.length === 0 || info[0] === null) {
        await this.close();
        throw new DriverError(NAME, 'waitForAof needs WAITAOF (Redis >= 7.2); this server does not have it');
      }
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.allSettled([...this.#allBlocking].map((c) => c.close()));
    this.#allBlocking.clear();
    this.#idleBlocking = [];
    await this.#conn?.close();
    this.#conn = undefined;
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    const p = request.partition;
    const keys = [this.keys.stream(p, request.streamId), this.keys.all(p), this.keys.ids(p)];
    const args = [...expectedArgs(request), request.streamId, String(request.events.length), ...eventArgs(request.events)];
    const reply = arr(await evalScript(this.#c, this.#appendScript, keys, args));
    const status = str(reply[0]);
    if (status === 'conflict') {
      throw new ExpectedVersionConflictError(request.streamId, request.expectedVersion, Number(str(reply[1])), NAME);
    }
    if (status === 'duplicate') throw duplicateError(str(reply[1]), str(reply[2]));
    await this.#waitForAof(keys[0]!);
    return {
      nextExpectedVersion: Number(str(reply[1])),
      positions: reply.slice(2).map((id) => ({ partition: p, offset: idToOffset(str(id)) })),
    };
  }

  /**
   * Appends to several streams in one script (`appendManyScript`): all or none. On a cluster
   * the streams must share one hash slot (streams of one partition); otherwise it throws an
   * `InvalidArgumentError` naming each stream's partition and slot, before anything is sent.
   * An exact retry of a batch that was stored is answered with what the first try stored
   * (`stored`, which the core reports as `alreadyStored`).
   */
  async appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const call = appendManyCall(this.keys, requests, this.#options.cluster !== undefined);
    const reply = arr(await evalScript(this.#c, this.#appendManyScript, call.keys, call.args));
    const status = str(reply[0]);
    if (status === 'conflict') {
      const request = requests[Number(str(reply[1])) - 1]!;
      throw new ExpectedVersionConflictError(request.streamId, request.expectedVersion, Number(str(reply[2])), NAME);
    }
    if (status === 'duplicate') throw duplicateError(str(reply[2]), str(reply[3]));
    if (status === 'stored') return Promise.all(requests.map((r, i) => this.#storedBefore(r, Number(str(reply[i + 1])))));
    await this.#waitForAof(call.keys[0]!);
    let at = 1;
    return requests.map((r) => {
      const nextExpectedVersion = Number(str(reply[at++]));
      const positions = r.events.map(() => ({ partition: r.partition, offset: idToOffset(str(reply[at++])) }));
      return { nextExpectedVersion, positions };
    });
  }

  async streamVersion(streamId: string, partition: number): Promise<number> {
    const key = this.keys.stream(partition, streamId);
    const last = arr(await this.#c.send(key, ['XREVRANGE', key, '+', '-', 'COUNT', '1'], true));
    return last.length === 0 ? 0 : versionOf(str(arr(last[0])[0]));
  }

  async readStream(streamId: string, partition: number, range: VersionRange): Promise<StoredEvent[]> {
    const key = this.keys.stream(partition, streamId);
    const to = Math.min(range.toVersion, Number.MAX_SAFE_INTEGER);
    const entries = arr(await this.#c.send(key, ['XRANGE', key, `0-${range.fromVersion}`, `0-${to}`, 'COUNT', String(range.limit)], true));
    return entries.map((entry) => {
      const [id, body] = arr(entry);
      const f = fields(body);
      return toStored(f, streamId, versionOf(str(id)), { partition, offset: idToOffset(str(f.get('l'))) });
    });
  }

  async readPartition(partition: number, range: { after: bigint | undefined; limit: number }): Promise<StoredEvent[]> {
    const key = this.keys.all(partition);
    const start = range.after === undefined ? '-' : `(${offsetToId(range.after)}`;
    const entries = arr(await this.#c.send(key, ['XRANGE', key, start, '+', 'COUNT', String(range.limit)], true));
    return entries.map((entry) => logEntry(partition, entry));
  }

  async partitionHead(partition: number): Promise<bigint | undefined> {
    const key = this.keys.all(partition);
    const last = arr(await this.#c.send(key, ['XREVRANGE', key, '+', '-', 'COUNT', '1'], true));
    return last.length === 0 ? undefined : idToOffset(str(arr(last[0])[0]));
  }

  async firstOffsetAtTime(partition: number, time: number): Promise<bigint | undefined> {
    const key = this.keys.all(partition);
    const first = arr(await this.#c.send(key, ['XRANGE', key, `${Math.max(0, Math.floor(time))}-0`, '+', 'COUNT', '1'], true));
    return first.length === 0 ? undefined : idToOffset(str(arr(first[0])[0]));
  }

  readSnapshot(streamId: string, name: string): Promise<StoredSnapshot | undefined> {
    return this.#records.readSnapshot(streamId, name);
  }

  writeSnapshot(s: StoredSnapshot): Promise<void> {
    return this.#records.writeSnapshot(s);
  }

  readCheckpoint(group: string): Promise<readonly Position[] | undefined> {
    return this.#records.readCheckpoint(group);
  }

  writeCheckpoint(group: string, positions: readonly Position[]): Promise<void> {
    return this.#records.writeCheckpoint(group, positions);
  }

  deleteCheckpoint(group: string): Promise<void> {
    return this.#records.deleteCheckpoint(group);
  }

  listStreams(page: { cursor: string | undefined; limit: number }): Promise<StreamPage> {
    return this.#records.listStreams(page, this.partitions, (id, partition) => this.streamVersion(id, partition));
  }

  listCheckpointGroups(): Promise<string[]> {
    return this.#records.listCheckpointGroups();
  }

  /** Blocks on the partition logs (XREAD BLOCK) on a connection of its own. */
  async waitForEvents(after: readonly Position[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    // A cluster cannot XREAD keys of several slots at once; the core's polling covers it.
    if (this.#c.cluster) return untilAborted(new Promise<void>(() => undefined), signal);
    const conn = this.#idleBlocking.pop() ?? (await this.#newBlocking());
    if (signal.aborted) {
      this.#idleBlocking.push(conn);
      return;
    }
    const keys: string[] = [];
    const ids: string[] = [];
    for (let partition = 0; partition < this.partitions; partition++) {
      keys.push(this.keys.all(partition));
      const offset = after.find((p) => p.partition === partition)?.offset;
      ids.push(offset === undefined ? '0-0' : offsetToId(offset));
    }
    const read = conn
      .send(keys[0]!, ['XREAD', 'COUNT', '1', 'BLOCK', String(this.#options.blockMs ?? 1000), 'STREAMS', ...keys, ...ids], true)
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        if (this.#allBlocking.has(conn)) this.#idleBlocking.push(conn);
      });
    await untilAborted(read, signal);
  }

  async #newBlocking(): Promise<RedisConnection & { close(): Promise<void> }> {
    const conn = await this.#c.blocking();
    if (this.#closing) {
      // The driver closed while this connection was being opened: it must not outlive it.
      await conn.close();
      throw new DriverError(NAME, 'the driver is closed');
    }
    this.#allBlocking.add(conn);
    return conn;
  }

  /** What an earlier try of `request` stored from version `from` on (the script checked the ids). */
  async #storedBefore(request: AppendRequest, from: number): Promise<AppendResult & { stored: StoredEvent[] }> {
    const count = request.events.length;
    const stored = await this.readStream(request.streamId, request.partition, {
      fromVersion: from,
      toVersion: from + count - 1,
      limit: count,
    });
    if (stored.length !== count || stored.some((s, i) => s.id !== request.events[i]!.id)) {
      throw new DriverError(NAME, `appendMany retry of "${request.streamId}": the stored events changed under it`);
    }
    return { nextExpectedVersion: from + count - 1, positions: stored.map((s) => s.position), stored };
  }

  async #waitForAof(key: string): Promise<void> {
    if (!this.#options.waitForAof) return;
    const { local, replicas, timeoutMs } = this.#options.waitForAof;
    const acked = arr(await this.#c.send(key, ['WAITAOF', String(local), String(replicas), String(timeoutMs)]));
    if (Number(acked[0]) < local || Number(acked[1]) < replicas) {
      throw new DriverError(
        NAME,
        `append stored but not confirmed in the AOF in ${timeoutMs} ms (local ${String(acked[0])}, replicas ${String(acked[1])})`,
      );
    }
  }

  get #c(): RedisConnection {
    if (!this.#conn) throw new DriverError(NAME, 'not connected');
    return this.#conn;
  }

  #partitionOf(streamId: string): number {
    return partitionOfStream(streamId, this.partitions);
  }
}

/** A DuplicateEventIdError from a script's reply: the id and its index entry "<version> <streamId>". */
function duplicateError(eventId: string, existing: string): DuplicateEventIdError {
  const [version, streamId] = existing.split(' ');
  return new DuplicateEventIdError(eventId, { streamId: streamId!, version: Number(version) }, NAME);
}

function versionOf(streamEntryId: string): number {
  return Number(streamEntryId.slice(streamEntryId.indexOf('-') + 1));
}

function toStored(f: Map<string, Buffer>, streamId: string, version: number, position: Position): StoredEvent {
  const data = f.get('d')!;
  return {
    id: str(f.get('i')),
    type: str(f.get('t')),
    schemaVersion: Number(str(f.get('sv'))),
    codec: str(f.get('c')),
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    metadata: str(f.get('m')),
    time: Number(str(f.get('tm'))),
    streamId,
    version,
    position,
  };
}

function logEntry(partition: number, entry: Reply): StoredEvent {
  const [id, body] = arr(entry);
  const f = fields(body);
  return toStored(f, str(f.get('s')), Number(str(f.get('v'))), { partition, offset: idToOffset(str(id)) });
}
