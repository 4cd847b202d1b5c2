// The event store a user holds (createEventStore): appends, reads, aggregates, subscriptions and
// consumer groups over any driver. Over 400 lines because it is the public surface in one place;
// each feature's logic lives in its own file (aggregate.ts, subscription.ts, stream-access.ts…).
import { jsonCodec } from './json-codec.ts';
import { AggregateRepository, type AggregateDefinition } from './aggregate.ts';
import type { Codec } from './codec.ts';
import type { AppendRequest, AppendResult, EventStoreDriver, Position, StoredEvent } from './driver.ts';
import { InvalidArgumentError } from './errors.ts';
import { EventCodec } from './event-codec.ts';
import type { AnyEventType, Event, EventOf } from './event-type.ts';
import { describeEventTypes } from './event-type-description.ts';
import { assertExpectedVersion, type ExpectedVersion } from './expected-version.ts';
import { arg } from './arguments.ts';
import { partitionOf } from './partition.ts';
import { exactRetry } from './exact-retry.ts';
import { offsetBeforeTime } from './partition-time.ts';
import { streamAccess, type StreamAccess } from './stream-access.ts';
import type { EventInput, RecordedEvent } from './recorded-event.ts';
import { RuntimeDriver } from './runtime-driver.ts';
import {
  registerStoreContext,
  type AppendOptions,
  type AppendOutcome,
  type ReadStreamOptions,
  type StoreContext,
} from './store-context.ts';
import { assertStreamName } from './stream-name.ts';
import { assertGroupName } from './group-name.ts';
import { SubscriptionPositions, type Subscription, type SubscribeOptions } from './subscription.ts';
import { DeadLetters, GroupConsumer, groupDriver, type ConsumeOptions } from './group-consumer.ts';
import { ATTR, Telemetry } from './telemetry.ts';
import type { TelemetrySetting } from './telemetry-options.ts';

export type { AppendOptions, AppendOutcome, ReadStreamOptions } from './store-context.ts';

export interface EventStoreOptions<Types extends readonly AnyEventType[]> {
  readonly driver: EventStoreDriver;
  /** Every event type this store may write or read. */
  readonly events: Types;
  /** Payload codec. Default: JSON. */
  readonly codec?: Codec;
  /** Largest encoded event accepted (payload + metadata). Default 1 MiB. */
  readonly maxEventBytes?: number;
  /** Validate every payload read back against its schema, not only upcast ones. Default false. */
  readonly validateOnRead?: boolean;
  /** Called with failures that must not fail the caller (a snapshot write, say). Default: a process warning. */
  readonly onBackgroundError?: (error: unknown) => void;
  /** Clock for event times, in ms since the epoch. Default `Date.now`. */
  readonly clock?: () => number;
  /**
   * OpenTelemetry spans and metrics (README "Telemetry"). Default: on when @opentelemetry/api
   * is installed, which costs next to nothing until an SDK is registered; `false` turns it off.
   */
  readonly telemetry?: TelemetrySetting;
}

const DEFAULT_BATCH = 500;

/**
 * The event store: typed appends and reads over any driver. `E` is the union of the store's
 * event types, so every read and subscription hands back fully typed events.
 */
export class EventStore<E extends Event = Event> {
  readonly #runtime: RuntimeDriver;
  readonly #codec: EventCodec<E>;
  /** Saved positions of `subscribe` groups (checkpoints): read, seek, reset. Native consumer groups are `consume`. */
  readonly subscriptions: SubscriptionPositions;
  readonly #onBackgroundError: (error: unknown) => void;
  readonly #clock: () => number;
  readonly #appendListeners = new Set<() => void>();
  readonly #consumers = new Set<GroupConsumer<E>>();
  /** Per-stream appends and reads: the driver's own, or the core's partition index and leases on a log. */
  readonly #streams: StreamAccess;
  /** What aggregates, subscriptions and consumers see of this store. */
  readonly #context: StoreContext<E>;
  readonly #telemetry: Telemetry;

  constructor(options: EventStoreOptions<readonly AnyEventType[]>) {
    arg.object(options, 'createEventStore options');
    const driver = arg.object(options.driver, 'driver');
    if (
      typeof driver.name !== 'string' ||
      (driver.concurrency !== 'conditional-append' && driver.concurrency !== 'partition-owner') ||
      typeof driver.capabilities !== 'object' ||
      driver.capabilities === null
    ) {
      throw new InvalidArgumentError('driver must be an eventfold driver, such as sqlite() from eventfold/sqlite');
    }
    const maxEventBytes = arg.positiveInt(options.maxEventBytes ?? 1024 * 1024, 'maxEventBytes');
    const names = new Set<string>();
    arg.array(options.events, 'events').forEach((t, i) => {
      if (typeof t !== 'function' || typeof t.type !== 'string' || typeof t.parse !== 'function') {
        throw new InvalidArgumentError(`events[${i}] must be an event type made by defineEvent`);
      }
      if (names.has(t.type)) throw new InvalidArgumentError(`event type "${t.type}" is registered twice`);
      names.add(t.type);
    });
    if (options.codec !== undefined) {
      const codec = arg.object(options.codec, 'codec');
      arg.string(codec.name, 'codec.name');
      arg.function(codec.encode, 'codec.encode');
      arg.function(codec.decode, 'codec.decode');
    }
    arg.optional(options.validateOnRead, (v) => arg.boolean(v, 'validateOnRead'));
    arg.optional(options.onBackgroundError, (f) => arg.function(f, 'onBackgroundError'));
    arg.optional(options.clock, (f) => arg.function(f, 'clock'));
    const events = options.events;
    this.#runtime = new RuntimeDriver(options.driver, () => describeEventTypes(events));
    this.#codec = new EventCodec<E>({
      types: options.events,
      codec: options.codec ?? jsonCodec(),
      maxEventBytes,
      validateOnRead: options.validateOnRead ?? false,
    });
    this.#clock = options.clock ?? Date.now;
    this.#telemetry = Telemetry.of(options.telemetry, driver.name);
    this.#onBackgroundError =
      options.onBackgroundError ?? ((error) => process.emitWarning(error instanceof Error ? error : new Error(String(error))));
    this.#context = {
      runtime: this.#runtime,
      codec: this.#codec,
      get partitions() {
        return options.driver.partitions;
      },
      onBackgroundError: this.#onBackgroundError,
      telemetry: this.#telemetry,
      onAppend: (listener) => this.onAppend(listener),
      append: (streamId, events, opts) => this.append(streamId, events, opts),
      readStream: (streamId, opts) => this.readStream(streamId, opts),
    };
    registerStoreContext(this, this.#context);
    this.subscriptions = new SubscriptionPositions(this.#runtime);
    this.#streams = streamAccess(options.driver);
  }

  get backend(): string {
    return this.#runtime.driver.name;
  }

  get partitions(): number {
    return this.#runtime.driver.partitions;
  }

  /** The partition a stream's events live in. */
  partitionOf(streamId: string): number {
    assertStreamName(streamId);
    const driver = this.#runtime.driver;
    return driver.partitionOf ? driver.partitionOf(streamId) : partitionOf(streamId, driver.partitions);
  }

  /**
   * Appends events to one stream, atomically. With `expectedVersion`, of several concurrent
   * writers expecting the same version exactly one succeeds; the others get an
   * `ExpectedVersionConflictError` and nothing of theirs is stored. Retrying an append whose
   * outcome was lost (same event ids) stores nothing new and reports `alreadyStored`.
   */
  async append(streamId: string, events: EventInput<E> | readonly EventInput<E>[], options?: AppendOptions): Promise<AppendOutcome<E>> {
    const { expectedVersion = 'any' } = arg.options(options, 'append options');
    const request = this.#prepare({ streamId, events, expectedVersion });
    const run = (): Promise<AppendOutcome<E>> =>
      this.#runtime.use(async () => {
        let result: AppendResult;
        try {
          result = await this.#streams.append(request.request);
        } catch (error) {
          const retried = await exactRetry(this.#streams, request.request, error);
          if (!retried) throw error;
          result = retried;
        }
        if (!result.stored) this.#notifyAppend();
        return this.#outcome(request, result);
      });
    if (!this.#telemetry.active) return run();
    const { partition, events: list } = request.request;
    const attributes = {
      [ATTR.streamId]: streamId,
      [ATTR.partition]: String(partition),
      [ATTR.eventCount]: list.length,
      [ATTR.expectedVersion]: String(expectedVersion),
    };
    const span = (): Promise<AppendOutcome<E>> =>
      this.#telemetry.span('eventfold.append', 'internal', attributes, run, (o) => (o.alreadyStored ? 'already_stored' : 'ok'));
    return this.#telemetry.timeAppend('append', span, (o) => (o.alreadyStored ? 0 : o.events.length));
  }

  /**
   * Appends to several streams in one atomic step: all of them or none. Only for backends whose
   * driver says `multiStreamAppend` (SQLite, Kafka, Redis — on a cluster, streams of one slot).
   * Retrying a batch whose outcome was lost (same event ids) stores nothing new and reports
   * `alreadyStored` for each stream.
   */
  async appendMany(
    batches: readonly { streamId: string; events: EventInput<E> | readonly EventInput<E>[]; expectedVersion?: ExpectedVersion }[],
  ): Promise<AppendOutcome<E>[]> {
    if (!this.#streams.multiStreamAppend) {
      throw new InvalidArgumentError(`the ${this.backend} backend cannot append to several streams atomically`);
    }
    if (arg.array(batches, 'appendMany batches').length === 0) return [];
    const prepared = batches.map((b, i) => {
      arg.object(b, `appendMany batches[${i}]`);
      return this.#prepare({ streamId: b.streamId, events: b.events, expectedVersion: b.expectedVersion ?? 'any' });
    });
    const streams = new Set(prepared.map((p) => p.request.streamId));
    if (streams.size !== prepared.length) throw new InvalidArgumentError('appendMany takes each stream at most once');
    const ids = new Set(prepared.flatMap((p) => p.request.events.map((e) => e.id)));
    if (ids.size !== prepared.reduce((n, p) => n + p.request.events.length, 0)) {
      throw new InvalidArgumentError('the same event id appears twice in one appendMany');
    }
    const run = (): Promise<AppendOutcome<E>[]> =>
      this.#runtime.use(async () => {
        const requests = prepared.map((p) => p.request);
        let results: readonly AppendResult[];
        try {
          results = await this.#streams.appendMany(requests);
        } catch (error) {
          // An exact retry of a stored batch: every stream holds its events already.
          const retried = await Promise.all(requests.map((r) => exactRetry(this.#streams, r, error, true)));
          if (retried.some((r) => r === undefined)) throw error;
          results = retried as AppendResult[];
        }
        if (results.some((r) => !r.stored)) this.#notifyAppend();
        return results.map((r, i) => this.#outcome(prepared[i]!, r));
      });
    if (!this.#telemetry.active) return run();
    const count = prepared.reduce((n, p) => n + p.request.events.length, 0);
    const attributes = { [ATTR.streamCount]: prepared.length, [ATTR.eventCount]: count };
    const span = (): Promise<AppendOutcome<E>[]> =>
      this.#telemetry.span('eventfold.append_many', 'internal', attributes, run, (o) =>
        o.every((r) => r.alreadyStored) ? 'already_stored' : 'ok',
      );
    return this.#telemetry.timeAppend('append_many', span, (o) => o.reduce((n, r) => n + (r.alreadyStored ? 0 : r.events.length), 0));
  }

  /** Current version of a stream; 0 when it has no events. */
  async streamVersion(streamId: string): Promise<number> {
    assertStreamName(streamId);
    const partition = this.partitionOf(streamId);
    return this.#runtime.use(() => this.#streams.streamVersion(streamId, partition));
  }

  /** Events of one stream in version order, optionally within a version range. */
  async *readStream(streamId: string, options?: ReadStreamOptions): AsyncGenerator<RecordedEvent<E>> {
    assertStreamName(streamId);
    const o = arg.options(options, 'readStream options');
    const batch = arg.positiveInt(o.batchSize ?? DEFAULT_BATCH, 'batchSize');
    const fromVersion = arg.positiveInt(o.fromVersion ?? 1, 'fromVersion');
    const to = arg.nonNegativeInt(o.toVersion ?? Number.MAX_SAFE_INTEGER, 'toVersion');
    let after = arg.optional(o.after, (p) => assertPosition(p, 'after'));
    const partition = this.partitionOf(streamId);
    let from = fromVersion;
    while (from <= to) {
      const range = { fromVersion: from, toVersion: to, limit: batch, ...(after ? { after } : {}) };
      const page = await this.#runtime.use(() => this.#streams.readStream(streamId, partition, range));
      for (const stored of page) yield this.#codec.decode(stored);
      if (page.length < batch) return;
      const last = page[page.length - 1]!;
      from = last.version + 1;
      after = last.position;
    }
  }

  /**
   * Every event of the store, partition by partition: in order within a partition (and so within
   * a stream), in no promised order across partitions. `after` resumes from a position vector
   * such as a subscription checkpoint.
   */
  async *readAll(options?: { after?: readonly Position[]; batchSize?: number }): AsyncGenerator<RecordedEvent<E>> {
    const o = arg.options(options, 'readAll options');
    const batch = arg.positiveInt(o.batchSize ?? DEFAULT_BATCH, 'batchSize');
    const positions = arg.optional(o.after, (list) => arg.array(list, 'after').map((p, i) => assertPosition(p, `after[${i}]`)));
    for (let partition = 0; partition < this.partitions; partition++) {
      const after = positions?.find((p) => p.partition === partition)?.offset;
      for await (const stored of this.#scanPartition(partition, after, batch)) yield this.#codec.decode(stored);
    }
  }

  /** Events appended at or after `since`, partition by partition (see `readAll`). */
  async *readSince(since: Date, options?: { batchSize?: number }): AsyncGenerator<RecordedEvent<E>> {
    const time = arg.date(since, 'since').getTime();
    const batch = arg.positiveInt(arg.options(options, 'readSince options').batchSize ?? DEFAULT_BATCH, 'batchSize');
    for (let partition = 0; partition < this.partitions; partition++) {
      const after = await this.#runtime.use((d) => offsetBeforeTime(d, partition, time));
      for await (const stored of this.#scanPartition(partition, after, batch)) {
        if (stored.time >= time) yield this.#codec.decode(stored);
      }
    }
  }

  /** Repository for an aggregate: load (snapshot + tail), time travel, command handling. */
  aggregate<State, AE extends E, Command>(definition: AggregateDefinition<State, AE, Command>): AggregateRepository<State, AE, Command> {
    return new AggregateRepository(this.#context as unknown as StoreContext<AE>, definition);
  }

  /**
   * Runs `handler` for every event, from the group's saved position, then live. The group's
   * position is saved after each batch, so a restarted subscription resumes where it stopped
   * (at-least-once: a crash between a handler and the save replays that batch).
   */
  subscribe(options: SubscribeOptions<E>): Subscription<E> {
    arg.object(options, 'subscribe options');
    return this.subscriptions.start(this.#context, options);
  }

  /**
   * Joins a native consumer group as one of its competing consumers (backends with
   * `consumerGroups`: Redis). Each event goes to one consumer of the group; a consumer that dies
   * leaves its events pending until another takes them over after `claimIdleMs`; an event whose
   * handler keeps failing, or that was delivered `maxDeliveries` times, goes to the group's
   * dead letters. Delivery is at least once: make handlers idempotent.
   */
  consume(options: ConsumeOptions<E>): GroupConsumer<E> {
    arg.object(options, 'consume options');
    const driver = groupDriver(this.#context);
    assertGroupName(options.group);
    assertGroupName(options.consumer);
    const consumer = new GroupConsumer(this.#context, driver, options);
    this.#consumers.add(consumer);
    void consumer.done.catch(() => undefined).finally(() => this.#consumers.delete(consumer));
    return consumer;
  }

  /** The dead letters of a native consumer group: list them, redrive them. */
  deadLetters(group: string): DeadLetters<E> {
    groupDriver(this.#context);
    return new DeadLetters(this.#context, group);
  }

  /** Moves a native consumer group to the beginning (replay everything) or the end. */
  async resetConsumerGroup(group: string, to: 'beginning' | 'end' = 'beginning'): Promise<void> {
    assertGroupName(group);
    arg.oneOf(to, 'to', ['beginning', 'end']);
    const driver = groupDriver(this.#context);
    await this.#runtime.use(() => driver.resetGroup(group, to));
  }

  /** Resolves on the next append made through this store object (or when `signal` aborts). */
  onAppend(listener: () => void): () => void {
    this.#appendListeners.add(arg.function(listener, 'listener'));
    return () => this.#appendListeners.delete(listener);
  }

  /** Stops subscriptions and consumers, waits for running operations, closes the driver. */
  async close(): Promise<void> {
    await this.subscriptions.stopAll();
    await Promise.allSettled([...this.#consumers].map((c) => c.stop()));
    await this.#runtime.close(() => this.#streams.release());
  }

  /** A partition's events page by page; a full page's next page is read while the caller takes this one (one broker round trip less to wait for per page). */
  async *#scanPartition(partition: number, after: bigint | undefined, batch: number): AsyncGenerator<StoredEvent> {
    const read = (cursor: bigint | undefined) => {
      const page = this.#runtime.use((d) => d.readPartition(partition, { after: cursor, limit: batch }));
      page.catch(() => undefined); // awaited below, or dropped when the caller stops early
      return page;
    };
    let next = read(after);
    for (;;) {
      const page = await next;
      if (page.length < batch) {
        yield* page;
        return;
      }
      next = read(page[page.length - 1]!.position.offset);
      yield* page;
    }
  }

  #prepare(input: { streamId: string; events: unknown; expectedVersion: ExpectedVersion }): {
    request: AppendRequest;
    events: E[];
  } {
    assertStreamName(input.streamId);
    assertExpectedVersion(input.expectedVersion);
    const list = (Array.isArray(input.events) ? input.events : [input.events]) as unknown[];
    if (list.length === 0) throw new InvalidArgumentError(`append to "${input.streamId}" needs at least one event`);
    const time = this.#clock();
    const encoded = list.map((e) => this.#codec.encode(e, time));
    const ids = new Set(encoded.map((e) => e.encoded.id));
    if (ids.size !== encoded.length) throw new InvalidArgumentError('the same event id appears twice in one append');
    return {
      events: encoded.map((e) => e.event),
      request: {
        streamId: input.streamId,
        partition: this.partitionOf(input.streamId),
        expectedVersion: input.expectedVersion,
        events: encoded.map((e) => e.encoded),
      },
    };
  }

  #outcome(prepared: { request: AppendRequest; events: E[] }, result: AppendResult): AppendOutcome<E> {
    const { request } = prepared;
    const first = result.nextExpectedVersion - request.events.length + 1;
    // An exact retry reports what the first try stored (its times); a fresh append is built
    // from the validated events in hand rather than decoded back from bytes.
    const events = result.stored
      ? result.stored.map((s) => this.#codec.decode(s))
      : prepared.events.map((event, i) =>
          this.#codec.recorded(event, {
            streamId: request.streamId,
            version: first + i,
            position: result.positions[i]!,
            time: request.events[i]!.time,
            schemaVersion: request.events[i]!.schemaVersion,
          }),
        );
    return { nextExpectedVersion: result.nextExpectedVersion, alreadyStored: result.stored !== undefined, events };
  }

  #notifyAppend(): void {
    for (const listener of this.#appendListeners) listener();
  }
}

/** `value` when it is a `Position` ({ partition: integer >= 0, offset: bigint }). */
export function assertPosition(value: Position, name: string): Position {
  arg.object(value, name);
  arg.nonNegativeInt(value.partition, `${name}.partition`);
  if (typeof value.offset !== 'bigint') throw new InvalidArgumentError(`${name}.offset must be a bigint`);
  return value;
}

/** Creates an event store; the event union is inferred from `events`. */
export function createEventStore<const Types extends readonly AnyEventType[]>(
  options: EventStoreOptions<Types>,
): EventStore<EventOf<Types>> {
  return new EventStore<EventOf<Types>>(options);
}
