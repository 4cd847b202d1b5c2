import type { BaseOptions, Producer, ProducerOptions } from '@platformatic/kafka';
import type { AppendRequest, AppendResult, PartitionLease } from '../../core/driver.ts';
import { DriverError, EventfoldError } from '../../core/errors.ts';
import { sleep } from '../../core/sleep.ts';
import { initTransactionalProducer } from './admin.ts';
import { KAFKA as NAME, kafkaErrorMessage } from './errors.ts';
import type { TopicLayout } from './layout.ts';
import { KafkaPartitionLease } from './lease.ts';
import type { PartitionLog } from './log.ts';
import type { KafkaNames } from './topics.ts';

export interface KafkaWritersContext {
  readonly names: KafkaNames;
  readonly layout: TopicLayout;
  readonly transactionTimeoutMs: number;
  /** Base options of a new client with this role in its client id. */
  base(role: string): BaseOptions;
  /** The driver's read_committed log reader (open). */
  log(): PartitionLog;
}

/**
 * Partition ownership on Kafka (docs/architecture/kafka.md#concurrency-partition-ownership):
 * claiming a partition fences every earlier writer through its transactional id, and an append
 * whose commit answered with an error is settled (made final, then looked up) before it answers.
 */
export class KafkaWriters {
  readonly #ctx: KafkaWritersContext;
  readonly #leases = new Set<KafkaPartitionLease>();

  constructor(ctx: KafkaWritersContext) {
    this.#ctx = ctx;
  }

  async claim(partition: number): Promise<KafkaPartitionLease> {
    const at = this.#ctx.layout.at(partition);
    const producer = await this.#initWriter(partition).catch((error: unknown) => {
      if (error instanceof EventfoldError) throw error;
      // Say the broker's error code: the client's message names only the API, and a routed
      // reply carries only the message.
      throw new DriverError(NAME, `claiming partition ${partition} failed: ${kafkaErrorMessage(error)}`, error);
    });
    try {
      // Fencing completed our transactional id's open transaction, but a transaction of another
      // partition's writer (`appendAcross`) may still be open here, holding the stable offset
      // back: wait until everything written before the claim is decided, or the catch-up could
      // stop short of events that commit later.
      const written = await this.#ctx.log().highWatermark(at.topic, at.partition);
      if (written > 0n) await this.#visible(partition, written - 1n, this.#ctx.transactionTimeoutMs + 20_000);
      const caughtUpTo = await this.#ctx.log().lastRecord(at.topic, at.partition);
      const lease: KafkaPartitionLease = new KafkaPartitionLease({
        partition,
        caughtUpTo,
        producer,
        target: at,
        indexTarget: { topic: this.#ctx.names.index(at.category), partition: at.partition },
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

  /** One transaction through the first lease's producer, the others proving they are still current before it commits. */
  appendAcross(leases: readonly PartitionLease[], requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const [lead, ...others] = leases;
    if (!(lead instanceof KafkaPartitionLease)) throw new DriverError(NAME, 'appendAcross takes leases of this Kafka store');
    return lead.appendWith(others, requests);
  }

  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.#leases].map((lease) => lease.release()));
    this.#leases.clear();
  }

  /** InitProducerId on the partition's transactional id: fences every earlier holder (admin.ts). */
  #initWriter(partition: number): Promise<Producer> {
    return initTransactionalProducer(this.#writerOptions(partition), Date.now() + Math.max(10_000, this.#ctx.transactionTimeoutMs));
  }

  #writerOptions(partition: number): ProducerOptions<Buffer, Buffer, Buffer, Buffer> {
    const at = this.#ctx.layout.at(partition);
    return {
      ...this.#ctx.base(`writer-p${partition}`),
      transactionalId: this.#ctx.names.writer(at.partition, at.category),
      idempotent: true,
      // No expected producer id: the claim takes the transactional id over from whoever holds
      // it (the library's default, 0, makes the coordinator answer PRODUCER_FENCED instead).
      producerId: -1n,
      producerEpoch: -1,
      timeout: this.#ctx.transactionTimeoutMs,
    };
  }

  /** Makes a failed commit's outcome final (fencing it when asked), then says whether its first record is committed at `base`. */
  async #inDoubt(partition: number, base: bigint, first: { headers: Map<Buffer, Buffer> }, fence: boolean): Promise<boolean> {
    if (fence) {
      // InitProducerId returns once the transaction it fences is complete (committed or aborted).
      await (await this.#initWriter(partition)).close().catch(() => undefined);
    }
    // Another writer's claim may still be completing it: wait until the stable offset passes it.
    await this.#visible(partition, base);
    const at = this.#ctx.layout.at(partition);
    const page = await this.#ctx.log().fetch(at.topic, at.partition, base);
    const record = page.records[0];
    if (!record || record.offset !== base) return false;
    const id = (r: { headers: Iterable<readonly [Buffer | null, Buffer | null]> }): string | undefined => {
      for (const [k, v] of r.headers) if (k?.toString('latin1') === 'ef-id') return v?.toString('utf8');
      return undefined;
    };
    return id(record) !== undefined && id(record) === id(first);
  }

  /** Waits until read_committed readers see `offset` (the stable offset passed it). */
  async #visible(partition: number, offset: bigint, waitMs = this.#ctx.transactionTimeoutMs): Promise<void> {
    const at = this.#ctx.layout.at(partition);
    const deadline = Date.now() + waitMs;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      if ((await this.#ctx.log().lastStable(at.topic, at.partition)) > offset) return;
      if (Date.now() > deadline) {
        throw new DriverError(
          NAME,
          `offset ${offset} of partition ${partition} did not become readable within ${waitMs} ms (a transaction there is still open)`,
        );
      }
      await sleep(wait);
    }
  }
}
