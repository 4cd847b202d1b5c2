import { randomUUID } from 'node:crypto';
import { Producer } from '@platformatic/kafka';
import type { KafkaGroupContext, Lifecycle } from './context.ts';

export type GroupTransaction = Awaited<ReturnType<Producer['beginTransaction']>>;

/** The transactional producers of dead letters and redrives: one per group and process, one transaction at a time. */
export class GroupTransactions {
  readonly #ctx: KafkaGroupContext;
  readonly #lifecycle: Lifecycle;
  readonly #producers = new Map<string, { producer: Producer; lock: Promise<unknown> }>();

  constructor(ctx: KafkaGroupContext, lifecycle: Lifecycle) {
    this.#ctx = ctx;
    this.#lifecycle = lifecycle;
  }

  /** Runs `fn` in one transaction of the group's producer: committed if it returns, aborted if it throws. */
  async run(group: string, fn: (tx: GroupTransaction) => Promise<void>): Promise<void> {
    this.#lifecycle.throwIfClosed();
    let entry = this.#producers.get(group);
    if (!entry) {
      const producer = new Producer({
        ...this.#ctx.base(`cg-dlq`),
        // Unique per process: fencing is by the group generation (KIP-447), not by this id.
        transactionalId: `${this.#ctx.names.consumerGroup(group)}.tx.${randomUUID()}`,
        idempotent: true,
      });
      entry = { producer, lock: Promise.resolve() };
      this.#producers.set(group, entry);
    }
    const { producer } = entry;
    const run = entry.lock
      .catch(() => undefined)
      .then(async () => {
        const tx = await producer.beginTransaction();
        try {
          await fn(tx);
          await tx.commit();
        } catch (error) {
          await tx.abort().catch(async () => {
            // The producer cannot end the transaction (fenced, closed…): start over with a new one.
            if (this.#producers.get(group)?.producer === producer) this.#producers.delete(group);
            await producer.close().catch(() => undefined);
          });
          throw error;
        }
      });
    entry.lock = run.catch(() => undefined);
    await run;
  }

  /** Closes every producer after its transaction under way. */
  async close(): Promise<void> {
    const producers = [...this.#producers.values()];
    this.#producers.clear();
    await Promise.allSettled(
      producers.map(async (entry) => {
        await entry.lock.catch(() => undefined);
        await entry.producer.close();
      }),
    );
  }
}
