import type { AppendRequest, AppendResult, IndexCheckpointKind, PartitionLease } from '../../core/driver.ts';
import { AppendTooLargeError, DriverError, errorMessage, PartitionFencedError } from '../../core/errors.ts';
import { MessageTooLargeError, ProducerFencedError, PULSAR as NAME } from './client/errors.ts';
import type { MessageId } from './client/message-id.ts';
import type { Producer } from './client/producer.ts';
import type { TxnId } from './client/transactions.ts';
import { checkpointChunks, type FullRef, IP } from './index-checkpoints.ts';
import { type CommitEvent, encodeCommit, entryOffset, MAX_COMMIT_EVENTS, P } from './records.ts';

/** A partition's commit of an `appendAcross`, checked and laid out before its transaction starts (`planCommit`). */
export interface CommitPlan {
  readonly events: readonly CommitEvent[];
  readonly streams: readonly string[];
  /** The append's results once the commit is stored at `at`. */
  results(at: MessageId): AppendResult[];
}

/**
 * The lease's ExclusiveWithFencing producer on the partition's index partition (opened by the
 * claim after its events producer and before its marker, so a later claim fences it too), and
 * where the driver keeps the last full checkpoint known of the partition (for the deltas).
 */
export interface IndexWriter {
  readonly producer: Producer | undefined;
  /** Why there is no producer (the claim could not open one): checkpoints are refused with it. */
  readonly missing?: unknown;
  full(): FullRef | undefined;
  setFull(ref: FullRef): void;
}

/** How a lease learns what became of a commit whose send failed (writers.ts). */
export type Settle = (lease: { id: string; position: MessageId; sequenceId: bigint; fenced: boolean }) => Promise<MessageId | undefined>;

/**
 * A claimed partition: an ExclusiveWithFencing producer (the claim raised the topic epoch and
 * fenced every earlier one) with the partition's writer name, so deduplication carries its
 * sequence ids across owners. One commit is one message (batching off): all its events or none.
 * The sequence id is the partition's commit counter, one past the last any owner used.
 */
export class PulsarPartitionLease implements PartitionLease {
  readonly partition: number;
  readonly caughtUpTo: bigint | undefined;
  /** Random per claim; on every entry of this lease (`ef-lease`), so a settle can tell ours from a later owner's. */
  readonly id: string;
  readonly #producer: Producer;
  readonly #settle: Settle;
  readonly #onRelease: () => void;
  /** Our last entry: the claim marker, then each commit. */
  #position: MessageId;
  #sequenceId: bigint;
  /** Publish time of our last entry: a commit's is never below it (see `publishTime`). */
  #published: number;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #index: IndexWriter;
  /** Checkpoints one at a time (their chunks must be consecutive), apart from the appends. */
  #indexQueue: Promise<unknown> = Promise.resolve();
  #dead: unknown;
  #released = false;

  constructor(options: {
    partition: number;
    caughtUpTo: bigint | undefined;
    id: string;
    producer: Producer;
    marker: MessageId;
    sequenceId: bigint;
    /** The highest publish time on the partition up to the marker. */
    published: number;
    settle: Settle;
    onRelease: () => void;
    index: IndexWriter;
  }) {
    this.partition = options.partition;
    this.caughtUpTo = options.caughtUpTo;
    this.id = options.id;
    this.#producer = options.producer;
    this.#position = options.marker;
    this.#sequenceId = options.sequenceId;
    this.#published = options.published;
    this.#settle = options.settle;
    this.#onRelease = options.onRelease;
    this.#index = options.index;
  }

  append(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const run = this.#queue.then(() => this.#commit(requests));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs `fn` after everything queued on these leases; later work on any of them waits for it
   * (`appendAcross`, transaction-append.ts, holds every lease of its transaction at once).
   */
  static inTurn<T>(leases: readonly PulsarPartitionLease[], fn: () => Promise<T>): Promise<T> {
    const run = Promise.all(leases.map((l) => l.#queue)).then(fn);
    const tail = run.catch(() => undefined);
    for (const lease of leases) lease.#queue = tail;
    return run;
  }

  /** This partition's commit of `requests` (checked by the core), as `#commit` lays it out; throws AppendTooLargeError past MAX_COMMIT_EVENTS. */
  planCommit(requests: readonly AppendRequest[]): CommitPlan {
    const events: CommitEvent[] = [];
    const versions: number[] = [];
    for (const request of requests) {
      if (request.partition !== this.partition) {
        throw new DriverError(NAME, `an append to partition ${request.partition} went to the lease of partition ${this.partition}`);
      }
      if (typeof request.expectedVersion !== 'number') {
        throw new DriverError(
          NAME,
          'a lease appends after the exact current version of the stream, which the core passes as expectedVersion',
        );
      }
      let version = request.expectedVersion;
      for (const event of request.events) events.push({ streamId: request.streamId, version: ++version, event });
      versions.push(version);
    }
    const streams = [...new Set(requests.map((r) => r.streamId))];
    if (events.length > MAX_COMMIT_EVENTS) throw new AppendTooLargeError(NAME, streams, events.length);
    return {
      events,
      streams,
      results: (at) => {
        let offset = entryOffset(at);
        return requests.map((request, i) => ({
          nextExpectedVersion: versions[i]!,
          positions: request.events.map(() => ({ partition: this.partition, offset: offset++ })),
        }));
      },
    };
  }

  /**
   * Sends a planned commit inside transaction `txn`, in turn (`inTurn`): stored, and visible
   * once the transaction commits, in the same format as any commit (readers cannot tell). Its
   * sequence id is the lease's next, as for `append`. Resolves with the commit's id and a way to
   * learn later whether it became visible (an END_TXN without an answer): the lease's settle
   * from the entry before it. Any failure kills the lease; the caller aborts the transaction.
   */
  async sendInTransaction(plan: CommitPlan, txn: TxnId): Promise<{ at: MessageId; settle: () => Promise<MessageId | undefined> }> {
    if (this.#released) throw new DriverError(NAME, `the lease on partition ${this.partition} was released`);
    if (this.#dead !== undefined) throw new PartitionFencedError(NAME, this.partition, this.#dead);
    const sequenceId = this.#sequenceId + 1n;
    const prior = this.#position;
    const publishTime = this.#publishTime(plan.events);
    try {
      const receipt = await this.#producer.send(encodeCommit(plan.events), {
        sequenceId,
        txn,
        properties: { [P.kind]: 'commit', [P.lease]: this.id },
        eventTime: Math.max(0, Math.floor(plan.events[0]!.event.time)),
        publishTime,
      });
      if (receipt.duplicate) throw new DriverError(NAME, `sequence id ${sequenceId} was already stored on partition ${this.partition}`);
      this.#sequenceId = sequenceId;
      this.#published = publishTime;
      this.#position = receipt.messageId;
      return {
        at: receipt.messageId,
        settle: () => this.#settle({ id: this.id, position: prior, sequenceId, fenced: false }),
      };
    } catch (error) {
      this.#dead = error;
      if (error instanceof MessageTooLargeError) throw new AppendTooLargeError(NAME, plan.streams, plan.events.length, error);
      throw error;
    }
  }

  /** The transaction of a commit sent through this lease failed or is in doubt: no append through it any more (the core claims again). */
  kill(cause: unknown): void {
    this.#dead ??= cause;
  }

  /**
   * Sends a checkpoint of the core's index (index-checkpoints.ts) through the lease's fenced
   * index producer, chunk by chunk, after the one before it. A later owner's claim fenced that
   * producer (ProducerFencedError; a reconnect registers again with the old topic epoch, which
   * the broker refuses), so a taken-over lease cannot write one: PartitionFencedError, and the
   * lease is done (like a fenced append; the core claims again). A torn checkpoint (a failure
   * between chunks) is skipped by readers.
   */
  writeIndexCheckpoint(bytes: Uint8Array, kind: IndexCheckpointKind): Promise<void> {
    const run = this.#indexQueue.then(() => this.#checkpoint(bytes, kind));
    this.#indexQueue = run.catch(() => undefined);
    return run;
  }

  async #checkpoint(bytes: Uint8Array, kind: IndexCheckpointKind): Promise<void> {
    if (this.#released) throw new DriverError(NAME, `the lease on partition ${this.partition} was released`);
    if (this.#dead !== undefined) throw new PartitionFencedError(NAME, this.partition, this.#dead);
    const producer = this.#index.producer;
    if (!producer) {
      throw new DriverError(NAME, `partition ${this.partition}: the claim opened no index producer (${errorMessage(this.#index.missing)})`);
    }
    const chunks = checkpointChunks(bytes, kind, kind === 'delta' ? this.#index.full() : undefined);
    let first: MessageId | undefined;
    try {
      for (const chunk of chunks) {
        const receipt = await producer.send(chunk.payload, { properties: chunk.properties });
        if (receipt.duplicate)
          throw new DriverError(NAME, `an index checkpoint chunk of partition ${this.partition} was taken for a duplicate`);
        first ??= receipt.messageId;
      }
    } catch (error) {
      if (!(error instanceof ProducerFencedError)) throw error;
      this.#dead ??= error;
      throw new PartitionFencedError(NAME, this.partition, error);
    }
    if (kind === 'full' && first) {
      this.#index.setFull({ at: { ...first, batchIndex: -1 }, generation: chunks[0]!.properties[IP.generation]!, parts: chunks.length });
    }
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#onRelease();
    await this.#queue;
    await this.#indexQueue;
    await this.#producer.close().catch(() => undefined);
    await this.#index.producer?.close().catch(() => undefined);
  }

  async #commit(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    if (this.#released) throw new DriverError(NAME, `the lease on partition ${this.partition} was released`);
    if (this.#dead !== undefined) throw new PartitionFencedError(NAME, this.partition, this.#dead);
    if (requests.length === 0) return [];
    const { events, streams, results } = this.planCommit(requests);
    const sequenceId = this.#sequenceId + 1n;
    const publishTime = this.#publishTime(events);
    try {
      const receipt = await this.#producer.send(encodeCommit(events), {
        sequenceId,
        properties: { [P.kind]: 'commit', [P.lease]: this.id },
        eventTime: Math.max(0, Math.floor(events[0]!.event.time)),
        publishTime,
      });
      // A duplicate receipt carries no position: what is stored under this sequence id is not known here.
      if (receipt.duplicate) throw new DriverError(NAME, `sequence id ${sequenceId} was already stored on partition ${this.partition}`);
      this.#sequenceId = sequenceId;
      this.#published = publishTime;
      this.#position = receipt.messageId;
      return results(receipt.messageId);
    } catch (error) {
      // From here on this producer is done: the core claims again for the next append.
      this.#dead = error;
      if (error instanceof MessageTooLargeError) throw new AppendTooLargeError(NAME, streams, events.length, error);
      let stored: MessageId | undefined;
      try {
        stored = await this.#settle({ id: this.id, position: this.#position, sequenceId, fenced: error instanceof ProducerFencedError });
      } catch (settleError) {
        throw new DriverError(
          NAME,
          `append to partition ${this.partition}: the send failed and its outcome could not be read back (${errorMessage(settleError)}); first error: ${errorMessage(error)}`,
          error,
        );
      }
      // The message was stored after all (its receipt was lost): the append stands.
      if (stored !== undefined) return results(stored);
      throw new PartitionFencedError(NAME, this.partition, error);
    }
  }

  /**
   * The time index (time-index.ts): a commit's publish time is the latest time of its events
   * (the core's clock, not the broker's), raised to the last entry's so that publish times
   * never go back along the partition and the broker's binary search by time stays exact.
   */
  #publishTime(events: readonly CommitEvent[]): number {
    let time = this.#published;
    for (const { event } of events) time = Math.max(time, Math.floor(event.time));
    return time;
  }
}
