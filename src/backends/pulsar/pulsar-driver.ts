import type { ConnectionOptions } from 'node:tls';
import type {
  AppendLimits,
  AppendRouting,
  AppendRequest,
  AppendResult,
  DriverCapabilities,
  EventTypeDescription,
  IndexCheckpoints,
  PartitionLease,
  PartitionOwnerDriver,
  PartitionRange,
  Position,
  StoredEvent,
  StoredSnapshot,
} from '../../core/driver.ts';
import { DriverError, InvalidArgumentError } from '../../core/errors.ts';
import { scanLog } from '../log/scan.ts';
import { PulsarAdmin } from './admin.ts';
import { PulsarClient } from './client/client.ts';
import { tokenAuth } from './client/connection.ts';
import { PULSAR as NAME } from './client/errors.ts';
import type { FullRef } from './index-checkpoints.ts';
import { readIndexCheckpoints } from './index-reader.ts';
import { KeyedTopic, PulsarCheckpoints, PulsarSnapshots } from './keyed.ts';
import type { PulsarPartitionLease } from './lease.ts';
import { PulsarLog } from './log.ts';
import { EntryCache } from './entry-cache.ts';
import { ScanPages } from './scan-pages.ts';
import { PulsarConsumerGroups } from './groups/consumer-groups.ts';
import { decodeCommit, ENTRY_SPAN, entryOffset, PulsarNames } from './records.ts';
import { PulsarWriterGroup } from './routing/writer-group.ts';
import { PulsarWriters } from './writers.ts';
import { applyCompactionThreshold, applyNamespacePolicies, checkPolicies, type PulsarPolicies } from './policies.ts';
import { firstEntryAtTime } from './time-index.ts';
import { assertSchemaCompatibility, type PulsarSchemaCompatibility, PulsarSchemaRegistry } from './schema-registry.ts';

/** Bytes written to the state topic since its last compaction that start the next one. */
const STATE_COMPACTION_BYTES = 4 * 1024 * 1024;

export interface PulsarDriverOptions {
  /** Binary protocol: `pulsar://host:6650` or `pulsar+ssl://host:6651`. Default `pulsar://127.0.0.1:6650`. */
  readonly serviceUrl?: string;
  /** Admin REST (web service), for setup. Default `http://127.0.0.1:8080`. */
  readonly adminUrl?: string;
  /** Tenant of the store's namespace, made if missing. Default `public`. */
  readonly tenant?: string;
  /** Namespace (one per bounded context), made if missing; its policies are `policies`. Default `eventfold`. */
  readonly namespace?: string;
  /** The namespace's retention, offload, backlog quota, deduplication and the dead letters' TTL (policies.ts), set on open. */
  readonly policies?: PulsarPolicies;
  /** Prefix of the store's topics in the namespace. Default `eventfold`. */
  readonly prefix?: string;
  /** Partitions of the events topic, fixed for the life of the data. Default 8. */
  readonly partitions?: number;
  /** Token (JWT) for the binary protocol and the admin API; a function is asked again on each connect. */
  readonly token?: string | (() => string | Promise<string>);
  /** TLS options for `pulsar+ssl://` connections (CA, client certificate…). */
  readonly tls?: ConnectionOptions;
  /** Timeout of each broker request (lookup, producer, subscribe…). Default 30000 ms. */
  readonly operationTimeoutMs?: number;
  /** A commit with no receipt by then has an unknown outcome, which the writer settles before it answers. Default 30000 ms. */
  readonly sendTimeoutMs?: number;
  /**
   * Compatibility strategy of the namespace's schema registry, under which each event type's
   * schema is registered on open (schema-registry.ts); an incompatible change fails the open
   * with `SchemaIncompatibleError`. Default `BACKWARD`: the new schema reads what the old one wrote.
   */
  readonly schemaCompatibility?: PulsarSchemaCompatibility;
  /**
   * `appendMany` across partitions is one Pulsar transaction (needs the broker's transaction
   * coordinator): one its writer died in is aborted by the coordinator after this long, and
   * until then readers and claims of its partitions wait. Use the same value on every process
   * of a store. Default 10000 ms.
   */
  readonly transactionTimeoutMs?: number;
  /**
   * The writer processes of a store share the partitions out (a Failover subscription on a
   * requests topic; routing/writer-group.ts), and an append to a partition another process owns
   * is sent to it. Without it, each writer takes a partition over when it appends there (fine
   * for one writer process). Experimental: default off until it survives the multi-process tests.
   */
  readonly routing?: boolean;
  /**
   * Events a partition's index grows by between two index checkpoints (`<prefix>-index`,
   * index-checkpoints.ts): a cold process reads the last ones and about this many events of tail
   * instead of the partition's whole history. Default 20000.
   */
  readonly indexCheckpointEvents?: number;
}

/**
 * Apache Pulsar over the binary protocol (client/): a partition-owner driver. Store partition
 * p is partition p of one partitioned topic `<prefix>-events` (one topic, so the broker
 * records the partition count and a store opened with another count is refused). A writer
 * claims a partition with an ExclusiveWithFencing producer and a claim marker (writers.ts);
 * the core checks versions against its index and appends through the lease, one message per
 * commit. Reads are non-durable readers (log.ts). Snapshots and checkpoints are keyed topics
 * read as tables (keyed.ts). Setup through admin REST (admin.ts).
 */
export class PulsarDriver implements PartitionOwnerDriver {
  readonly name = NAME;
  readonly partitions: number;
  readonly concurrency = 'partition-owner';
  readonly capabilities: DriverCapabilities = { timeIndex: true };
  /** Under the broker's 5 MiB message limit; at most MAX_COMMIT_EVENTS events per commit (records.ts). */
  readonly appendLimits: AppendLimits = { maxAppends: 100, maxBytes: 256 * 1024 };
  readonly names: PulsarNames;
  readonly indexCheckpointEvents: number;
  /** `store.consume`: Failover subscriptions per group (groups/consumer-groups.ts). */
  readonly consumerGroups: PulsarConsumerGroups;
  /** The writer group (routing/), with `routing: true`. */
  readonly routing: AppendRouting | undefined;
  readonly #options: PulsarDriverOptions;
  readonly #tenant: string;
  readonly #namespace: string;
  readonly #policies: PulsarPolicies;
  readonly #schemaCompatibility: PulsarSchemaCompatibility;
  /** Entries read lately, for `readAt`. */
  readonly #cache = new EntryCache();
  readonly #scans = new ScanPages(this.#cache);
  /** What the readers received from the broker (`messagesReceived`). */
  readonly #reads = { received: 0 };
  /** The last full index checkpoint known of each partition (writers.ts, for the deltas). */
  readonly #indexRefs = new Map<number, FullRef>();
  #client: PulsarClient | undefined;
  #admin: PulsarAdmin | undefined;
  #log: PulsarLog | undefined;
  #writers: PulsarWriters | undefined;
  #state: KeyedTopic | undefined;
  #snapshots: PulsarSnapshots | undefined;
  #checkpoints: PulsarCheckpoints | undefined;
  /** Close hooks of other parts on this store (projectors); run first by `close`. */
  readonly #attached = new Set<() => Promise<void>>();

  constructor(options: PulsarDriverOptions = {}) {
    const partitions = options.partitions ?? 8;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 10_000) {
      throw new InvalidArgumentError('partitions must be an integer from 1 to 10000');
    }
    const name = /^[A-Za-z0-9_.=:-]{1,100}$/;
    this.#tenant = options.tenant ?? 'public';
    this.#namespace = options.namespace ?? 'eventfold';
    const prefix = options.prefix ?? 'eventfold';
    for (const [what, value] of [
      ['tenant', this.#tenant],
      ['namespace', this.#namespace],
      ['prefix', prefix],
    ] as const) {
      if (!name.test(value) || /^\.+$/.test(value)) {
        throw new InvalidArgumentError(
          `${what} ${JSON.stringify(value).slice(0, 120)} must be 1 to 100 of letters, digits and _ . = : - (not only dots)`,
        );
      }
    }
    this.#policies = checkPolicies(options.policies);
    this.#schemaCompatibility = assertSchemaCompatibility(options.schemaCompatibility ?? 'BACKWARD');
    const txnTimeout = options.transactionTimeoutMs;
    if (txnTimeout !== undefined && (!Number.isInteger(txnTimeout) || txnTimeout < 1)) {
      throw new InvalidArgumentError('transactionTimeoutMs must be a positive integer (milliseconds)');
    }
    this.indexCheckpointEvents = options.indexCheckpointEvents ?? 20_000;
    if (!Number.isInteger(this.indexCheckpointEvents) || this.indexCheckpointEvents < 1) {
      throw new InvalidArgumentError('indexCheckpointEvents must be a positive integer');
    }
    this.partitions = partitions;
    this.names = new PulsarNames(this.#tenant, this.#namespace, prefix);
    this.#options = options;
    const connected = (): { client: PulsarClient; admin: PulsarAdmin; log: PulsarLog } => {
      if (!this.#client || !this.#admin || !this.#log) throw new DriverError(NAME, 'not connected');
      return { client: this.#client, admin: this.#admin, log: this.#log };
    };
    this.consumerGroups = new PulsarConsumerGroups({
      get client() {
        return connected().client;
      },
      get admin() {
        return connected().admin;
      },
      get log() {
        return connected().log;
      },
      names: this.names,
      partitions,
      deadLetterTtlSeconds: this.#policies.deadLetterTtlSeconds,
    });
    if (options.routing !== undefined && typeof options.routing !== 'boolean') throw new InvalidArgumentError('routing must be a boolean');
    this.routing =
      options.routing !== true
        ? undefined
        : new PulsarWriterGroup(() => ({ ...connected(), names: this.names, partitions: this.partitions }));
  }

  /**
   * A client and an admin of the store's cluster, with the store's connection settings, for a
   * part built on the store that keeps its own connections (the projector). `onClose` runs
   * when the driver closes, before the driver's own clients; `detach` forgets it.
   */
  attach(onClose: () => Promise<void>): { client: PulsarClient; admin: PulsarAdmin; detach: () => void } {
    this.#attached.add(onClose);
    return { client: this.#newClient(), admin: this.#newAdmin(), detach: () => this.#attached.delete(onClose) };
  }

  #tokenFn(): (() => string | Promise<string>) | undefined {
    const token = this.#options.token;
    return token === undefined ? undefined : typeof token === 'function' ? token : () => token;
  }

  #newAdmin(): PulsarAdmin {
    return new PulsarAdmin({ url: this.#options.adminUrl ?? 'http://127.0.0.1:8080', token: this.#tokenFn() });
  }

  #newClient(): PulsarClient {
    const tokenFn = this.#tokenFn();
    return new PulsarClient({
      serviceUrl: this.#options.serviceUrl ?? 'pulsar://127.0.0.1:6650',
      auth: tokenFn === undefined ? undefined : tokenAuth(tokenFn),
      tls: this.#options.tls,
      operationTimeoutMs: this.#options.operationTimeoutMs,
    });
  }

  async open(): Promise<void> {
    const admin = this.#newAdmin();
    await admin.ensureNamespace(this.#tenant, this.#namespace);
    await applyNamespacePolicies(admin, this.names.namespace, this.#policies);
    await admin.ensurePartitionedTopic(this.names.events, this.partitions);
    await admin.ensurePartitionedTopic(this.names.index, this.partitions);
    await admin.ensureTopic(this.names.state);
    // Every snapshot and checkpoint write is a message there (a subscription saves about once a
    // second): compacted, a cold process reads the newest value per key plus the tail.
    await applyCompactionThreshold(admin, this.names.state, STATE_COMPACTION_BYTES);
    const client = this.#newClient();
    const log = new PulsarLog(client, this.#reads);
    this.#admin = admin;
    this.#client = client;
    this.#log = log;
    this.#writers = new PulsarWriters({
      client,
      names: this.names,
      log,
      sendTimeoutMs: this.#options.sendTimeoutMs ?? 30_000,
      transactionTimeoutMs: this.#options.transactionTimeoutMs ?? 10_000,
      indexRefs: this.#indexRefs,
    });
    this.#state = new KeyedTopic(this.names.state, client, log);
    this.#snapshots = new PulsarSnapshots(this.#state);
    this.#checkpoints = new PulsarCheckpoints(this.#state);
  }

  /** The event types' schemas in the broker's registry, under `schemaCompatibility` (schema-registry.ts). */
  async registerEventTypes(types: readonly EventTypeDescription[]): Promise<void> {
    if (!this.#admin) throw new DriverError(NAME, 'not connected');
    await new PulsarSchemaRegistry(this.#admin, this.names, this.#schemaCompatibility).register(types);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#attached].map((close) => close()));
    await this.consumerGroups.close();
    await this.#writers?.releaseAll();
    await this.#state?.close();
    await this.#log?.close();
    await this.#client?.close();
    this.#client = undefined;
    this.#log = undefined;
    this.#writers = undefined;
  }

  claimPartition(partition: number): Promise<PulsarPartitionLease> {
    return this.#connected().writers.claim(partition);
  }

  /** See `PartitionOwnerDriver.appendAcross`: one Pulsar transaction, each partition's commit through its lease (transaction-append.ts). */
  appendAcross(leases: readonly PartitionLease[], requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    return this.#connected().writers.appendAcross(leases, requests);
  }

  /** See `PartitionOwnerDriver.readPartition`: commits of other streams are skipped after decoding (one message holds several streams). */
  async readPartition(partition: number, range: PartitionRange): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    const from = range.after === undefined ? 0n : range.after + 1n;
    await scanLog(this.#scans.reader(this.#connected().log, this.names.partition(partition), partition), from, (message) => {
      for (const event of decodeCommit(message, partition, range.streamId)) {
        if (event.position.offset < from) continue;
        out.push(event);
        if (out.length >= range.limit) return false;
      }
      return undefined;
    });
    return out;
  }

  /** See `PartitionOwnerDriver.readAt`: entries from the cache (entry-cache.ts), else one read each. */
  async readAt(partition: number, offsets: readonly bigint[]): Promise<StoredEvent[]> {
    const wanted = new Set(offsets);
    const out: StoredEvent[] = [];
    let entry: bigint | undefined;
    for (const offset of offsets) {
      const at = offset - (offset % ENTRY_SPAN);
      if (at === entry) continue;
      entry = at;
      let message = this.#cache.get(partition, at);
      if (!message) {
        const page = await this.#connected().log.page(this.names.partition(partition), at, 1);
        message = page.messages.find((m) => entryOffset(m.messageId) === at);
        if (!message) continue;
        this.#cache.add(partition, message);
      }
      for (const event of decodeCommit(message, partition)) if (wanted.has(event.position.offset)) out.push(event);
    }
    return out;
  }

  /**
   * The last complete index checkpoints of a partition, read back from the end of its index
   * partition in a few bounded windows (index-reader.ts): a cold start never reads the whole
   * index topic. The full one's place is kept for the deltas this process writes after it.
   */
  async readIndexCheckpoints(partition: number): Promise<IndexCheckpoints> {
    if (!this.#client || !this.#admin) throw new DriverError(NAME, 'not connected');
    const read = await readIndexCheckpoints(
      { client: this.#client, admin: this.#admin, counter: this.#reads },
      this.names.indexPartition(partition),
    );
    if (read.full) this.#indexRefs.set(partition, read.full);
    return read.checkpoints;
  }

  /** Messages the broker delivered to this driver's log and index readers: what reads cost (a test bounds a cold start by it). */
  get messagesReceived(): number {
    return this.#reads.received;
  }

  /** The last event: a claim marker is no head (no position ever reaches it), the one it records is. */
  async partitionHead(partition: number): Promise<bigint | undefined> {
    const { log, writers } = this.#connected();
    const last = await log.lastMessage(this.names.partition(partition));
    return last === undefined ? undefined : writers.headAt(partition, last);
  }

  /** See `EventStoreDriver.firstOffsetAtTime`: the broker's search by publish time, which a commit sets from its events' times (lease.ts). */
  firstOffsetAtTime(partition: number, time: number): Promise<bigint | undefined> {
    const { log } = this.#connected();
    if (!this.#admin) throw new DriverError(NAME, 'not connected');
    return firstEntryAtTime(this.#admin, log, this.names.partition(partition), time);
  }

  readSnapshot(streamId: string, name: string): Promise<StoredSnapshot | undefined> {
    return this.#connected().snapshots.read(streamId, name);
  }

  writeSnapshot(snapshot: StoredSnapshot): Promise<void> {
    return this.#connected().snapshots.write(snapshot);
  }

  readCheckpoint(group: string): Promise<readonly Position[] | undefined> {
    return this.#connected().checkpoints.read(group);
  }

  writeCheckpoint(group: string, positions: readonly Position[]): Promise<void> {
    return this.#connected().checkpoints.write(group, positions);
  }

  deleteCheckpoint(group: string): Promise<void> {
    return this.#connected().checkpoints.delete(group);
  }

  #connected(): { log: PulsarLog; writers: PulsarWriters; snapshots: PulsarSnapshots; checkpoints: PulsarCheckpoints } {
    if (!this.#log || !this.#writers || !this.#snapshots || !this.#checkpoints) throw new DriverError(NAME, 'not connected');
    return { log: this.#log, writers: this.#writers, snapshots: this.#snapshots, checkpoints: this.#checkpoints };
  }
}
