import { Admin, type BaseOptions } from '@platformatic/kafka';
import type { Position } from '../../core/driver.ts';
import { untilAborted } from '../../core/sleep.ts';
import type { TopicLayout } from './layout.ts';
import { PartitionLog } from './log.ts';

/**
 * Wake-ups for live subscriptions: a read_committed long-poll on every partition past the given
 * positions, on a client of its own, so long-polls never queue the store's reads behind them.
 */
export class KafkaWaiter {
  readonly #layout: TopicLayout;
  readonly #base: (role: string) => BaseOptions;
  readonly #blockMs: number;
  /** The store's own log reader, for the first, non-blocking look. */
  readonly #storeLog: () => PartitionLog;
  #client: Promise<{ admin: Admin; log: PartitionLog }> | undefined;

  constructor(options: { layout: TopicLayout; base: (role: string) => BaseOptions; blockMs: number; log: () => PartitionLog }) {
    this.#layout = options.layout;
    this.#base = options.base;
    this.#blockMs = options.blockMs;
    this.#storeLog = options.log;
  }

  async wait(after: readonly Position[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    // A failing long-poll must not turn into a busy loop: then just wait like a poll would.
    const poll = this.#poll(after).catch(() => new Promise<void>((resolve) => setTimeout(resolve, this.#blockMs).unref()));
    await untilAborted(poll, signal);
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client) await client.then(({ admin }) => admin.close()).catch(() => undefined);
  }

  async #poll(after: readonly Position[]): Promise<void> {
    const { log } = await this.#connect();
    // Every commit ends in a marker no reader sees: long-polling from just past the last event
    // would wake at once on it. Step past what is already there first (no wait); if that holds
    // events, they are new: wake now.
    const from = new Map<string, bigint[]>(this.#layout.topics.map((t) => [t.topic, []]));
    for (let partition = 0; partition < this.#layout.partitions; partition++) {
      const offset = after.find((p) => p.partition === partition)?.offset;
      const at = this.#layout.at(partition);
      const page = await this.#storeLog().fetch(at.topic, at.partition, offset === undefined ? 0n : offset + 1n);
      if (page.records.length > 0) return;
      from.get(at.topic)![at.partition] = page.next;
    }
    await Promise.race([...from].map(([topic, offsets]) => log.waitAny(topic, offsets, this.#blockMs)));
  }

  #connect(): Promise<{ admin: Admin; log: PartitionLog }> {
    if (!this.#client) {
      const admin = new Admin(this.#base('waiter'));
      const log = new PartitionLog(admin);
      this.#client = Promise.all(this.#layout.topics.map((t) => log.describe(t.topic, this.#layout.perTopic))).then(
        () => ({ admin, log }),
        async (error: unknown) => {
          this.#client = undefined;
          await admin.close().catch(() => undefined);
          throw error;
        },
      );
    }
    return this.#client;
  }
}
