import type { Position } from './driver.ts';
import type { Event, EventMetadata } from './event-type.ts';

/** Where and when an event was stored. No order is promised across partitions. */
export interface RecordedFields {
  readonly streamId: string;
  /** Version of the stream this event made (1 for the first event). */
  readonly version: number;
  readonly position: Position;
  /** When the event was appended. */
  readonly time: Date;
  /** Schema version the payload was stored with (before upcasting to the current one). */
  readonly storedSchemaVersion: number;
}

/** An event read back from the store, for each member of the union `E`. */
export type RecordedEvent<E extends Event = Event> = E extends Event ? E & RecordedFields : never;

/** What `append` accepts: a constructed event, or a plain `{ type, data }` the store validates. */
export type EventInput<E extends Event = Event> =
  E extends Event<infer Type, infer Data>
    ? E | { readonly type: Type; readonly data: Data; readonly id?: string; readonly metadata?: EventMetadata }
    : never;
