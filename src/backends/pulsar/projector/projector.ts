// `pulsarProjector`: exactly-once consume-transform-produce from a store's events partitions.
// Design (Failover, transactions, fencing, redelivery after an abort): docs/architecture/pulsar.md#projector
import { DriverError, errorMessage, InvalidArgumentError, StoreClosedError } from '../../../core/errors.ts';
import type { Event } from '../../../core/event-type.ts';
import type { EventStore } from '../../../core/event-store.ts';
import { sleep, untilAborted } from '../../../core/sleep.ts';
import { type StoreContext, storeContext } from '../../../core/store-context.ts';
import type { PulsarAdmin } from '../admin.ts';
import type { Message } from '../client/consumer.ts';
import { PULSAR } from '../client/errors.ts';
import { TransactionCoordinators, type TxnId } from '../client/transactions.ts';
import { PulsarDriver } from '../pulsar-driver.ts';
import { abortOpenTransactions } from './fence.ts';
import { checkOptions, type ProjectorSettings, type PulsarProjector, type PulsarProjectorOptions } from './options.ts';
import { OutputProducers } from './outputs.ts';
import { type Outgoing, Projection, STOPPED } from './projection.ts';
import { partitionHeads, reached, type Source, subscribeAll } from './sources.ts';

/** An entry taken into a batch: acked in the batch's transaction. */
interface Taken {
  readonly source: Source;
  readonly message: Message;
}

/** How often `caughtUp()` looks at the subscription's cursors. */
const CAUGHT_UP_POLL_MS = 250;

/**
 * Exactly-once consume-transform-produce on Pulsar: reads every events partition through the
 * Failover subscription `projector=<group>`, runs `handle` on each event and, per batch, sends
 * the handler's messages and acks the batch's entries in ONE Pulsar transaction. Events that
 * cannot be projected go to `<prefix>-projector=<group>-dlq` in the same transaction.
 */
export function pulsarProjector<E extends Event>(store: EventStore<E>, options: PulsarProjectorOptions<E>): PulsarProjector {
  const context = storeContext<E>(store);
  const driver = context.runtime.driver;
  if (!(driver instanceof PulsarDriver)) {
    throw new InvalidArgumentError(`pulsarProjector needs a store on the pulsar driver; this store is on ${driver.name}`);
  }
  return new Projector(context, driver, options);
}

class Projector<E extends Event> implements PulsarProjector {
  readonly group: string;
  readonly subscription: string;
  readonly deadLetterTopic: string;
  readonly started: Promise<void>;
  readonly done: Promise<void>;
  readonly #store: StoreContext<E>;
  readonly #driver: PulsarDriver;
  readonly #options: PulsarProjectorOptions<E>;
  readonly #settings: ProjectorSettings;
  readonly #stop = new AbortController();
  readonly #projection: Projection<E>;
  #resolveStarted!: () => void;
  #admin: PulsarAdmin | undefined;
  #coordinators: TransactionCoordinators | undefined;
  #outputs: OutputProducers | undefined;
  #sources: Source[] = [];
  #rotation = 0;
  #processed = 0;
  #deadLettered = 0;

  constructor(store: StoreContext<E>, driver: PulsarDriver, options: PulsarProjectorOptions<E>) {
    this.#settings = checkOptions(options);
    this.#store = store;
    this.#driver = driver;
    this.#options = options;
    this.group = options.group;
    this.subscription = driver.names.projectorSubscription(options.group);
    this.deadLetterTopic = driver.names.projectorDeadLetters(options.group);
    this.#projection = new Projection(store, options, this.#settings, driver.names, this.deadLetterTopic, this.#stop.signal);
    this.started = new Promise((resolve) => (this.#resolveStarted = resolve));
    options.signal?.addEventListener('abort', () => this.#stop.abort(), { once: true });
    this.done = this.#main();
    // Callers that only await `started` or `caughtUp()` must not see an unhandled rejection.
    this.done.catch(() => undefined);
  }

  get processed(): number {
    return this.#processed;
  }

  get deadLettered(): number {
    return this.#deadLettered;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.done.catch(() => undefined);
  }

  async caughtUp(): Promise<void> {
    const stopped = this.done.then(() => {
      throw new InvalidArgumentError(`projector "${this.group}" stopped before it caught up`);
    });
    stopped.catch(() => undefined);
    await Promise.race([this.started, stopped]);
    const heads = await Promise.race([partitionHeads(this.#sources), stopped]);
    const left = new Map(heads);
    while (left.size > 0) {
      for (const [partition, head] of left) {
        const source = this.#sources[partition]!;
        if (await Promise.race([reached(this.#admin!, source, this.subscription, head), stopped])) left.delete(partition);
      }
      if (left.size > 0) await Promise.race([sleep(CAUGHT_UP_POLL_MS), stopped]);
    }
  }

  async #main(): Promise<void> {
    const { client, admin, detach } = this.#driver.attach(() => this.stop());
    this.#admin = admin;
    try {
      // Opens the driver: the events topic exists from here on.
      await this.#store.runtime.open();
      this.#coordinators = new TransactionCoordinators(client);
      this.#outputs = new OutputProducers(client, admin, this.group);
      await admin.ensureTopic(this.deadLetterTopic);
      const start = this.#options.start ?? 'beginning';
      this.#sources = await subscribeAll(client, this.#driver.names, this.#driver.partitions, this.subscription, start);
      this.#resolveStarted();
      await this.#loop();
    } finally {
      detach();
      await this.#outputs?.close().catch(() => undefined);
      await client.close().catch(() => undefined);
    }
  }

  async #loop(): Promise<void> {
    const stop = this.#stop.signal;
    let failures = 0;
    while (!stop.aborted) {
      let worked: boolean;
      try {
        await this.#fence();
        worked = await this.#batch();
        failures = 0;
      } catch (error) {
        if (error === STOPPED) break;
        if (error instanceof InvalidArgumentError || error instanceof StoreClosedError) throw error;
        failures++;
        if (failures > 10) {
          throw new DriverError(PULSAR, `projector "${this.group}": 10 batches in a row failed; last error: ${errorMessage(error)}`, error);
        }
        this.#report(error);
        await sleep(Math.min(5000, 50 * 2 ** failures), stop);
        continue;
      }
      if (!worked && !stop.aborted) {
        const queued = Promise.race(this.#sources.map((s) => s.consumer.whenQueued(this.#settings.blockMs)));
        await untilAborted(queued, stop);
      }
    }
  }

  /**
   * A partition this instance has just subscribed to or become active on: abort whatever an
   * earlier owner left open on it (fence.ts), then have the broker deliver everything unacked
   * again, in order (what it pushed meanwhile skipped the entries those pending acks held).
   */
  async #fence(): Promise<void> {
    for (const source of this.#sources) {
      if (!source.needsFence) continue;
      source.needsFence = false;
      try {
        await abortOpenTransactions(this.#admin!, this.#coordinators!, source.topic, this.subscription);
      } catch (error) {
        source.needsFence = true;
        throw error;
      }
      source.consumer.redeliverUnacknowledged();
    }
  }

  /** One batch: take entries, project them, then send the outputs and ack the entries in one transaction. False when there was nothing. */
  async #batch(): Promise<boolean> {
    const taken: Taken[] = [];
    const messages: Outgoing[] = [];
    const seen = new Set<string>();
    // Every consumer a message was taken from, projected or not: all of them deliver again after a failure.
    const touched = new Set<Source>();
    let budget = this.#settings.batchSize;
    let events = 0;
    let deadLettered = 0;
    const order = rotate(this.#sources, this.#rotation++);
    try {
      for (const source of order) {
        while (budget > 0) {
          const message = source.consumer.tryReceive();
          if (message === undefined) break;
          touched.add(source);
          // The same entry twice in one batch (a redelivery racing the queue) is handled once.
          const key = `${source.partition}/${message.messageId.ledgerId}:${message.messageId.entryId}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const projected = await this.#projection.project(message, source.partition);
          taken.push({ source, message });
          messages.push(...projected.messages);
          events += projected.events;
          deadLettered += projected.deadLettered;
          budget -= Math.max(1, projected.events);
        }
      }
      if (taken.length === 0) return false;
      await this.#commit(taken, messages);
    } catch (error) {
      // Aborted (or never begun): the broker must deliver the batch again, in order. It does
      // redeliver an aborted transaction's acks by itself, but after what it pushed meanwhile.
      for (const source of touched) source.consumer.redeliverUnacknowledged();
      throw error;
    }
    // Counted once committed: an aborted batch's dead letters are retried with it.
    if (deadLettered > 0) this.#store.telemetry.deadLettered(this.group, 'pulsar_projector', deadLettered);
    this.#processed += events;
    this.#deadLettered += deadLettered;
    return true;
  }

  /** Sends `messages` and acks `taken` in one transaction, committed; aborted on any failure. */
  async #commit(taken: readonly Taken[], messages: readonly Outgoing[]): Promise<void> {
    const tc = this.#coordinators!;
    const topics = [...new Set(messages.map((m) => m.topic))];
    // Producers first (they may make the topic): nothing of this is in the transaction yet.
    const producers = new Map(await Promise.all(topics.map(async (t) => [t, await this.#outputs!.producer(t)] as const)));
    let txn: TxnId | undefined;
    try {
      txn = await tc.begin(this.#settings.transactionTimeoutMs);
      const subscriptions = [...new Set(taken.map((t) => t.source.topic))].map((topic) => ({ topic, subscription: this.subscription }));
      await tc.addSubscriptions(txn, subscriptions);
      if (topics.length > 0) await tc.addPartitions(txn, topics);
      const open = txn;
      // Each producer keeps its messages in order; the transaction holds them all until the commit.
      await Promise.all(messages.map((m) => producers.get(m.topic)!.send(m.payload, { key: m.key, properties: m.properties, txn: open })));
      await Promise.all(taken.map((t) => t.source.consumer.ackInTransaction(t.message.messageId, open)));
      await tc.commit(txn);
    } catch (error) {
      // Abort now rather than hold the entries (and readers of the outputs) until the timeout.
      if (txn !== undefined) await tc.abort(txn).catch(() => undefined);
      throw error;
    }
  }

  #report(error: unknown): void {
    (this.#options.onError ?? this.#store.onBackgroundError)(error);
  }
}

/** `list` turned left by `by` places: each batch starts on another partition, so none starves. */
function rotate<T>(list: readonly T[], by: number): T[] {
  const shift = by % list.length;
  return [...list.slice(shift), ...list.slice(0, shift)];
}
