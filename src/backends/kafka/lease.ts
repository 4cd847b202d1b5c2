import type { Producer } from '@platformatic/kafka';
import type { AppendRequest, AppendResult, PartitionLease } from '../../core/driver.ts';
import { DriverError, PartitionFencedError } from '../../core/errors.ts';
import { eventRecord } from './records.ts';

const NAME = 'kafka';
type Transaction = Awaited<ReturnType<Producer['beginTransaction']>>;

/**
 * Broker answers that mean this producer's epoch is no longer the partition's: a newer claim
 * (InitProducerId on the same transactional id) bumped it and aborted whatever this producer
 * had open, or the coordinator aborted the transaction on its own (timeout). In every case
 * nothing of the current transaction becomes visible, and only a new claim can write again.
 */
const FENCED = ['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING', 'INVALID_TXN_STATE', 'TRANSACTION_ABORTABLE', 'TRANSACTIONAL_ID_NOT_FOUND'];

export function isFenced(error: unknown): boolean {
  const e = error as { findBy?: (k: string, v: unknown) => unknown } | undefined;
  if (!e || typeof e.findBy !== 'function') return false;
  return FENCED.some((id) => e.findBy!('apiId', id)) || Boolean(e.findBy('producerFenced', true));
}

/**
 * A claimed partition: a transactional producer whose transactional id belongs to the
 * partition and whose epoch the claim just bumped. Appends run one at a time, each one
 * transaction (begin, produce every record to the partition, commit).
 */
export class KafkaPartitionLease implements PartitionLease {
  readonly partition: number;
  readonly caughtUpTo: bigint | undefined;
  readonly #producer: Producer;
  readonly #topic: string;
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
    topic: string;
    onRelease: () => void;
    /** Resolves once read_committed readers see `offset` (the commit markers are written after EndTxn returns). */
    visible: (offset: bigint) => Promise<void>;
    /** Makes a transaction's outcome final (fencing it when asked) and says whether the record with these headers is committed at `base`. */
    inDoubt: (base: bigint, first: { headers: Map<Buffer, Buffer> }, fence: boolean) => Promise<boolean>;
  }) {
    this.partition = options.partition;
    this.caughtUpTo = options.caughtUpTo;
    this.#producer = options.producer;
    this.#topic = options.topic;
    this.#onRelease = options.onRelease;
    this.#visible = options.visible;
    this.#inDoubt = options.inDoubt;
  }

  append(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const run = this.#queue.then(() => this.#append(requests));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#onRelease();
    await this.#queue;
    await this.#producer.close().catch(() => undefined);
  }

  async #append(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    if (this.#released) throw new DriverError(NAME, `the lease on partition ${this.partition} was released`);
    if (this.#dead !== undefined) throw new PartitionFencedError(NAME, this.partition, this.#dead);
    if (requests.length === 0) return [];
    const messages = [];
    const versions: number[] = [];
    for (const request of requests) {
      if (request.partition !== this.partition) {
        throw new DriverError(NAME, `an append to partition ${request.partition} went to the lease of partition ${this.partition}`);
      }
      if (typeof request.expectedVersion !== 'number') {
        throw new DriverError(NAME, 'a lease appends after the exact current version of the stream, which the core passes as expectedVersion');
      }
      let version = request.expectedVersion;
      for (const event of request.events) messages.push(eventRecord(this.#topic, request, event, ++version));
      versions.push(version);
    }
    let transaction: Transaction | undefined;
    let base: bigint | undefined;
    let results: AppendResult[] = [];
    try {
      transaction = await this.#producer.beginTransaction();
      const produced = await transaction.send({ messages: messages as never });
      base = produced.offsets?.find((o: { topic: string; partition: number; offset: bigint }) => o.topic === this.#topic && o.partition === this.partition)?.offset;
      if (base === undefined) throw new DriverError(NAME, 'the broker returned no offset for the append');
      // One send to one partition is one record batch: its records have consecutive offsets.
      let offset: bigint = base;
      results = requests.map((request, i) => ({
        nextExpectedVersion: versions[i]!,
        positions: request.events.map(() => ({ partition: this.partition, offset: offset++ })),
      }));
      await transaction.commit();
    } catch (error) {
      // From here on this producer is done: the core claims again for the next append.
      this.#dead = error;
      const fenced = isFenced(error);
      if (transaction && !transaction.completed && !fenced && base === undefined) {
        // Failed before the commit was asked for: abort now rather than hold back
        // read_committed readers until the transaction times out.
        await transaction.abort().catch(() => undefined);
      }
      if (transaction && !transaction.completed) await transaction.cancel().catch(() => undefined);
      if (base !== undefined && (await this.#settle(base, messages[0]!, !fenced, error))) {
        // The commit did go through (its answer was lost or garbled): the append stands.
        await this.#visible(base + BigInt(messages.length) - 1n);
        return results;
      }
      // Nothing of this append is or will become visible.
      throw new PartitionFencedError(NAME, this.partition, error);
    }
    // EndTxn returns once the commit is decided; the markers that make it readable follow.
    // Wait for them so a read right after the append sees it (read your writes).
    await this.#visible(base + BigInt(messages.length) - 1n);
    return results;
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
      throw new DriverError(NAME, `append to partition ${this.partition}: the commit failed and its outcome could not be read back (${errorMessage(error)}); first error: ${errorMessage(cause)}`, cause);
    }
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
