import { Admin, Producer, type BaseOptions, type ProducerOptions } from '@platformatic/kafka';
import type {
  AppendLimits,
  AppendRequest,
  AppendResult,
  DriverCapabilities,
  PartitionLease,
  PartitionOwnerDriver,
  PartitionRange,
  Position,
  StoredEvent,
  StoredSnapshot,
} from '../../core/driver.ts';
import { DriverError, InvalidArgumentError } from '../../core/errors.ts';
import { partitionOf } from '../../core/partition.ts';
import { sleep } from '../../core/sleep.ts';
import { ensureTopic, initTransactionalProducer, KEEP_FOREVER } from './admin.ts';
import { KafkaCheckpoints } from './checkpoints.ts';
import { KAFKA as NAME } from './errors.ts';
import { KafkaConsumerGroups, type KafkaConsumerGroupOptions } from './groups/consumer-groups.ts';
import { KafkaPartitionLease } from './lease.ts';
import { PartitionLog, type LogRecord } from './log.ts';
import { snapshotKey, snapshotRecord, storedEvent, storedSnapshot } from './records.ts';
import { KafkaNames } from './topics.ts';
import { TopicLayout } from './layout.ts';
import { CompactedView } from '../log/compacted-view.ts';
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
}

const LONG_MAX = '9223372036854775807';

/**
 * Apache Kafka, on @platformatic/kafka.
 *
 * Layout (layout.ts): a topic per aggregate category named in `categories`,
 * `<prefix>.events-<category>`, and `<prefix>.events` for every other stream; each with
 * `partitions` partitions; key = stream id; the partition within the topic is set explicitly to
 * murmur2 of the key (like Kafka's default partitioner, so plain Kafka producers agree). The
 * core sees one partition space over all topics (its positions are one vector
 * `{ partition, offset }`): the default topic's partitions first, then each category's in the
 * configured order. Topics are created on
 * `open` with `cleanup.policy=delete`, infinite retention (`retention.ms=-1`,
 * `retention.bytes=-1`) and CreateTime timestamps: the log is the source of truth and is never
 * compacted.
 *
 * Concurrency (`partition-owner`): Kafka has no conditional append. A writer claims a partition
 * by initialising the transactional producer `<prefix>.writer.p<n>` (InitProducerId bumps the
 * epoch, which fences every older holder and aborts its open transaction), waits until no
 * transaction of another writer is open on the partition (the high watermark after fencing is
 * stable), then learns the last committed record and the core catches up to it, checks versions
 * in memory and appends through the lease, one transaction per round of queued appends (group
 * commit, `src/core/partition-owner.ts`). An append across partitions is one transaction
 * through one lease, the other leases proving they are still current before it commits
 * (`KafkaPartitionLease.appendWith`). A fenced holder finds
 * out from the broker (PRODUCER_FENCED / INVALID_PRODUCER_EPOCH / … on its next request) and
 * throws `PartitionFencedError`; the core then claims back (takeover on demand). A commit whose
 * answer is an error is settled before the lease answers: the driver makes the outcome final
 * (claims the id again unless another writer did) and reads the log at the batch's offset, so
 * the caller gets either success or `PartitionFencedError` with nothing visible, never a guess.
 * An append returns once its commit markers are written (EndTxn answers before them), so a read
 * right after it sees it (if the broker cannot be asked then, the committed append still
 * reports success). Cost of takeover on demand: each switch of writer is an
 * InitProducerId (which waits for the previous holder's transaction to complete) plus a
 * catch-up read; two processes hammering one partition still progress (test/kafka/processes)
 * but at a fraction of one writer's rate. Route commands for one aggregate to one process when
 * that matters.
 *
 * Reads are read_committed everywhere (our own filter over the Fetch API: see `log.ts`).
 * `readStream` / `streamVersion` scan the stream's partition filtered by key, through an
 * in-process index (stream -> offset of each version) built incrementally: a read catches up
 * from where the index stopped, so repeated reads never rescan. Memory: one JS number per event
 * plus a map entry per stream (about 8 bytes per event + ~100 bytes per stream). A load from a
 * snapshot in a process whose index has not reached the snapshot's offset scans the partition
 * tail from that offset instead (`readStream`'s `after` hint), so a cold load costs the tail,
 * not the partition.
 *
 * Snapshots live in `<prefix>.snapshots`, a compacted topic with `partitions` partitions (a
 * stream's snapshot sits at murmur2 of the stream id, like its events within their topic; the
 * position it covers names its topic and partition, so it survives new categories): compaction keeps the last snapshot
 * per key, which is exactly "last write wins"; they stay on the cluster the store already
 * needs, replicated like the events, and can be dropped (deleting the topic) without touching
 * the truth. A process reads a snapshot partition once, lazily, then only its tail on each
 * read. Cost: the first snapshot read in a partition reads the whole (compacted) partition.
 *
 * Checkpoints are Kafka consumer-group offsets of group `<prefix>.<group>` on every events topic
 * (OffsetCommit/OffsetFetch, checkpoints.ts): the committed offset is the first one that may
 * hold an unhandled event (past the last handled event and the markers, aborted and foreign
 * records after it, so a caught-up group commits the partition's end), and its metadata names
 * the last handled event. So Kafka tooling (kafka-consumer-groups.sh) shows a subscription's
 * lag (0 once it caught up) and can reset it, and a consume-transform-produce step can commit
 * the same offsets inside its transaction. Cost: Kafka expires the offsets of a group that has been empty for
 * `offsets.retention.minutes` (7 days by default): raise it on brokers where a subscription
 * may stay stopped longer.
 */
export class KafkaDriver implements PartitionOwnerDriver {
  readonly name = NAME;
  readonly partitions: number;
  readonly concurrency = 'partition-owner';
  readonly capabilities: DriverCapabilities = { timeIndex: true };
  /** A Kafka record batch is capped at ~1 MiB by default (message.max.bytes): group commits stay well under it. */
  readonly appendLimits: AppendLimits = { maxAppends: 100, maxBytes: 512 * 1024 };
  readonly names: KafkaNames;
  /** Which topic and Kafka partition each store partition is. */
  readonly layout: TopicLayout;
  /** Native consumer groups for `store.consume`: see groups/. */
  readonly consumerGroups: KafkaConsumerGroups;
  /** Subscription checkpoints as consumer-group offsets: see checkpoints.ts. */
  readonly #checkpoints: KafkaCheckpoints;
  readonly #options: KafkaDriverOptions;
  readonly #brokers: string[];
  #admin: Admin | undefined;
  #log: PartitionLog | undefined;
  /** A client of its own for long-polls, so they never queue the store's reads behind them. */
  #waiter: Promise<{ admin: Admin; log: PartitionLog }> | undefined;
  #snapshotProducer: Producer | undefined;
  readonly #snapshots = new Map<number, CompactedView<LogRecord, StoredSnapshot>>();
  #leases = new Set<KafkaPartitionLease>();
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
    this.#checkpoints = new KafkaCheckpoints({
      names: this.names,
      layout: this.layout,
      admin: () => this.#adminOf(),
      log: () => this.#logOf(),
    });
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
      const log = new PartitionLog(admin);
      for (const { topic } of this.layout.topics) await log.describe(topic, this.layout.perTopic);
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
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter)
      await waiter
        .then(
          (w) => w.admin.close(),
          () => undefined,
        )
        .catch(() => undefined);
    await Promise.allSettled([...this.#leases].map((l) => l.release()));
    this.#leases.clear();
    await this.#snapshotProducer?.close().catch(() => undefined);
    this.#snapshotProducer = undefined;
    await this.#admin?.close().catch(() => undefined);
    this.#admin = undefined;
    this.#log = undefined;
    this.#snapshots.clear();
  }

  async claimPartition(partition: number): Promise<KafkaPartitionLease> {
    const at = this.layout.at(partition);
    const producer = await this.#initWriter(partition);
    try {
      // Fencing completed our transactional id's open transaction, but a transaction of another
      // partition's writer (`appendWith`) may still be open here, holding the stable offset back:
      // wait until everything written before the claim is decided, or the catch-up below could
      // stop short of events that commit later.
      const written = await this.#logOf().highWatermark(at.topic, at.partition);
      if (written > 0n) await this.#visible(partition, written - 1n, this.#transactionTimeout() + 20_000);
      const caughtUpTo = await this.#logOf().lastRecord(at.topic, at.partition);
      const lease: KafkaPartitionLease = new KafkaPartitionLease({
        partition,
        caughtUpTo,
        producer,
        target: at,
        owner: this,
        onRelease: () => this.#leases.delete(lease),
        visible: (offset) => this.#visible(partition, offset),
        inDoubt: (base, first, fence) => this.#inDoubt(partition, base, first, fence),
      });
      this.#leases.add(lease);
      return lease;
    } catch (error) {
      await producer.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * One transaction through the first lease's producer, the others proving they are still
   * current before it commits (`KafkaPartitionLease.appendWith`).
   */
  appendAcross(leases: readonly PartitionLease[], requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const [lead, ...others] = leases;
    if (!(lead instanceof KafkaPartitionLease)) throw new DriverError(NAME, 'appendAcross takes leases of this Kafka store');
    return lead.appendWith(others, requests);
  }

  /**
   * InitProducerId on the partition's transactional id: bumps its epoch, fencing every earlier
   * holder and aborting (and completing) whatever transaction it had open, so the stable offset
   * read next covers everything any earlier holder committed. While the coordinator is still
   * completing an earlier transaction or another claim, it answers CONCURRENT_TRANSACTIONS; when
   * writers keep taking a partition from each other that can outlast the client's retries, so
   * keep trying (with a fresh producer: a failed init leaves the client's transaction state
   * behind) until the transaction timeout has passed.
   */
  #initWriter(partition: number): Promise<Producer> {
    return initTransactionalProducer(this.#writerOptions(partition), Date.now() + Math.max(10_000, this.#transactionTimeout()));
  }

  /** Options of the transactional producer of a partition's writer. */
  #writerOptions(partition: number): ProducerOptions<Buffer, Buffer, Buffer, Buffer> {
    return {
      ...this.#base(`writer-p${partition}`),
      transactionalId: this.#writerId(partition),
      idempotent: true,
      // No expected producer id: the claim takes the transactional id over from whoever holds
      // it (the library's default, 0, makes the coordinator answer PRODUCER_FENCED instead).
      producerId: -1n,
      producerEpoch: -1,
      timeout: this.#transactionTimeout(),
    };
  }

  #writerId(partition: number): string {
    const at = this.layout.at(partition);
    return this.names.writer(at.partition, at.category);
  }

  /** Topic and Kafka partition of a store partition, as arguments for `PartitionLog`. */
  #where(partition: number): [string, number] {
    const at = this.layout.at(partition);
    return [at.topic, at.partition];
  }

  async #inDoubt(partition: number, base: bigint, first: { headers: Map<Buffer, Buffer> }, fence: boolean): Promise<boolean> {
    if (fence) {
      // InitProducerId returns once the transaction it fences is complete (committed or aborted).
      await (await this.#initWriter(partition)).close().catch(() => undefined);
    }
    // Another writer's claim may still be completing it: wait until the stable offset passes it.
    await this.#visible(partition, base);
    const page = await this.#logOf().fetch(...this.#where(partition), base);
    const record = page.records[0];
    if (!record || record.offset !== base) return false;
    const id = (r: { headers: Iterable<readonly [Buffer | null, Buffer | null]> }): string | undefined => {
      for (const [k, v] of r.headers) if (k?.toString('latin1') === 'ef-id') return v?.toString('utf8');
      return undefined;
    };
    return id(record) !== undefined && id(record) === id(first);
  }

  #transactionTimeout(): number {
    return this.#options.transactionTimeoutMs ?? 10_000;
  }

  /** Waits until read_committed readers see `offset` (the stable offset passed it). */
  async #visible(partition: number, offset: bigint, waitMs = this.#transactionTimeout()): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      if ((await this.#logOf().lastStable(...this.#where(partition))) > offset) return;
      if (Date.now() > deadline) {
        throw new DriverError(
          NAME,
          `offset ${offset} of partition ${partition} did not become readable within ${waitMs} ms (a transaction there is still open)`,
        );
      }
      await sleep(wait);
    }
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

  /** The last event: a record eventfold did not write is no head (readers skip it, so no position ever reaches it). */
  async partitionHead(partition: number): Promise<bigint | undefined> {
    return this.#logOf().lastRecord(...this.#where(partition), (record) => storedEvent(record, partition) !== undefined);
  }

  async firstOffsetAtTime(partition: number, time: number): Promise<bigint | undefined> {
    return this.#logOf().offsetForTime(...this.#where(partition), BigInt(Math.max(0, Math.floor(time))));
  }

  async readSnapshot(streamId: string, name: string): Promise<StoredSnapshot | undefined> {
    return this.#snapshotView(partitionOf(streamId, this.layout.perTopic)).get(snapshotKey(streamId, name));
  }

  async writeSnapshot(snapshot: StoredSnapshot): Promise<void> {
    // The snapshots topic has as many partitions as one events topic, whatever the categories.
    const partition = partitionOf(snapshot.streamId, this.layout.perTopic);
    this.#snapshotProducer ??= new Producer({ ...this.#base('snapshots'), idempotent: true });
    const at = this.layout.at(snapshot.position.partition);
    await this.#snapshotProducer.send({ messages: [snapshotRecord(this.names.snapshots, partition, snapshot, at) as never] });
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
  async waitForEvents(after: readonly Position[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    if (!this.#waiter) {
      const admin = new Admin(this.#base('waiter'));
      const log = new PartitionLog(admin);
      this.#waiter = Promise.all(this.layout.topics.map((t) => log.describe(t.topic, this.layout.perTopic))).then(
        () => ({ admin, log }),
        async (error: unknown) => {
          this.#waiter = undefined;
          await admin.close().catch(() => undefined);
          throw error;
        },
      );
    }
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const blockMs = this.#options.blockMs ?? 1000;
    const wait = async (): Promise<void> => {
      const { log } = await this.#waiter!;
      // Every commit ends in a marker no reader sees: long-polling from just past the last
      // event would wake at once on it. Step past what is already there first (no wait); if
      // that holds events, they are new: wake now.
      const from = new Map<string, bigint[]>(this.layout.topics.map((t) => [t.topic, []]));
      for (let partition = 0; partition < this.partitions; partition++) {
        const offset = after.find((p) => p.partition === partition)?.offset;
        const [topic, kafkaPartition] = this.#where(partition);
        const page = await this.#logOf().fetch(topic, kafkaPartition, offset === undefined ? 0n : offset + 1n);
        if (page.records.length > 0) return;
        from.get(topic)![kafkaPartition] = page.next;
      }
      await Promise.race([...from].map(([topic, offsets]) => log.waitAny(topic, offsets, blockMs)));
    };
    await Promise.race([
      // A failing long-poll must not turn into a busy loop: then just wait like a poll would.
      wait().catch(() => new Promise<void>((resolve) => setTimeout(resolve, blockMs).unref())),
      aborted,
    ]);
  }

  /** The snapshots of one partition of the snapshots topic (the last per stream and name). */
  #snapshotView(partition: number): CompactedView<LogRecord, StoredSnapshot> {
    let view = this.#snapshots.get(partition);
    if (!view) {
      view = new CompactedView(this.#pages(this.names.snapshots, partition), (record) => {
        const key = record.key?.toString('utf8');
        if (key === undefined) return undefined;
        const value = storedSnapshot(record, (topic, p) => this.layout.partitionFor(topic ?? this.names.events, p));
        return { key, value };
      });
      this.#snapshots.set(partition, view);
    }
    return view;
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
