// The driver contract, in one file on purpose (over 400 lines, mostly doc comments): a backend
// author reads it top to bottom, and the interfaces refer to each other.
import type { ExpectedVersion } from './expected-version.ts';

/**
 * The contract between the core and a backend. A driver stores and reads bytes; the core owns
 * every rule about events (validation, codecs, upcasting, expected-version semantics,
 * idempotent retries, snapshots policies, subscriptions). Keep drivers thin: if two drivers
 * would need the same logic, it belongs in the core.
 *
 * A driver is one of two kinds (`concurrency`), and the type says which methods each needs:
 * `ConditionalAppendDriver` (SQLite, Redis, PostgreSQL: the store checks the expected version)
 * or `PartitionOwnerDriver` (Kafka, Pulsar: a log with single-writer fencing, where the core
 * checks versions against its own index of each partition).
 *
 * Contract, for every driver:
 * 1. Per-stream order: the events of one stream get consecutive versions 1, 2, 3… and all live
 *    in one partition (the driver's `partitionOf`, else the core's murmur2), in version order.
 *    The core passes that partition on every per-stream call.
 * 2. Positions: `offset` grows strictly within a partition (gaps allowed). There is no order
 *    across partitions and the API never promises one. What a partition shows readers is a
 *    stable prefix: once a read has returned the event at offset o, every event at an offset
 *    below o is readable too and no event ever appears below o later (a backend whose
 *    transactions commit out of offset order must hold back reads past an uncommitted one).
 * 3. Atomic append: one append stores all of its events or none.
 * 4. Conditional append (conditional-append drivers): `append` checks `expectedVersion`
 *    against the stream's current version inside the same atomic step (use
 *    `matchesExpectedVersion`) and throws `ExpectedVersionConflictError` with the actual
 *    version when it does not match. Of N concurrent appends with the same expected version,
 *    across processes, exactly one succeeds.
 * 5. Event ids are unique within a partition (so within a stream, and in the whole store for a
 *    one-partition backend): an append carrying an id already stored in its partition throws
 *    `DuplicateEventIdError` naming where it is, and writes nothing. (The core turns an exact
 *    retry of an earlier append into a success; drivers do not need to. Partition-owner drivers
 *    get this from the core's index, over a window after a restore from a checkpoint: see
 *    `core/log/partition-index.ts`.) Per partition, not global, because a partition is the
 *    largest unit a log backend can check atomically.
 * 6. Reads return what was appended, byte for byte; `time` is whatever the core passed.
 * 7. Checkpoints and snapshots are plain key/value records; the last write wins.
 * 8. Errors: the typed errors above for the conditions above; anything else is a `DriverError`.
 */
export type EventStoreDriver = ConditionalAppendDriver | PartitionOwnerDriver;

/** What every driver has, whatever its kind. */
export interface DriverBase {
  /** Short backend name used in error prefixes: `[eventfold] [sqlite]`. */
  readonly name: string;
  /** Number of partitions the store's streams are spread over (1 for SQLite). */
  readonly partitions: number;
  /**
   * The partition of a stream, for drivers that place streams themselves (Kafka with a topic per
   * aggregate category). Default: the core's `partitionOf(streamId, partitions)` (murmur2).
   * Must be a pure function of the stream id for the life of the data.
   */
  partitionOf?(streamId: string): number;
  readonly capabilities: DriverCapabilities;

  /** Called once by the core before first use; creates tables, topics, scripts… */
  open(): Promise<void>;
  /** Releases connections. The core never calls a driver after `close`. */
  close(): Promise<void>;

  /** Events of one partition with offset > `after` (all when `after` is undefined), oldest first, at most `limit`. */
  readPartition(partition: number, range: { after: bigint | undefined; limit: number }): Promise<StoredEvent[]>;
  /** Last offset of the partition, or undefined when it is empty. */
  partitionHead(partition: number): Promise<bigint | undefined>;
  /**
   * An offset at or before the first event of the partition whose `time` is >= `time` (a log
   * may answer with a transaction marker just before it), or undefined when no event is that
   * recent. The core reads from there and filters by time.
   * Drivers with a time index (`capabilities.timeIndex`) implement it; the core otherwise scans
   * from the start.
   */
  firstOffsetAtTime?(partition: number, time: number): Promise<bigint | undefined>;

  readSnapshot(streamId: string, name: string): Promise<StoredSnapshot | undefined>;
  writeSnapshot(snapshot: StoredSnapshot): Promise<void>;

  /** Position vector of a consumer group: the last processed offset of each partition it has seen. */
  readCheckpoint(group: string): Promise<readonly Position[] | undefined>;
  writeCheckpoint(group: string, positions: readonly Position[]): Promise<void>;
  deleteCheckpoint(group: string): Promise<void>;

  /**
   * Optional wake-up for live subscriptions: resolves when a partition may have events after
   * the given positions (a blocking read), or when `signal` aborts. Without it the core polls
   * and wakes on appends made in this process.
   */
  waitForEvents?(after: readonly Position[], signal: AbortSignal): Promise<void>;

  /** Competing consumers inside a group with delivery counts and dead letters, where the backend has them natively. */
  readonly consumerGroups?: ConsumerGroupDriver;

  /**
   * Optional, for tools (`eventfold streams`, `stats`): one page of the store's streams with
   * their current versions, in no promised order, about `limit` of them (a page may be short, or
   * a little longer: Redis SCAN steps); `cursor` is what the previous page returned (undefined
   * for the first). A
   * stream appended to while paging may be missed or reported at an older version. Without it
   * the core derives the list (`core/stream-list.ts`): from index checkpoints and the tail on a
   * log, else by scanning every partition.
   */
  listStreams?(page: { readonly cursor: string | undefined; readonly limit: number }): Promise<StreamPage>;
  /** Optional, for tools (`eventfold groups`): the names of the groups with a saved checkpoint. */
  listCheckpointGroups?(): Promise<string[]>;

  /**
   * Optional: learns the store's event types, for a backend with a schema registry (Pulsar).
   * The core calls it once after `open`, before any other use; if it throws (e.g.
   * `SchemaIncompatibleError`), the open fails and the core closes the driver. It must not
   * touch stored events.
   */
  registerEventTypes?(types: readonly EventTypeDescription[]): Promise<void>;
}

/** An event type as a driver sees it (`registerEventTypes`). */
export interface EventTypeDescription {
  readonly type: string;
  readonly schemaVersion: number;
  /**
   * JSON Schema of the stored payload (the validator's output type), when the event's Standard
   * Schema can emit one (`~standard.jsonSchema`, Standard JSON Schema v1: zod 4, …); undefined
   * when it cannot.
   */
  readonly jsonSchema?: Readonly<Record<string, unknown>>;
}

/** A stream and its current version, as `listStreams` reports it. */
export interface StreamSummary {
  readonly streamId: string;
  readonly partition: number;
  readonly version: number;
}

export interface StreamPage {
  readonly streams: readonly StreamSummary[];
  /** Where the next page starts; undefined on the last page. */
  readonly cursor: string | undefined;
}

/** A store that checks the expected version itself, inside the atomic append (SQLite, Redis, PostgreSQL). */
export interface ConditionalAppendDriver extends DriverBase {
  readonly concurrency: 'conditional-append';
  /** Appends to one stream. See contract points 3–5. `events` is never empty. */
  append(request: AppendRequest): Promise<AppendResult>;
  /**
   * Appends to several streams as one atomic step (all or none), each request checked as in
   * `append`. Drivers that have it support `store.appendMany`.
   */
  appendMany?(requests: readonly AppendRequest[]): Promise<AppendResult[]>;
  /** Current version of a stream (0 when it does not exist). */
  streamVersion(streamId: string, partition: number): Promise<number>;
  /** Events of one stream with `fromVersion <= version <= toVersion`, oldest first, at most `limit`. */
  readStream(streamId: string, partition: number, range: VersionRange): Promise<StoredEvent[]>;
}

/**
 * A log without a conditional append (Kafka, Pulsar): a writer claims a partition (fencing
 * earlier holders), and the core catches its index of the partition up to the claim, checks
 * expected versions against it and appends through the lease. Per-stream reads are the core's
 * too: its index says where a stream's events are, `readPartition` with `streamId` fetches them.
 */
export interface PartitionOwnerDriver extends DriverBase {
  readonly concurrency: 'partition-owner';
  /**
   * As for every driver, and with `streamId`: only that stream's events (filtered by key before
   * decoding, where the log has keys). The core reads a stream this way, from its index.
   */
  readPartition(partition: number, range: PartitionRange): Promise<StoredEvent[]>;
  /**
   * The events at these offsets of the partition (ascending, offsets the core's index knows
   * hold events), in order: a stream's events without scanning what lies between them. Without
   * it the core reads with `readPartition` filtered by the stream id.
   */
  readAt?(partition: number, offsets: readonly bigint[]): Promise<StoredEvent[]>;
  /** What one transaction may carry: the core's group commit stays under it. */
  readonly appendLimits: AppendLimits;
  claimPartition(partition: number): Promise<PartitionLease>;
  /**
   * Appends checked requests through several leases of this driver as ONE transaction: all
   * visible or none. Every lease must still be current when it commits; if any was claimed by
   * another writer meanwhile, nothing becomes visible and it throws `PartitionFencedError`. A
   * claim on such a backend must also wait for transactions of other leases that touched its
   * partition to complete. Drivers that have it support `store.appendMany` across partitions.
   */
  appendAcross?(leases: readonly PartitionLease[], requests: readonly AppendRequest[]): Promise<AppendResult[]>;
  /**
   * The last full checkpoint and the last delta of the core's index of a partition (bytes
   * written through `PartitionLease.writeIndexCheckpoint`, each kind kept apart: a delta never
   * replaces a full one), undefined where there is none; a delta older than the full one may be
   * left out (it extends an older full one). With them, a cold process restores the index and
   * reads only the partition's tail after it.
   */
  readIndexCheckpoints?(partition: number): Promise<IndexCheckpoints>;
  /** Events a partition's index grows by between two checkpoints (full or delta). Default 20000. */
  readonly indexCheckpointEvents?: number;
  /**
   * Writer processes of the store share the partitions out, and an append to a partition this
   * process does not own goes to its owner as a request (core/log/append-router.ts). Without
   * it, a writer takes a partition over whenever it appends there (takeover on demand).
   */
  readonly routing?: AppendRouting;
}

/**
 * The writers of one store as a group (Kafka: a consumer group over a requests topic
 * partitioned like the events; Pulsar: a Failover subscription). The backend decides who owns
 * which partition and carries requests and replies as opaque bytes; the core appends and
 * answers (core/log/append-router.ts).
 */
export interface AppendRouting {
  /** Joins the group; resolves once `handler.owned` has heard the first assignment. */
  join(handler: RoutingHandler): Promise<RoutingMember>;
}

export interface RoutingHandler {
  /** The partitions this process owns now (the whole set, after each change of the group). */
  owned(partitions: ReadonlySet<number>): void;
  /**
   * Requests sent to a partition this process owns, in order. Resolves with the offset the
   * partition's requests are done up to (exclusive: the next owner starts there), which is the
   * offset after the last one unless this process lost the partition meanwhile. The backend
   * fetches that partition's next requests only after it resolves.
   */
  requests(partition: number, batch: readonly RoutedBytes[]): Promise<bigint>;
  /** A reply addressed to this process. */
  reply(bytes: Uint8Array): void;
}

export interface RoutedBytes {
  readonly offset: bigint;
  readonly bytes: Uint8Array;
}

export interface RoutingMember {
  /** Where replies to this process go; requests carry it. */
  readonly address: string;
  /** Sends a request to the owner of `partition`, whoever it is now or will be. */
  send(partition: number, bytes: Uint8Array): Promise<void>;
  reply(address: string, bytes: Uint8Array): Promise<void>;
  /** Leaves the group (its partitions go to the others at once). */
  leave(): Promise<void>;
}

export interface AppendLimits {
  /** Most appends (store.append calls) one transaction carries. */
  readonly maxAppends: number;
  /** Most payload bytes (data, metadata, type, id and a fixed allowance per event) one transaction carries. */
  readonly maxBytes: number;
}

export interface VersionRange {
  readonly fromVersion: number;
  readonly toVersion: number;
  readonly limit: number;
}

export interface PartitionRange {
  readonly after: bigint | undefined;
  readonly limit: number;
  readonly streamId?: string;
}

/**
 * Native consumer groups (Redis XREADGROUP, Kafka groups, Pulsar shared subscriptions):
 * several consumers of one group share the work, each event is handed to one of them, and an
 * event not acknowledged stays pending until it is acknowledged, claimed by another consumer
 * or dead-lettered. The core (`EventStore.consume`) owns the rules — when to retry, when an
 * event is poison, when a consumer counts as dead; the driver only moves entries.
 */
export interface ConsumerGroupDriver {
  /** Creates the group if it does not exist, positioned at the beginning or the end of every partition. */
  ensureGroup(group: string, start: 'beginning' | 'end'): Promise<void>;
  /**
   * New deliveries for `consumer`, waiting up to `blockMs` for some. `maxIdleMs` is how long the
   * consumer may go without reading before it counts as gone (a backend whose members hold work
   * by membership, Kafka, then hands its partitions to the others).
   */
  read(group: string, consumer: string, options: { limit: number; blockMs: number; maxIdleMs: number }): Promise<Delivery[]>;
  /**
   * Entries delivered to this consumer name before and not acknowledged (after a restart). Leave
   * it out where the broker delivers unacknowledged entries again by itself (Kafka: the
   * uncommitted tail of a partition goes to its next owner).
   */
  readPending?(group: string, consumer: string, options: { limit: number }): Promise<Delivery[]>;
  /**
   * Takes over entries pending for longer than `minIdleMs` (their consumer is presumed dead).
   * Leave it out where the broker hands a dead consumer's work over by itself (Kafka rebalances).
   */
  claimIdle?(group: string, consumer: string, options: { minIdleMs: number; limit: number }): Promise<Delivery[]>;
  ack(group: string, deliveries: readonly Delivery[]): Promise<void>;
  /** Moves an entry to the group's dead letters and acknowledges it, atomically. */
  deadLetter(group: string, delivery: Delivery, reason: string): Promise<void>;
  listDeadLetters(group: string, limit: number): Promise<DeadLetter[]>;
  /** Hands dead letters back to the group (all when `ids` is undefined); returns how many. */
  redrive(group: string, ids: readonly string[] | undefined): Promise<number>;
  /** Moves the group to the start (replay) or the end of every partition. */
  resetGroup(group: string, to: 'beginning' | 'end'): Promise<void>;
  /**
   * Called when a consumer stops, so a backend whose members hold work by membership (Kafka
   * partitions) hands it to the others at once. Unacknowledged entries stay pending.
   */
  leave?(group: string, consumer: string): Promise<void>;
  /**
   * Optional, for tools (`eventfold groups --consumer-group`): per partition, the offset up to
   * which the group has taken events (the later ones wait for it; undefined: none taken yet),
   * and how many taken ones still wait for an ack, where the backend keeps that apart (Kafka
   * does not: a member's uncommitted deliveries are not visible outside it). Undefined when the
   * group does not exist.
   */
  describeGroup?(group: string): Promise<readonly ConsumerGroupPartition[] | undefined>;
}

/** One partition of a native consumer group, as `describeGroup` reports it. */
export interface ConsumerGroupPartition {
  readonly partition: number;
  readonly position: bigint | undefined;
  readonly pending: number | undefined;
}

export interface Delivery {
  readonly event: StoredEvent;
  /** How many times the entry has been delivered, this time included. */
  readonly deliveries: number;
  /** Opaque handle the driver needs to acknowledge or dead-letter it. */
  readonly receipt: string;
}

export interface DeadLetter {
  readonly id: string;
  readonly event: StoredEvent;
  readonly reason: string;
  readonly deliveries: number;
  readonly deadAt: number;
}

export interface DriverCapabilities {
  /** `firstOffsetAtTime` is backed by an index, not a scan. */
  readonly timeIndex: boolean;
}

/**
 * Exclusive right to append to one partition (Kafka: a transactional producer whose
 * transactional id belongs to the partition; claiming bumps its epoch and fences every
 * earlier holder, aborting whatever transaction it had open).
 */
export interface PartitionLease {
  readonly partition: number;
  /**
   * Offset of the last committed event of the partition now that the claim is done (an event,
   * not a transaction marker: on Kafka the last stable offset is usually a marker no reader
   * sees), or undefined when the partition has none. The core catches its index of the
   * partition up to here (with `readPartition`) before it checks an expected version.
   */
  readonly caughtUpTo: bigint | undefined;
  /**
   * Appends requests the core has already checked, all of this partition, as one transaction:
   * all visible or none. Throws `PartitionFencedError` when another writer claimed the
   * partition since this lease was taken; nothing of that append becomes visible then.
   */
  append(requests: readonly AppendRequest[]): Promise<AppendResult[]>;
  /**
   * Stores a checkpoint of the core's index of this partition (opaque bytes, possibly several
   * MiB) in place of the earlier one of the same kind, atomically: a reader gets all of it or
   * an earlier one. Drivers with `readIndexCheckpoints` implement it.
   */
  writeIndexCheckpoint?(bytes: Uint8Array, kind: IndexCheckpointKind): Promise<void>;
  release(): Promise<void>;
}

/** A full checkpoint of a partition's index, or a delta: what it gained since the last full one (core/log/index-checkpoint.ts). */
export type IndexCheckpointKind = 'full' | 'delta';

export interface IndexCheckpoints {
  readonly full: Uint8Array | undefined;
  readonly delta: Uint8Array | undefined;
}

export interface Position {
  readonly partition: number;
  readonly offset: bigint;
}

/** An event as the driver stores it: the payload already encoded by the core's codec. */
export interface EncodedEvent {
  readonly id: string;
  readonly type: string;
  readonly schemaVersion: number;
  readonly codec: string;
  readonly data: Uint8Array;
  /** JSON object of string values. */
  readonly metadata: string;
  /** Milliseconds since the epoch, set by the core when the event was appended. */
  readonly time: number;
}

export interface StoredEvent extends EncodedEvent {
  readonly streamId: string;
  readonly version: number;
  readonly position: Position;
}

export interface AppendRequest {
  readonly streamId: string;
  readonly partition: number;
  readonly expectedVersion: ExpectedVersion;
  readonly events: readonly EncodedEvent[];
}

export interface AppendResult {
  /** Version of the stream after the append (the version of its last event). */
  readonly nextExpectedVersion: number;
  /** Position of each appended event, in order. */
  readonly positions: readonly Position[];
  /**
   * Set when the append was an exact retry of one already stored (same event ids at the
   * versions this append would have given them): what the first try stored. The core reports
   * it as `alreadyStored`. Drivers may leave retries to the core, which checks on a conflict.
   */
  readonly stored?: readonly StoredEvent[];
}

export interface StoredSnapshot {
  readonly streamId: string;
  /** Snapshot name, usually the aggregate's name: one stream may be folded by several. */
  readonly name: string;
  readonly schemaVersion: number;
  /** Stream version the state covers. */
  readonly version: number;
  /** Position of the event at `version`. */
  readonly position: Position;
  readonly state: Uint8Array;
  readonly takenAt: number;
}
