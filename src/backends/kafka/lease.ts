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
  }) {
    this.partition = options.partition;
    this.caughtUpTo = options.caughtUpTo;
    this.#producer = options.producer;
    this.#topic = options.topic;
    this.#onRelease = options.onRelease;
    this.#visible = options.visible;
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
    try {
      transaction = await this.#producer.beginTransaction();
      const produced = await transaction.send({ messages: messages as never });
      await transaction.commit();
      const base = produced.offsets?.find((o: { topic: string; partition: number; offset: bigint }) => o.topic === this.#topic && o.partition === this.partition)?.offset;
      if (base === undefined) throw new DriverError(NAME, 'the broker returned no offset for the append');
      // One send to one partition is one record batch: its records have consecutive offsets.
      let offset: bigint = base;
      const results = requests.map((request, i) => ({
        nextExpectedVersion: versions[i]!,
        positions: request.events.map(() => ({ partition: this.partition, offset: offset++ })),
      }));
      // EndTxn returns once the commit is decided; the markers that make it readable follow.
      // Wait for them so a read right after the append sees it (read your writes).
      await this.#visible(offset - 1n);
      return results;
    } catch (error) {
      if (isFenced(error)) {
        this.#dead = error;
        await transaction?.cancel().catch(() => undefined);
        throw new PartitionFencedError(NAME, this.partition, error);
      }
      // Not fenced, but the transaction's outcome may be unknown (a commit that timed out):
      // abort if we still can, and refuse further appends so the core claims again and reads
      // what really happened from the log.
      this.#dead = error;
      if (transaction && !transaction.completed) await transaction.abort().catch(() => transaction?.cancel().catch(() => undefined));
      throw error instanceof DriverError ? error : new DriverError(NAME, `append to partition ${this.partition} failed: ${(error as Error)?.message ?? String(error)}`, error);
    }
  }
}
