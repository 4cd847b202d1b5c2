import { Admin, type BaseOptions } from '@platformatic/kafka';
import type {
  AppendLimits,
  AppendRequest,
  AppendResult,
  AppendRouting,
  DriverCapabilities,
  IndexCheckpoints,
  PartitionLease,
  PartitionOwnerDriver,
  PartitionRange,
  Position,
  StoredEvent,
  StoredSnapshot,
} from '../../core/driver.ts';
import { DriverError, InvalidArgumentError } from '../../core/errors.ts';
import { ensureTopic, KEEP_FOREVER } from './admin.ts';
import { KafkaCheckpoints } from './checkpoints.ts';
import { KAFKA as NAME } from './errors.ts';
import { KafkaConsumerGroups, type KafkaConsumerGroupOptions } from './groups/consumer-groups.ts';
import type { KafkaPartitionLease } from './lease.ts';
import { PartitionLog, type LogRecord } from './log.ts';
import { storedEvent } from './records.ts';
import { KafkaNames } from './topics.ts';
import { TopicLayout } from './layout.ts';
import { INDEX_TOPIC_CONFIG } from './index-checkpoints.ts';
import { indexPartition, searchIndexCheckpoints } from './index-checkpoint-read.ts';
import { KafkaSnapshots } from './snapshots.ts';
import { KafkaWaiter } from './waiter.ts';
import { KafkaWriters } from './writers.ts';
import { KafkaWriterGroup, type KafkaRoutingOptions } from './routing/writer-group.ts';
import { type PageReader, scanLog } from '../log/scan.ts';

export interface KafkaDriverOptions {
  /** Bootstrap brokers. Default `['127.0.0.1:9092']`. */
  readonly brokers?: readonly string[];
  /** Prefix of the store's topics, transactional ids and groups. Default `eventfold`. */
  readonly prefix?: string;
  /** Partitions of each events topic, fixed for the life of the data. Default 8. */
  readonly partitions?: number;
  /**
   * Aggregate categories that get an events topic of their own, `<prefix>.events-<category>`
   * (a stream `order-42` belongs to category `order`); other streams go to `<prefix>.events`.
   * Append-only: add new categories at the end (see layout.ts). Default none.
   */
  readonly categories?: readonly string[];
  /** Replication factor of the topics the driver creates. Default 1. */
  readonly replicationFactor?: number;
  /**
   * Passed to every @platformatic/kafka client the driver creates: `tls`, `sasl`,
   * `connectTimeout`, `requestTimeout`, `retries`, `retryDelay`…
   */
  readonly clientOptions?: Omit<Partial<BaseOptions>, 'clientId' | 'bootstrapBrokers'>;
  /**
   * Transaction timeout of the writers: how long the coordinator lets a writer that stopped
   * mid-transaction hold back read_committed readers before it aborts the transaction (a new
   * claim aborts it at once). Default 10000 ms.
   */
  readonly transactionTimeoutMs?: number;
  /** Longest a live subscription's long-poll (a read_committed Fetch) waits before the core looks again. Default 1000 ms. */
  readonly blockMs?: number;
  /** Group membership timings of `store.consume`'s competing consumers (session timeout, heartbeat). */
  readonly consumerGroups?: KafkaConsumerGroupOptions;
  /**
   * Events a partition grows by between two checkpoints of the core's index of it (in the
   * compacted `<prefix>.index` topics), so a cold process reads the last checkpoint and the tail
   * after it instead of the whole partition. Later checkpoints are spaced wider (a quarter of
   * the index's size at least). Default 20000.
   */
  readonly indexCheckpointEvents?: number;
  /**
   * Stable partition ownership: the store's writer processes form the consumer group
   * `<prefix>._writers`, which gives each partition to one of them, and an append to a
   * partition another process owns is sent to it (core/log/append-router.ts, the group's
   * timings here). `false`: every writer takes a partition over when it appends there
   * (takeover on demand; for one writer process, or tests of fencing). Default on.
   */
  readonly routing?: false | KafkaRoutingOptions;
}

const LONG_MAX = '9223372036854775807';

/**
 * Apache Kafka, on @platformatic/kafka: a partition-owner driver (writers claim partitions with
 * transactional ids; the core checks versions against its index and appends through leases).
 * Topics per category, reads read_committed through our own filter, snapshots in a compacted
 * topic, checkpoints as consumer-group offsets. The design and its costs:
 * docs/architecture/kafka.md.
 */
export class KafkaDriver implements PartitionOwnerDriver {
  readonly name = NAME;
  readonly partitions: number;
  readonly concurrency = 'partition-owner';
  readonly capabilities: DriverCapabilities = { timeIndex: true };
  /** A Kafka record batch is capped at ~1 MiB by default (message.max.bytes): group commits stay well under it. */
  readonly appendLimits: AppendLimits = { maxAppends: 100, maxBytes: 512 * 1024 };
  readonly indexCheckpointEvents: number;
  readonly names: KafkaNames;
  /** Which topic and Kafka partition each store partition is. */
  readonly layout: TopicLayout;
  /** Native consumer groups for `store.consume`: see groups/. */
  readonly consumerGroups: KafkaConsumerGroups;
  /** The writer group (routing/), unless `routing: false`. */
  readonly routing: AppendRouting | undefined;
  /** Subscription checkpoints as consumer-group offsets: see checkpoints.ts. */
  readonly #checkpoints: KafkaCheckpoints;
  readonly #options: KafkaDriverOptions;
  readonly #brokers: string[];
  readonly #writers: KafkaWriters;
  readonly #snapshots: KafkaSnapshots;
  readonly #waiter: KafkaWaiter;
  #admin: Admin | undefined;
  #log: PartitionLog | undefined;
  /** Close hooks of other clients of this backend on the store (projectors); run first by `close`. */
  readonly #attached = new Set<() => Promise<void>>();

  constructor(options: KafkaDriverOptions = {}) {
    const partitions = options.partitions ?? 8;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 10_000) {
      throw new InvalidArgumentError('partitions must be an integer from 1 to 10000');
    }
    const replication = options.replicationFactor ?? 1;
    if (!Number.isInteger(replication) || replication < 1) throw new InvalidArgumentError('replicationFactor must be a positive integer');
    const timeout = options.transactionTimeoutMs ?? 10_000;
    if (!Number.isInteger(timeout) || timeout < 1000) throw new InvalidArgumentError('transactionTimeoutMs must be an integer >= 1000');
    this.#brokers = [...(options.brokers ?? ['127.0.0.1:9092'])];
    if (this.#brokers.length === 0) throw new InvalidArgumentError('brokers must name at least one broker');
    this.names = new KafkaNames(options.prefix ?? 'eventfold');
    this.layout = new TopicLayout(this.names, partitions, options.categories ?? []);
    this.partitions = this.layout.partitions;
    this.#options = options;
    this.indexCheckpointEvents = options.indexCheckpointEvents ?? 20_000;
    if (!Number.isInteger(this.indexCheckpointEvents) || this.indexCheckpointEvents < 1) {
      throw new InvalidArgumentError('indexCheckpointEvents must be a positive integer');
    }
    this.#checkpoints = new KafkaCheckpoints({
      names: this.names,
      layout: this.layout,
      admin: () => this.#adminOf(),
      log: () => this.#logOf(),
    });
    const base = (role: string): BaseOptions => this.#base(role);
    const log = (): PartitionLog => this.#logOf();
    this.#writers = new KafkaWriters({ names: this.names, layout: this.layout, transactionTimeoutMs: timeout, base, log });
    this.#snapshots = new KafkaSnapshots({ names: this.names, layout: this.layout, base, pages: (t, p) => this.#pages(t, p) });
    this.#waiter = new KafkaWaiter({ layout: this.layout, base, blockMs: options.blockMs ?? 1000, log });
    this.routing =
      options.routing === false
        ? undefined
        : new KafkaWriterGroup({ names: this.names, layout: this.layout, replicationFactor: replication, options: options.routing, base });
    this.consumerGroups = new KafkaConsumerGroups({
      names: this.names,
      layout: this.layout,
      replicationFactor: replication,
      base: (role) => this.#base(role),
      options: options.consumerGroups,
    });
  }

  /**
   * For other clients of this backend on the store's cluster (the projector): client options
   * like the driver's own (brokers, TLS/SASL, retries), the replication factor of the topics it
   * creates, and `onClose`, run when the driver closes; it returns the unregister function.
   */
  attach(role: string, onClose: () => Promise<void>): { client: BaseOptions; replicationFactor: number; detach: () => void } {
    this.#attached.add(onClose);
    return {
      client: this.#base(role),
      replicationFactor: this.#options.replicationFactor ?? 1,
      detach: () => this.#attached.delete(onClose),
    };
  }

  #base(role: string): BaseOptions {
    return {
      retries: 10,
      // Short, jittered: CONCURRENT_TRANSACTIONS clears within milliseconds, and two writers
      // retrying in lockstep would keep colliding.
      retryDelay: (_client, _op, attempt) => Math.min(500, 5 * 2 ** Math.max(0, attempt - 1)) * (0.5 + Math.random()),
      ...this.#options.clientOptions,
      clientId: `eventfold-${role}`,
      bootstrapBrokers: this.#brokers,
    };
  }

  async open(): Promise<void> {
    const admin = new Admin(this.#base('admin'));
    try {
      const existing = new Set(await admin.listTopics());
      const replicas = this.#options.replicationFactor ?? 1;
      const create = (topic: string, configs: Record<string, string>): Promise<void> =>
        ensureTopic(admin, { topic, partitions: this.layout.perTopic, replicas, configs }, existing);
      // A category topic that the configuration no longer names holds events no read would see.
      const categoryPrefix = this.names.categoryEvents('');
      const dropped = [...existing].filter((t) => t.startsWith(categoryPrefix) && this.layout.partitionFor(t, 0) === undefined);
      if (dropped.length > 0) {
        throw new DriverError(
          NAME,
          `topic ${dropped.join(', ')} holds events of a category missing from \`categories\`; categories can only be added (at the end), never removed`,
        );
      }
      for (const { topic } of this.layout.topics) {
        await create(topic, {
          ...KEEP_FOREVER,
          'message.timestamp.type': 'CreateTime',
          // Event times come from the core's clock, which may run ahead of the broker's.
          'message.timestamp.after.max.ms': LONG_MAX,
        });
      }
      await create(this.names.snapshots, { 'cleanup.policy': 'compact' });
      for (const { category } of this.layout.topics) await create(this.names.index(category), INDEX_TOPIC_CONFIG);
      const log = new PartitionLog(admin);
      for (const { topic, category } of this.layout.topics) {
        await log.describe(topic, this.layout.perTopic);
        await log.describe(this.names.index(category), this.layout.perTopic);
      }
      await log.describe(this.names.snapshots, this.layout.perTopic);
      this.#admin = admin;
      this.#log = log;
    } catch (error) {
      await admin.close().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.consumerGroups.close();
    await Promise.allSettled([...this.#attached].map((close) => close()));
    await this.#waiter.close();
    await this.#writers.releaseAll();
    await this.#snapshots.close();
    await this.#admin?.close().catch(() => undefined);
    this.#admin = undefined;
    this.#log = undefined;
  }

  claimPartition(partition: number): Promise<KafkaPartitionLease> {
    return this.#writers.claim(partition);
  }

  /** One transaction through several leases: see `KafkaPartitionLease.appendWith`. */
  appendAcross(leases: readonly PartitionLease[], requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    return this.#writers.appendAcross(leases, requests);
  }

  /** The last complete full checkpoint of the core's index of a partition and the last delta after it, read backwards (index-checkpoint-read.ts). */
  async readIndexCheckpoints(partition: number): Promise<IndexCheckpoints> {
    const at = this.layout.at(partition);
    return searchIndexCheckpoints(indexPartition(this.#logOf(), this.names.index(at.category), at.partition));
  }

  /** Topic and Kafka partition of a store partition, as arguments for `PartitionLog`. */
  #where(partition: number): [string, number] {
    const at = this.layout.at(partition);
    return [at.topic, at.partition];
  }

  /** Store partition of a stream: its category's topic, then murmur2 of the key (see layout.ts). */
  partitionOf(streamId: string): number {
    return this.layout.partitionOf(streamId);
  }

  /** Records this driver has fetched from the broker (page cache hits not counted): what reads cost. */
  get recordsFetched(): number {
    return this.#log?.recordsFetched ?? 0;
  }

  /** See `PartitionOwnerDriver.readPartition`: with `streamId`, records of other keys are skipped before decoding. */
  async readPartition(partition: number, range: PartitionRange): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    const key = range.streamId === undefined ? undefined : Buffer.from(range.streamId, 'utf8');
    await scanLog(this.#pages(...this.#where(partition)), range.after === undefined ? 0n : range.after + 1n, (record) => {
      if (key && !record.key?.equals(key)) return undefined;
      const event = storedEvent(record, partition);
      if (event) out.push(event);
      return out.length < range.limit;
    });
    return out;
  }

  /** See `PartitionOwnerDriver.readAt`: one fetch per page that holds a wanted offset (the next ones on it come from the page cache). */
  async readAt(partition: number, offsets: readonly bigint[]): Promise<StoredEvent[]> {
    const [topic, kafkaPartition] = this.#where(partition);
    const out: StoredEvent[] = [];
    for (const offset of offsets) {
      const page = await this.#logOf().fetch(topic, kafkaPartition, offset);
      const record = page.records[0];
      if (record?.offset !== offset) continue;
      const event = storedEvent(record, partition);
      if (event) out.push(event);
    }
    return out;
  }

  /** The last event: a record eventfold did not write is no head (readers skip it, so no position ever reaches it). */
  async partitionHead(partition: number): Promise<bigint | undefined> {
    return this.#logOf().lastRecord(...this.#where(partition), (record) => storedEvent(record, partition) !== undefined);
  }

  async firstOffsetAtTime(partition: number, time: number): Promise<bigint | undefined> {
    return this.#logOf().offsetForTime(...this.#where(partition), BigInt(Math.max(0, Math.floor(time))));
  }

  readSnapshot(streamId: string, name: string): Promise<StoredSnapshot | undefined> {
    return this.#snapshots.read(streamId, name);
  }

  writeSnapshot(snapshot: StoredSnapshot): Promise<void> {
    return this.#snapshots.write(snapshot);
  }

  async readCheckpoint(group: string): Promise<readonly Position[] | undefined> {
    return this.#checkpoints.read(group);
  }

  async writeCheckpoint(group: string, positions: readonly Position[]): Promise<void> {
    await this.#checkpoints.write(group, positions);
  }

  async deleteCheckpoint(group: string): Promise<void> {
    await this.#checkpoints.delete(group);
  }

  /** Live subscriptions: a read_committed long-poll on every partition past the given positions. */
  waitForEvents(after: readonly Position[], signal: AbortSignal): Promise<void> {
    return this.#waiter.wait(after, signal);
  }

  /** Pages of a Kafka partition, read_committed, for the log toolkit's scans. */
  #pages(topic: string, partition: number): PageReader<LogRecord> {
    return async (from) => {
      const page = await this.#logOf().fetch(topic, partition, from);
      // Retention or deleteRecords moved the start past `from`: go on from there.
      if (page.logStart > from) return { records: [], next: page.logStart, end: false };
      return { records: page.records, next: page.next, end: !page.fromCache && page.next >= page.lastStable };
    };
  }

  #adminOf(): Admin {
    if (!this.#admin) throw new DriverError(NAME, 'not connected');
    return this.#admin;
  }

  #logOf(): PartitionLog {
    if (!this.#log) throw new DriverError(NAME, 'not connected');
    return this.#log;
  }
}
