import type { Position } from './driver.ts';
import { InvalidArgumentError } from './errors.ts';
import type { EventCodec } from './event-codec.ts';
import type { Event } from './event-type.ts';
import type { ExpectedVersion } from './expected-version.ts';
import type { EventInput, RecordedEvent } from './recorded-event.ts';
import type { RuntimeDriver } from './runtime-driver.ts';
import type { Telemetry } from './telemetry.ts';

export interface AppendOptions {
  /** Default `'any'`. */
  readonly expectedVersion?: ExpectedVersion;
}

export interface AppendOutcome<E extends Event> {
  /** Version of the stream after the append; pass it as the next `expectedVersion`. */
  readonly nextExpectedVersion: number;
  readonly events: readonly RecordedEvent<E>[];
  /** True when the events were already stored by an earlier try of the same append. */
  readonly alreadyStored: boolean;
}

export interface ReadStreamOptions {
  /** First version to read (default 1). */
  readonly fromVersion?: number;
  /** Last version to read (default: the end). */
  readonly toVersion?: number;
  readonly batchSize?: number;
  /**
   * Position of the stream's event at `fromVersion - 1` (a snapshot's position), when known:
   * log backends (Kafka) then scan the partition from there instead of from its start.
   */
  readonly after?: Position;
}

/**
 * What the parts built on a store use of it: aggregates, subscriptions, group consumers and
 * backend extras (the Kafka projector). Narrower than `EventStore`, so none of them depends on
 * the store's class, and the driver's lifecycle (`runtime`) stays out of the public API.
 */
export interface StoreContext<E extends Event> {
  readonly runtime: RuntimeDriver;
  readonly codec: EventCodec<E>;
  readonly partitions: number;
  /** Failures that must not fail the caller (a snapshot write, a retried read). */
  readonly onBackgroundError: (error: unknown) => void;
  /** Spans and metrics (`Telemetry.off` when telemetry is off). */
  readonly telemetry: Telemetry;
  /** Calls `listener` on each append made through this store object; returns the unsubscribe. */
  onAppend(listener: () => void): () => void;
  append(streamId: string, events: EventInput<E> | readonly EventInput<E>[], options?: AppendOptions): Promise<AppendOutcome<E>>;
  readStream(streamId: string, options?: ReadStreamOptions): AsyncGenerator<RecordedEvent<E>>;
}

const contexts = new WeakMap<object, StoreContext<Event>>();

/** Called once by the store's constructor. */
export function registerStoreContext<E extends Event>(store: object, context: StoreContext<E>): void {
  contexts.set(store, context as unknown as StoreContext<Event>);
}

/** The context of a store made by `createEventStore`, for backend extras. */
export function storeContext<E extends Event>(store: { readonly backend: string; readonly partitions: number }): StoreContext<E> {
  const context = contexts.get(store);
  if (!context) throw new InvalidArgumentError('store must be an event store made by createEventStore');
  return context as unknown as StoreContext<E>;
}
