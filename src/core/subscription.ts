import type { Position, StoredEvent } from './driver.ts';
import { InvalidArgumentError } from './errors.ts';
import { assertGroupName } from './group-name.ts';
import { PartitionPages } from './partition-pages.ts';
import type { Event } from './event-type.ts';
import { arg } from './arguments.ts';
import { untilAvailable, withRetries } from './retry.ts';
import { sleep } from './sleep.ts';
import type { StoreContext } from './store-context.ts';
import type { RecordedEvent } from './recorded-event.ts';
import type { RuntimeDriver } from './runtime-driver.ts';
import { ATTR, type LagReading } from './telemetry.ts';
import { eventsAfter } from './telemetry-lag.ts';

/**
 * Where a subscription keeps its group's position. Default: the event store itself. Pass your
 * own to keep it in the read model's database, next to the rows the handler writes — then the
 * handler can write the row and `event.position` in one transaction, and a crash can never
 * separate them. (`store.subscriptions` manages only positions kept in the event store.)
 */
export interface PositionStore {
  load(group: string): Promise<readonly Position[] | undefined>;
  save(group: string, positions: readonly Position[]): Promise<void>;
}

export interface SubscribeOptions<E extends Event> {
  /** Consumer group name. Each group keeps its own position; a new group starts per `start`. */
  readonly group: string;
  readonly handler: (event: RecordedEvent<E>) => void | Promise<void>;
  /** Where a group without a saved position starts. Default `'beginning'` (a new group replays everything). */
  readonly start?: 'beginning' | 'end';
  /** Events per read. Default 100. */
  readonly batchSize?: number;
  /**
   * Longest time between two saves of the position while events keep coming. The position is
   * also saved whenever the subscription catches up (so `caughtUp()` means handled and saved),
   * stops, or fails. 0 saves after every batch. A crash replays at most this much (delivery is
   * at least once either way). Default 1000 ms: a save is a round trip (a Kafka OffsetCommit
   * costs more than handling a batch), so saving per batch would bound catch-up speed.
   */
  readonly checkpointIntervalMs?: number;
  /** How often to look for new events when idle. Default 100 ms. */
  readonly pollIntervalMs?: number;
  /** A failing handler is retried this many times with exponential backoff before the subscription stops. Default 3. */
  readonly retries?: number;
  /** First backoff delay; doubles each retry. Default 50 ms. */
  readonly retryDelayMs?: number;
  readonly signal?: AbortSignal;
  /** Where the group's position lives. Default: the event store. */
  readonly positions?: PositionStore;
}

/** Reads, moves and resets the saved positions of subscription groups (`store.subscriptions`). */
export class SubscriptionPositions {
  readonly #runtime: RuntimeDriver;
  readonly #running = new Map<string, Subscription<Event>>();

  constructor(runtime: RuntimeDriver) {
    this.#runtime = runtime;
  }

  /** The group's saved position vector (empty when it has none). */
  async position(group: string): Promise<readonly Position[]> {
    assertGroupName(group);
    return (await this.#runtime.use((d) => d.readCheckpoint(group))) ?? [];
  }

  /** Forgets the group's position: its next run replays from the beginning. */
  async reset(group: string): Promise<void> {
    await this.seek(group, []);
  }

  /**
   * Moves the group to a position vector: processing resumes after these offsets (partitions
   * not named start from the beginning). A running subscription of the group in this process
   * picks the new position up at its next batch.
   */
  async seek(group: string, positions: readonly Position[]): Promise<void> {
    assertGroupName(group);
    arg.array(positions, 'positions').forEach((p, i) => {
      arg.object(p, `positions[${i}]`);
      arg.nonNegativeInt(p.partition, `positions[${i}].partition`);
      if (typeof p.offset !== 'bigint') throw new InvalidArgumentError(`positions[${i}].offset must be a bigint`);
    });
    const running = this.#running.get(group);
    if (running) running.requestSeek(positions);
    await this.#runtime.use((d) => (positions.length === 0 ? d.deleteCheckpoint(group) : d.writeCheckpoint(group, positions)));
  }

  start<E extends Event>(store: StoreContext<E>, options: SubscribeOptions<E>): Subscription<E> {
    assertGroupName(options.group);
    if (this.#running.has(options.group)) {
      throw new InvalidArgumentError(`group "${options.group}" already has a running subscription in this process`);
    }
    const subscription = new Subscription(store, options, () => this.#running.delete(options.group));
    this.#running.set(options.group, subscription as unknown as Subscription<Event>);
    subscription.run();
    return subscription;
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.#running.values()].map((s) => s.stop()));
  }
}

/** A running subscription. `done` settles when it stops: resolved on `stop()`, rejected on failure. */
export class Subscription<E extends Event> {
  readonly group: string;
  readonly done: Promise<void>;
  readonly #store: StoreContext<E>;
  readonly #options: Required<Omit<SubscribeOptions<E>, 'signal'>> & { signal: AbortSignal | undefined };
  readonly #positionStore: PositionStore;
  readonly #stopController = new AbortController();
  readonly #onEnd: () => void;
  #resolveDone!: () => void;
  #rejectDone!: (error: unknown) => void;
  #positions = new Map<number, bigint>();
  /** The positions as last saved: what `caughtUp()` waits for. */
  #saved = new Map<number, bigint>();
  #dirty = false;
  #lastSave = 0;
  #pendingSeek: readonly Position[] | undefined;
  #waiters: { heads: (bigint | undefined)[]; resolve: () => void }[] = [];
  #processed = 0;

  constructor(store: StoreContext<E>, options: SubscribeOptions<E>, onEnd: () => void) {
    this.group = options.group;
    this.#store = store;
    this.#onEnd = onEnd;
    if (options.positions !== undefined) {
      arg.object(options.positions, 'positions');
      arg.function(options.positions.load, 'positions.load');
      arg.function(options.positions.save, 'positions.save');
    }
    this.#options = {
      group: options.group,
      handler: arg.function(options.handler, 'handler'),
      start: arg.oneOf(options.start ?? 'beginning', 'start', ['beginning', 'end']),
      batchSize: arg.positiveInt(options.batchSize ?? 100, 'batchSize'),
      checkpointIntervalMs: arg.nonNegative(options.checkpointIntervalMs ?? 1000, 'checkpointIntervalMs'),
      pollIntervalMs: arg.nonNegative(options.pollIntervalMs ?? 100, 'pollIntervalMs'),
      retries: arg.nonNegativeInt(options.retries ?? 3, 'retries'),
      retryDelayMs: arg.nonNegative(options.retryDelayMs ?? 50, 'retryDelayMs'),
      signal: arg.optional(options.signal, (s) => arg.signal(s, 'signal')),
      positions: options.positions ?? {
        load: (group) => store.runtime.use((d) => d.readCheckpoint(group)),
        save: (group, positions) => store.runtime.use((d) => d.writeCheckpoint(group, positions)),
      },
    };
    this.#positionStore = this.#options.positions;
    this.done = new Promise((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    // Callers that only await `caughtUp()` must not see an unhandled rejection from `done`.
    this.done.catch(() => undefined);
    options.signal?.addEventListener('abort', () => this.#stopController.abort(), { once: true });
  }

  /** Events handled by this subscription object so far. */
  get processed(): number {
    return this.#processed;
  }

  /** The position vector processed so far. */
  positions(): Position[] {
    return [...this.#positions].map(([partition, offset]) => ({ partition, offset }));
  }

  /**
   * Resolves once the subscription has handled every event stored when this was called (the
   * head of each partition at that moment) and saved its position past them; rejects if the
   * subscription fails first.
   */
  async caughtUp(): Promise<void> {
    const heads: (bigint | undefined)[] = [];
    for (let partition = 0; partition < this.#store.partitions; partition++) {
      heads.push(await this.#store.runtime.use((d) => d.partitionHead(partition)));
    }
    const reached = new Promise<void>((resolve) => this.#waiters.push({ heads, resolve }));
    this.#checkWaiters();
    const stopped = this.done.then(() => {
      throw new InvalidArgumentError(`subscription of group "${this.group}" stopped before it caught up`);
    });
    stopped.catch(() => undefined);
    await Promise.race([reached, stopped]);
  }

  #checkWaiters(): void {
    this.#waiters = this.#waiters.filter((w) => {
      const done = w.heads.every((head, partition) => {
        if (head === undefined) return true;
        const at = this.#saved.get(partition);
        return at !== undefined && at >= head;
      });
      if (done) w.resolve();
      return !done;
    });
  }

  /** Stops after the current event and saves the position. */
  async stop(): Promise<void> {
    this.#stopController.abort();
    await this.done.catch(() => undefined);
  }

  requestSeek(positions: readonly Position[]): void {
    this.#pendingSeek = positions;
  }

  run(): void {
    const unobserve = this.#store.telemetry.observeLag('subscription', () => this.#lag());
    this.#loop()
      .finally(unobserve)
      .then(
        () => {
          this.#onEnd();
          this.#resolveDone();
        },
        (error: unknown) => {
          this.#onEnd();
          this.#rejectDone(error);
        },
      );
  }

  async #loop(): Promise<void> {
    const stop = this.#stopController.signal;
    const { group, batchSize } = this.#options;
    const saved = await this.#available(() => this.#positionStore.load(group));
    if (saved) for (const p of saved) this.#positions.set(p.partition, p.offset);
    this.#saved = new Map(this.#positions);
    if (!saved && this.#options.start === 'end') {
      for (let partition = 0; partition < this.#store.partitions; partition++) {
        const head = await this.#available(() => this.#store.runtime.use((d) => d.partitionHead(partition)));
        if (head !== undefined) this.#positions.set(partition, head);
      }
      this.#dirty = this.#positions.size > 0;
    }
    const pages = new PartitionPages((partition, after) =>
      this.#available(() => this.#store.runtime.use((d) => d.readPartition(partition, { after, limit: batchSize }))),
    );
    while (!stop.aborted) {
      if (this.#pendingSeek) {
        pages.clear();
        this.#positions = new Map(this.#pendingSeek.map((p) => [p.partition, p.offset]));
        this.#pendingSeek = undefined;
        this.#dirty = true;
      }
      // Arm the wake-up before reading so an append during the read is not missed.
      const wake = this.#wakeUp(stop);
      try {
        let handled = 0;
        // A page read ahead may have been read before this wake-up was armed: an empty one is no reason to wait.
        let readAhead = false;
        // Every partition's page of this round is read at once; they are handled in partition order.
        const next = Array.from({ length: this.#store.partitions }, (_, p) => pages.next(p, this.#positions.get(p)));
        for (let partition = 0; partition < this.#store.partitions && !stop.aborted; partition++) {
          readAhead ||= next[partition]!.readAhead;
          const page = await next[partition]!.page;
          if (page.length === 0) continue;
          // A full page: there is likely more. Read on while this one is handled.
          if (page.length === batchSize) pages.readAhead(partition, page[page.length - 1]!.position.offset);
          handled += await this.#store.telemetry.span(
            'eventfold.subscription.batch',
            'consumer',
            this.#batchAttributes(partition, page.length),
            () => this.#batch(partition, page, stop),
          );
        }
        if (handled === 0 && !this.#pendingSeek && !readAhead) {
          await this.#save(true);
          await wake.wait();
        }
      } finally {
        wake.cancel();
      }
    }
    await this.#save(true);
  }

  /** Handles one page of a partition; saves the position after it (per the checkpoint interval). Returns the events handled. */
  async #batch(partition: number, page: readonly StoredEvent[], stop: AbortSignal): Promise<number> {
    let last: bigint | undefined;
    let failed = true;
    let handled = 0;
    try {
      for (const stored of page) {
        if (stop.aborted || this.#pendingSeek) break;
        await this.#handle(this.#store.codec.decode(stored), stop);
        last = stored.position.offset;
        handled++;
      }
      failed = false;
    } finally {
      if (last !== undefined && !this.#pendingSeek) {
        this.#positions.set(partition, last);
        this.#dirty = true;
        await this.#save(failed || stop.aborted);
      }
    }
    return handled;
  }

  #batchAttributes(partition: number, events: number): Record<string, string | number> {
    return {
      [ATTR.operationType]: 'process',
      [ATTR.group]: this.group,
      [ATTR.partition]: String(partition),
      [ATTR.eventCount]: events,
    };
  }

  /** The lag gauge's readings: events after the handled position, per partition. */
  async #lag(): Promise<LagReading[]> {
    const readings: LagReading[] = [];
    for (let partition = 0; partition < this.#store.partitions; partition++) {
      const lag = await eventsAfter(this.#store.runtime, partition, this.#positions.get(partition));
      readings.push({ attributes: { [ATTR.group]: this.group, [ATTR.partition]: String(partition) }, lag });
    }
    return readings;
  }

  /** Saves the position when it changed and `force` or the checkpoint interval says so. */
  async #save(force: boolean): Promise<void> {
    const now = performance.now();
    if (this.#dirty && (force || now - this.#lastSave >= this.#options.checkpointIntervalMs)) {
      const positions = this.positions();
      await this.#available(() => this.#positionStore.save(this.#options.group, positions));
      this.#saved = new Map(positions.map((p) => [p.partition, p.offset]));
      this.#dirty = false;
      this.#lastSave = now;
    }
    this.#checkWaiters();
  }

  /** A driver operation that rides out a backend outage (see `untilAvailable`) instead of stopping the subscription. */
  #available<T>(fn: () => Promise<T>): Promise<T> {
    return untilAvailable(fn, { signal: this.#stopController.signal, onError: this.#store.onBackgroundError });
  }

  async #handle(event: RecordedEvent<E>, stop: AbortSignal): Promise<void> {
    const { retries, retryDelayMs } = this.#options;
    const outcome = await withRetries(() => this.#options.handler(event), { retries, delayMs: retryDelayMs, signal: stop });
    if (!outcome.ok) throw outcome.error;
    this.#processed++;
  }

  /**
   * Arms a wake-up before a read, so an append made in this process during the read is not
   * missed; `wait()` is called only when the read found nothing, and resolves on such an append,
   * on the driver's blocking read after the positions read so far, after the poll interval, or
   * on stop.
   */
  #wakeUp(stop: AbortSignal): { wait: () => Promise<void>; cancel: () => void } {
    const controller = new AbortController();
    const onStop = (): void => controller.abort();
    stop.addEventListener('abort', onStop, { once: true });
    const unsubscribe = this.#store.onAppend(() => controller.abort());
    const cancel = (): void => {
      controller.abort();
      unsubscribe();
      stop.removeEventListener('abort', onStop);
    };
    const wait = async (): Promise<void> => {
      const waits: Promise<void>[] = [sleep(this.#options.pollIntervalMs, controller.signal)];
      const driver = this.#store.runtime.driver;
      if (driver.waitForEvents) waits.push(driver.waitForEvents(this.positions(), controller.signal).catch(() => undefined));
      await Promise.race(waits);
      cancel();
    };
    return { wait, cancel };
  }
}
