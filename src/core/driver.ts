import type { ExpectedVersion } from './expected-version.ts';

/**
 * The contract between the core and a backend. A driver stores and reads bytes; the core owns
 * every rule about events (validation, codecs, upcasting, expected-version semantics,
 * idempotent retries, snapshots policies, subscriptions). Keep drivers thin: if two drivers
 * would need the same logic, it belongs in the core.
 *
 * Contract, for every driver:
 * 1. Per-stream order: the events of one stream get consecutive versions 1, 2, 3… and all live
 *    in one partition (the driver's `partitionOf`, else the core's murmur2), in version order.
 * 2. Positions: `offset` grows strictly within a partition (gaps allowed). There is no order
 *    across partitions and the API never promises one.
 * 3. Atomic append: one `append` stores all of its events or none.
 * 4. Conditional append (`capabilities.concurrency === 'conditional-append'`): `append` checks
 *    `expectedVersion` against the stream's current version inside the same atomic step
 *    (use `matchesExpectedVersion`) and throws `ExpectedVersionConflictError` with the actual
 *    version when it does not match. Of N concurrent appends with the same expected version,
 *    across processes, exactly one succeeds.
 * 5. Event ids are unique within a partition (so within a stream, and in the whole store for a
 *    one-partition backend): an append carrying an id already stored in its partition throws
 *    `DuplicateEventIdError` naming where it is, and writes nothing. (The core turns an exact
 *    retry of an earlier append into a success; drivers do not need to.) Per partition, not
 *    global, because a partition is the largest unit a log backend can check atomically.
 * 6. Reads return what was appended, byte for byte; `time` is whatever the core passed.
 * 7. Checkpoints and snapshots are plain key/value records; the last write wins.
 * 8. Errors: the typed errors above for the conditions above; anything else is a `DriverError`.
 */
export interface EventStoreDriver {
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

  /** Appends to one stream. See contract points 3–5. `events` is never empty. */
  append(request: AppendRequest): Promise<AppendResult>;
  /**
   * Appends to several streams as one atomic step (all or none), when
   * `capabilities.multiStreamAppend` is true on a conditional-append driver. Each request is
   * checked as in `append`. (Partition-owner drivers use `PartitionLease.appendWith` instead.)
   */
  appendMany?(requests: readonly AppendRequest[]): Promise<AppendResult[]>;

  /** Current version of a stream (0 when it does not exist). */
  streamVersion(streamId: string): Promise<number>;
  /**
   * Events of one stream with `fromVersion <= version <= toVersion`, oldest first, at most
   * `limit`. `after`, when given, is a hint from the core: the position of the stream's event
   * just before `fromVersion` (a snapshot's position, or the last event of the previous page),
   * so every wanted event lies past it in its partition. Log drivers scan the partition's tail
   * from there instead of from the start; drivers with a per-stream index ignore it.
   */
  readStream(streamId: string, range: { fromVersion: number; toVersion: number; limit: number; after?: Position }): Promise<StoredEvent[]>;
  /** Events of one partition with offset > `after` (all when `after` is undefined), oldest first. */
  readPartition(partition: number, range: { after: bigint | undefined; limit: number }): Promise<StoredEvent[]>;
  /** Last offset of the partition, or undefined when it is empty. */
  partitionHead(partition: number): Promise<bigint | undefined>;
  /**
   * Offset just before the first event of the partition whose `time` is >= `time` (so it can be
   * passed as `after`), or `undefined` to read from the start. Drivers with a time index
   * (`capabilities.timeIndex`) implement it; the core otherwise scans from the start.
   */
  offsetBeforeTime?(partition: number, time: number): Promise<bigint | undefined>;

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

  /**
   * For `capabilities.concurrency === 'partition-owner'` backends (Kafka, Pulsar), which have
   * no conditional append: a writer claims a partition (fencing earlier holders), catches up
   * to its end, and the core checks expected versions against the lease's index before it
   * appends through the lease. Conditional-append drivers leave this out.
   */
  claimPartition?(partition: number): Promise<PartitionLease>;

  /** Competing consumers inside a group with delivery counts and dead letters, where the backend has them natively. */
  readonly consumerGroups?: ConsumerGroupDriver;
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
   * Deliveries for `consumer`: with `pending`, the entries already delivered to this consumer
   * name and not acknowledged (after a restart); otherwise new entries, waiting up to
   * `blockMs` for some.
   */
  read(group: string, consumer: string, options: { pending: boolean; limit: number; blockMs: number }): Promise<Delivery[]>;
  /** Takes over entries pending for longer than `minIdleMs` (their consumer is presumed dead). */
  claimIdle(group: string, consumer: string, options: { minIdleMs: number; limit: number }): Promise<Delivery[]>;
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
  /**
   * `'conditional-append'`: `append` checks the expected version atomically (SQLite, Redis).
   * `'partition-owner'`: optimistic concurrency comes from single ownership of a partition
   * (see `claimPartition`).
   */
  readonly concurrency: 'conditional-append' | 'partition-owner';
  /**
   * Appends to several streams are atomic (all or none): through `appendMany` on a
   * conditional-append driver, through `PartitionLease.appendWith` on a partition-owner one.
   */
  readonly multiStreamAppend: boolean;
  /** `offsetBeforeTime` is backed by an index, not a scan. */
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
   * sees), or undefined when the partition has none. The core reads the partition up to here
   * (with `readPartition`) to learn every stream's version before it checks an expected version.
   */
  readonly caughtUpTo: bigint | undefined;
  /**
   * Appends requests the core has already checked, all of this partition, as one transaction:
   * all visible or none. Throws `PartitionFencedError` when another writer claimed the
   * partition since this lease was taken; nothing of that append becomes visible then.
   */
  append(requests: readonly AppendRequest[]): Promise<AppendResult[]>;
  /**
   * Appends checked requests to this lease's partition and to the partitions of `others`
   * (leases this process holds, from the same driver) as ONE transaction: all visible or none.
   * Every involved lease must still be current when it commits; if any was claimed by another
   * writer meanwhile, nothing becomes visible and it throws `PartitionFencedError`. Drivers
   * with `capabilities.multiStreamAppend` implement it; a claim on such a backend must also
   * wait for transactions of other leases that touched its partition to complete.
   */
  appendWith?(others: readonly PartitionLease[], requests: readonly AppendRequest[]): Promise<AppendResult[]>;
  release(): Promise<void>;
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
