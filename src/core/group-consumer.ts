import type { ConsumerGroupDriver, DeadLetter, Delivery } from './driver.ts';
import { arg } from './arguments.ts';
import { EventfoldError, InvalidArgumentError } from './errors.ts';
import { errorMessage } from './errors.ts';
import type { Event } from './event-type.ts';
import { untilAvailable, withRetries } from './retry.ts';
import type { StoreContext } from './store-context.ts';
import type { RecordedEvent } from './recorded-event.ts';
import { assertGroupName } from './group-name.ts';
import { ATTR, type LagReading } from './telemetry.ts';
import { eventsAfter } from './telemetry-lag.ts';

export interface ConsumeOptions<E extends Event> {
  /** The group: its consumers share its events, each event going to one of them. */
  readonly group: string;
  /** This consumer's name, unique within the group and stable across restarts of the same worker. */
  readonly consumer: string;
  readonly handler: (event: RecordedEvent<E>) => void | Promise<void>;
  /** Where a new group starts. Default `'beginning'`. */
  readonly start?: 'beginning' | 'end';
  /** Deliveries per read. Default 10. */
  readonly batchSize?: number;
  /** In-process retries of a failing handler, with exponential backoff, before the event is dead-lettered. Default 3. */
  readonly retries?: number;
  /** First backoff delay. Default 50 ms. */
  readonly retryDelayMs?: number;
  /**
   * An event delivered this many times (across consumers and crashes) without being
   * acknowledged is poison: it goes to the dead letters without running the handler again.
   * Default 5.
   */
  readonly maxDeliveries?: number;
  /** Entries pending longer than this belong to a dead consumer and are taken over. Default 30 000 ms. */
  readonly claimIdleMs?: number;
  /** Longest wait for new entries per read. Default 1000 ms. */
  readonly blockMs?: number;
  readonly signal?: AbortSignal;
}

/** A running member of a consumer group. `done` settles when it stops; it rejects (and `onBackgroundError` hears) when an error stopped it. */
export class GroupConsumer<E extends Event> {
  readonly group: string;
  readonly consumer: string;
  readonly done: Promise<void>;
  readonly #store: StoreContext<E>;
  readonly #driver: ConsumerGroupDriver;
  readonly #options: Required<Omit<ConsumeOptions<E>, 'signal'>>;
  readonly #stop = new AbortController();
  #handled = 0;
  #deadLettered = 0;
  /** Offset of the last event this consumer acknowledged or dead-lettered, per partition: where its lag gauge counts from. */
  readonly #done = new Map<number, bigint>();

  constructor(store: StoreContext<E>, driver: ConsumerGroupDriver, options: ConsumeOptions<E>) {
    this.group = options.group;
    this.consumer = options.consumer;
    this.#store = store;
    this.#driver = driver;
    this.#options = {
      group: options.group,
      consumer: options.consumer,
      handler: arg.function(options.handler, 'handler'),
      start: arg.oneOf(options.start ?? 'beginning', 'start', ['beginning', 'end']),
      batchSize: arg.positiveInt(options.batchSize ?? 10, 'batchSize'),
      retries: arg.nonNegativeInt(options.retries ?? 3, 'retries'),
      retryDelayMs: arg.nonNegative(options.retryDelayMs ?? 50, 'retryDelayMs'),
      maxDeliveries: arg.positiveInt(options.maxDeliveries ?? 5, 'maxDeliveries'),
      claimIdleMs: arg.nonNegative(options.claimIdleMs ?? 30_000, 'claimIdleMs'),
      blockMs: arg.nonNegative(options.blockMs ?? 1000, 'blockMs'),
    };
    arg.optional(options.signal, (s) => arg.signal(s, 'signal'));
    options.signal?.addEventListener('abort', () => this.#stop.abort(), { once: true });
    this.done = this.#run();
    this.done.catch(() => undefined);
  }

  /** Events acknowledged by this consumer. */
  get handled(): number {
    return this.#handled;
  }

  /** Events this consumer sent to the dead letters. */
  get deadLettered(): number {
    return this.#deadLettered;
  }

  /** Stops after the event in hand; unacknowledged entries stay pending for a restart or another consumer. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.done.catch(() => undefined);
  }

  async #run(): Promise<void> {
    const unobserve = this.#store.telemetry.observeLag('consumer_group', () => this.#lag());
    try {
      await this.#consume();
    } catch (error) {
      // `done` rejects with it too, but a caller that never awaits `done` must still hear why its
      // consumer stopped (e.g. the store refused to open).
      const closed = error instanceof EventfoldError && error.code === 'STORE_CLOSED';
      if (!this.#stop.signal.aborted && !closed) this.#store.onBackgroundError(error);
      throw error;
    } finally {
      unobserve();
      const { group, consumer } = this.#options;
      if (this.#driver.leave && !this.#store.runtime.closed) await this.#driver.leave(group, consumer).catch(() => undefined);
    }
  }

  async #consume(): Promise<void> {
    const { group, consumer, batchSize, claimIdleMs, blockMs } = this.#options;
    const stop = this.#stop.signal;
    await this.#available(() => this.#store.runtime.use(() => this.#driver.ensureGroup(group, this.#options.start)));
    const driver = this.#driver;
    const use = <T>(fn: () => Promise<T>): Promise<T> => this.#available(() => this.#store.runtime.use(fn));
    // First what this consumer name was given before a restart (where the backend keeps that
    // per consumer), then new work.
    let pending = driver.readPending !== undefined;
    let lastClaim = 0;
    while (!stop.aborted) {
      let batch: Delivery[] = [];
      if (driver.claimIdle && Date.now() - lastClaim >= claimIdleMs / 2) {
        lastClaim = Date.now();
        batch = await use(() => driver.claimIdle!(group, consumer, { minIdleMs: claimIdleMs, limit: batchSize }));
      }
      if (batch.length === 0 && pending && driver.readPending) {
        batch = await use(() => driver.readPending!(group, consumer, { limit: batchSize }));
        if (batch.length === 0) pending = false;
      }
      if (batch.length === 0) {
        // Wake in time for the next claim round, and (Kafka) well inside the consumer's idle limit.
        const wait = Math.min(blockMs, claimIdleMs / 2);
        batch = await use(() => driver.read(group, consumer, { limit: batchSize, blockMs: wait, maxIdleMs: claimIdleMs }));
      }
      if (batch.length === 0) continue;
      const attributes = {
        [ATTR.operationType]: 'process',
        [ATTR.group]: group,
        [ATTR.consumer]: consumer,
        [ATTR.eventCount]: batch.length,
      };
      await this.#store.telemetry.span('eventfold.consumer_group.batch', 'consumer', attributes, async (span) => {
        const deadLettered = this.#deadLettered;
        for (const delivery of batch) {
          if (stop.aborted) break;
          await this.#process(delivery, stop);
        }
        span.setAttribute(ATTR.deadLettered, this.#deadLettered - deadLettered);
      });
    }
  }

  async #process(delivery: Delivery, stop: AbortSignal): Promise<void> {
    const { group, maxDeliveries } = this.#options;
    if (delivery.deliveries > maxDeliveries) {
      await this.#deadLetter(
        delivery,
        `delivered ${delivery.deliveries} times without being acknowledged (maxDeliveries ${maxDeliveries})`,
      );
      return;
    }
    let event: RecordedEvent<E>;
    try {
      event = this.#store.codec.decode(delivery.event);
    } catch (error) {
      // A poison payload cannot succeed on any consumer: straight to the dead letters.
      await this.#deadLetter(delivery, errorMessage(error));
      return;
    }
    const { retries, retryDelayMs } = this.#options;
    const outcome = await withRetries(() => this.#options.handler(event), { retries, delayMs: retryDelayMs, signal: stop });
    if (outcome.ok) {
      // Acknowledged once, after the handler succeeded: a failing ack never re-runs the handler
      // here (the entry stays pending and is delivered again, at least once).
      await this.#available(() => this.#store.runtime.use(() => this.#driver.ack(group, [delivery])));
      this.#handled++;
      this.#passed(delivery);
      return;
    }
    if (outcome.error instanceof EventfoldError && outcome.error.code === 'STORE_CLOSED') throw outcome.error;
    if (stop.aborted) return; // stays pending: a restart or another consumer gets it
    await this.#deadLetter(delivery, `handler failed ${outcome.attempts} times: ${errorMessage(outcome.error)}`);
  }

  /** A driver operation that rides out a backend outage (see `untilAvailable`) instead of stopping the consumer. */
  #available<T>(fn: () => Promise<T>): Promise<T> {
    return untilAvailable(fn, { signal: this.#stop.signal, onError: this.#store.onBackgroundError });
  }

  async #deadLetter(delivery: Delivery, reason: string): Promise<void> {
    await this.#available(() => this.#store.runtime.use(() => this.#driver.deadLetter(this.#options.group, delivery, reason)));
    this.#deadLettered++;
    this.#passed(delivery);
    this.#store.telemetry.deadLettered(this.#options.group, 'consumer_group');
  }

  #passed(delivery: Delivery): void {
    const { partition, offset } = delivery.event.position;
    const done = this.#done.get(partition);
    if (done === undefined || offset > done) this.#done.set(partition, offset);
  }

  /** The lag gauge's readings: events after the last one this consumer finished, in each partition it has finished one in. */
  async #lag(): Promise<LagReading[]> {
    const readings: LagReading[] = [];
    for (const [partition, offset] of this.#done) {
      const lag = await eventsAfter(this.#store.runtime, partition, offset);
      const attributes = { [ATTR.group]: this.group, [ATTR.consumer]: this.consumer, [ATTR.partition]: String(partition) };
      readings.push({ attributes, lag });
    }
    return readings;
  }
}

/** Inspect and redrive a group's dead letters. */
export class DeadLetters<E extends Event> {
  readonly #store: StoreContext<E>;
  readonly #group: string;
  constructor(store: StoreContext<E>, group: string) {
    assertGroupName(group);
    this.#store = store;
    this.#group = group;
  }

  /** Dead letters with the decoded event where it still decodes, and the reason it died. */
  async list(
    limit: number = 100,
  ): Promise<(Omit<DeadLetter, 'event'> & { event: RecordedEvent<E> | undefined; streamId: string; version: number; type: string })[]> {
    arg.positiveInt(limit, 'limit');
    const letters = await this.#store.runtime.use(() => groupDriver(this.#store).listDeadLetters(this.#group, limit));
    return letters.map((l) => {
      let event: RecordedEvent<E> | undefined;
      try {
        event = this.#store.codec.decode(l.event);
      } catch {
        event = undefined;
      }
      return {
        id: l.id,
        reason: l.reason,
        deliveries: l.deliveries,
        deadAt: l.deadAt,
        event,
        streamId: l.event.streamId,
        version: l.event.version,
        type: l.event.type,
      };
    });
  }

  /** Gives dead letters (all, or those ids) back to the group's consumers; returns how many. */
  async redrive(ids?: readonly string[]): Promise<number> {
    arg.optional(ids, (list) => arg.arrayOf(list, 'ids', arg.string));
    return this.#store.runtime.use(() => groupDriver(this.#store).redrive(this.#group, ids));
  }
}

export function groupDriver<E extends Event>(store: StoreContext<E>): ConsumerGroupDriver {
  const driver = store.runtime.driver;
  if (!driver.consumerGroups) {
    throw new InvalidArgumentError(
      `the ${driver.name} backend has no native consumer groups; use subscribe() for a single consumer per group`,
    );
  }
  return driver.consumerGroups;
}
