import type { Producer } from '@platformatic/kafka';
import type { AppendRequest, AppendResult, IndexCheckpointKind, PartitionLease } from '../../core/driver.ts';
import { AppendTooLargeError, DriverError, PartitionFencedError } from '../../core/errors.ts';
import { errorMessage } from '../../core/errors.ts';
import { isFenced, isTooLarge, KAFKA as NAME } from './errors.ts';
import type { TopicPartition } from './layout.ts';
import { checkpointRecords } from './index-checkpoints.ts';
import { eventRecord, ownershipProbe } from './records.ts';

type Transaction = Awaited<ReturnType<Producer['beginTransaction']>>;

/**
 * A claimed partition: a transactional producer whose transactional id belongs to the
 * partition and whose epoch the claim just bumped. Appends run one at a time, each one
 * transaction (begin, produce every record to the partition, commit).
 */
export class KafkaPartitionLease implements PartitionLease {
  readonly partition: number;
  readonly caughtUpTo: bigint | undefined;
  readonly #producer: Producer;
  /** The topic and Kafka partition behind the store partition. */
  readonly #target: TopicPartition;
  /** Where this partition's index checkpoints go (index-checkpoints.ts). */
  readonly #indexTarget: TopicPartition;
  /** The driver that made the lease: only its leases share a transaction. */
  readonly #owner: object;
  readonly #onRelease: () => void;
  readonly #visible: (offset: bigint) => Promise<void>;
  readonly #inDoubt: (base: bigint, first: { headers: Map<Buffer, Buffer> }, fence: boolean) => Promise<boolean>;
  #queue: Promise<unknown> = Promise.resolve();
  /** Set once the broker fenced this producer, or its state became unknown: every later append refuses. */
  #dead: unknown;
  #released = false;

  constructor(options: {
    partition: number;
    caughtUpTo: bigint | undefined;
    producer: Producer;
    target: TopicPartition;
    indexTarget: TopicPartition;
    owner: object;
    onRelease: () => void;
    /** Resolves once read_committed readers see `offset` (the commit markers are written after EndTxn returns). */
    visible: (offset: bigint) => Promise<void>;
    /** Makes a transaction's outcome final (fencing it when asked) and says whether the record with these headers is committed at `base`. */
    inDoubt: (base: bigint, first: { headers: Map<Buffer, Buffer> }, fence: boolean) => Promise<boolean>;
  }) {
    this.partition = options.partition;
    this.caughtUpTo = options.caughtUpTo;
    this.#producer = options.producer;
    this.#target = options.target;
    this.#indexTarget = options.indexTarget;
    this.#owner = options.owner;
    this.#onRelease = options.onRelease;
    this.#visible = options.visible;
    this.#inDoubt = options.inDoubt;
  }

  append(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    return this.#enqueue([this], () => this.#transact([], requests));
  }

  /**
   * One transaction over several partitions, through this lease's producer. Kafka fences per
   * transactional id, and this transaction carries only ours, so a writer that claimed one of
   * the other partitions meanwhile would not stop it. Hence, after the records are written and
   * before the commit, each other lease proves it is still current: its own producer adds its
   * partition to a throwaway transaction (AddPartitionsToTxn with its epoch; the coordinator
   * refuses a fenced epoch) and aborts it. A claim that comes after that proof reads the high
   * watermark after fencing, which already covers our records, and waits for our transaction
   * to end before it catches up (`KafkaDriver.claimPartition`), so it sees what we committed.
   * Cost: one throwaway transaction (begin, one produce, abort) per other partition, run in
   * parallel (not measured by the bench).
   */
  appendWith(others: readonly PartitionLease[], requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const leases = others.map((other) => {
      if (!(other instanceof KafkaPartitionLease) || other.#owner !== this.#owner) {
        throw new DriverError(NAME, 'appendWith takes leases of the same Kafka store');
      }
      return other;
    });
    return this.#enqueue([this, ...leases], () => this.#transact(leases, requests));
  }

  /**
   * One transaction of the checkpoint's chunks (each sent on its own: one record batch each,
   * under the broker's size limit). A failure leaves this lease unusable like a failed append:
   * the next append claims again.
   */
  writeIndexCheckpoint(bytes: Uint8Array, kind: IndexCheckpointKind): Promise<void> {
    return this.#enqueue([this], async () => {
      this.#usable();
      let transaction: Transaction | undefined;
      try {
        transaction = await this.#producer.beginTransaction();
        for (const record of checkpointRecords(this.#indexTarget, bytes, kind)) await transaction.send({ messages: [record] as never });
        await transaction.commit();
      } catch (error) {
        this.#dead = error;
        // Abort rather than hold back readers of the index partition until the transaction times out.
        if (transaction && !transaction.completed) await transaction.abort().catch(() => undefined);
        if (transaction && !transaction.completed) await transaction.cancel().catch(() => undefined);
        throw new PartitionFencedError(NAME, this.partition, error);
      }
    });
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#onRelease();
    await this.#queue;
    await this.#producer.close().catch(() => undefined);
  }

  /** Runs after everything queued on these leases; later work on any of them waits for it. */
  #enqueue<T>(leases: readonly KafkaPartitionLease[], fn: () => Promise<T>): Promise<T> {
    const run = Promise.all(leases.map((l) => l.#queue)).then(fn);
    const tail = run.catch(() => undefined);
    for (const lease of leases) lease.#queue = tail;
    return run;
  }

  #usable(): void {
    if (this.#released) throw new DriverError(NAME, `the lease on partition ${this.partition} was released`);
    if (this.#dead !== undefined) throw new PartitionFencedError(NAME, this.partition, this.#dead);
  }

  async #transact(others: readonly KafkaPartitionLease[], requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    this.#usable();
    for (const other of others) other.#usable();
    if (requests.length === 0) return [];
    const byPartition = new Map<number, KafkaPartitionLease>([[this.partition, this], ...others.map((o) => [o.partition, o] as const)]);
    // Our own partition's records first: the first record is what an in-doubt commit is checked by.
    const order = requests
      .map((_, i) => i)
      .sort((a, b) => Number(requests[b]!.partition === this.partition) - Number(requests[a]!.partition === this.partition));
    if (requests[order[0]!]!.partition !== this.partition) {
      throw new DriverError(NAME, `a transaction of the lease on partition ${this.partition} must append to that partition`);
    }
    const messages = [];
    const versions: number[] = [];
    for (const i of order) {
      const request = requests[i]!;
      if (!byPartition.has(request.partition)) {
        throw new DriverError(
          NAME,
          `an append to partition ${request.partition} went to a lease of partition ${[...byPartition.keys()].join(', ')}`,
        );
      }
      if (typeof request.expectedVersion !== 'number') {
        throw new DriverError(
          NAME,
          'a lease appends after the exact current version of the stream, which the core passes as expectedVersion',
        );
      }
      let version = request.expectedVersion;
      const target = byPartition.get(request.partition)!.#target;
      for (const event of request.events) messages.push(eventRecord(target, request.streamId, event, ++version));
      versions[i] = version;
    }
    let transaction: Transaction | undefined;
    let base: bigint | undefined;
    const results: AppendResult[] = [];
    const lastOffsets = new Map<number, bigint>();
    try {
      transaction = await this.#producer.beginTransaction();
      const produced = await transaction.send({ messages: messages as never });
      const bases = new Map<number, bigint>();
      for (const o of (produced.offsets ?? []) as { topic: string; partition: number; offset: bigint }[]) {
        for (const [partition, lease] of byPartition) {
          if (lease.#target.topic === o.topic && lease.#target.partition === o.partition) bases.set(partition, o.offset);
        }
      }
      for (const partition of byPartition.keys()) {
        if (!bases.has(partition) && requests.some((r) => r.partition === partition)) {
          throw new DriverError(NAME, `the broker returned no offset for the append to partition ${partition}`);
        }
      }
      base = bases.get(this.partition);
      // One send to one partition is one record batch: its records have consecutive offsets.
      const next = new Map(bases);
      for (const i of order) {
        const request = requests[i]!;
        results[i] = {
          nextExpectedVersion: versions[i]!,
          positions: request.events.map(() => {
            const offset = next.get(request.partition)!;
            next.set(request.partition, offset + 1n);
            lastOffsets.set(request.partition, offset);
            return { partition: request.partition, offset };
          }),
        };
      }
      if (others.length > 0) {
        const proofs = await Promise.allSettled(others.map((o) => o.#proveOwnership()));
        const lost = proofs.findIndex((p) => p.status === 'rejected');
        if (lost >= 0) {
          await transaction.abort().catch(() => undefined);
          throw new PartitionFencedError(NAME, others[lost]!.partition, (proofs[lost] as PromiseRejectedResult).reason);
        }
      }
      await transaction.commit();
    } catch (error) {
      // From here on this producer is done: the core claims again for the next append.
      this.#dead = error;
      const fenced = isFenced(error) || error instanceof PartitionFencedError;
      if (transaction && !transaction.completed && !fenced && base === undefined) {
        // Failed before the commit was asked for: abort now rather than hold back
        // read_committed readers until the transaction times out.
        await transaction.abort().catch(() => undefined);
      }
      if (transaction && !transaction.completed) await transaction.cancel().catch(() => undefined);
      if (base === undefined && isTooLarge(error)) {
        // The broker refused the batch: nothing was written, and trying again cannot help.
        throw new AppendTooLargeError(NAME, [...new Set(requests.map((r) => r.streamId))], messages.length, error);
      }
      if (base !== undefined && !(error instanceof PartitionFencedError) && (await this.#settle(base, messages[0]!, !fenced, error))) {
        // The commit did go through (its answer was lost or garbled): the append stands.
        await this.#allVisible(byPartition, lastOffsets).catch(() => undefined);
        return results;
      }
      if (error instanceof PartitionFencedError) throw error;
      // Nothing of this append is or will become visible.
      throw new PartitionFencedError(NAME, this.partition, error);
    }
    // EndTxn returns once the commit is decided; the markers that make it readable follow.
    // Wait for them so a read right after the append sees it (read your writes). The append
    // stands either way: if the broker cannot be asked now, report the success, not an error
    // that would look like an unknown outcome.
    await this.#allVisible(byPartition, lastOffsets).catch(() => undefined);
    return results;
  }

  async #allVisible(leases: ReadonlyMap<number, KafkaPartitionLease>, lastOffsets: ReadonlyMap<number, bigint>): Promise<void> {
    await Promise.all([...lastOffsets].map(([partition, offset]) => leases.get(partition)!.#visible(offset)));
  }

  /** See `appendWith`: succeeds only while no other writer has claimed this partition. */
  async #proveOwnership(): Promise<void> {
    this.#usable();
    let transaction: Transaction | undefined;
    try {
      transaction = await this.#producer.beginTransaction();
      await transaction.send({ messages: [ownershipProbe(this.#target)] as never });
      await transaction.abort();
    } catch (error) {
      this.#dead = error;
      if (transaction && !transaction.completed) await transaction.cancel().catch(() => undefined);
      throw new PartitionFencedError(NAME, this.partition, error);
    }
  }

  /**
   * The outcome of a transaction whose commit failed is decided by the coordinator, not by the
   * error we got: an EndTxn racing a takeover can fail with UNKNOWN_SERVER_ERROR (Kafka 4.1:
   * "transition to PREPARE_COMMIT while it already a pending state PREPARE_EPOCH_FENCE"), a
   * retried EndTxn can be fenced after its first try committed. Make the outcome final (claim
   * the transactional id again unless another writer already did, which completes or aborts
   * the transaction), then look: is our first record at `base` for read_committed readers?
   */
  async #settle(base: bigint, first: { headers: Map<Buffer, Buffer> }, fence: boolean, cause: unknown): Promise<boolean> {
    try {
      return await this.#inDoubt(base, first, fence);
    } catch (error) {
      throw new DriverError(
        NAME,
        `append to partition ${this.partition}: the commit failed and its outcome could not be read back (${errorMessage(error)}); first error: ${errorMessage(cause)}`,
        cause,
      );
    }
  }
}
