import type { Codec } from './codec.ts';
import type { EncodedEvent, Position, StoredEvent } from './driver.ts';
import { errorMessage, EventDecodeError, EventTooLargeError, InvalidEventError, UnknownEventTypeError } from './errors.ts';
import { isConstructedEvent, type AnyEventType, type Event, type EventMetadata } from './event-type.ts';
import type { RecordedEvent } from './recorded-event.ts';
import { deepFreeze } from './safe-object.ts';
import { parseJson } from './json-codec.ts';

/**
 * Turns domain events into the driver's `EncodedEvent` and stored events back into typed,
 * frozen, upcast `RecordedEvent`s. The one place where codecs, schema versions and upcasters
 * meet, for every backend.
 */
export class EventCodec<E extends Event> {
  readonly #types: ReadonlyMap<string, AnyEventType>;
  readonly #codec: Codec;
  readonly #maxEventBytes: number;
  readonly #validateOnRead: boolean;

  constructor(options: { types: readonly AnyEventType[]; codec: Codec; maxEventBytes: number; validateOnRead: boolean }) {
    const types = new Map<string, AnyEventType>();
    for (const t of options.types) types.set(t.type, t);
    this.#types = types;
    this.#codec = options.codec;
    this.#maxEventBytes = options.maxEventBytes;
    this.#validateOnRead = options.validateOnRead;
  }

  get codecName(): string {
    return this.#codec.name;
  }

  /** Validates (unless built by a constructor) and encodes one event for appending. */
  encode(input: unknown, time: number): { event: E; encoded: EncodedEvent } {
    if (typeof input !== 'object' || input === null || typeof (input as { type?: unknown }).type !== 'string') {
      throw new InvalidEventError('(unknown)', [{ message: 'an event must be an object with a string `type`', path: [] }]);
    }
    const raw = input as { type: string; data?: unknown; id?: string; metadata?: EventMetadata };
    const type = this.#types.get(raw.type);
    if (!type) throw new UnknownEventTypeError(raw.type);
    const event = (
      isConstructedEvent(raw)
        ? raw
        : type(raw.data as never, {
            ...(raw.id === undefined ? {} : { id: raw.id }),
            ...(raw.metadata === undefined ? {} : { metadata: raw.metadata }),
          })
    ) as E;
    let data: Uint8Array;
    try {
      data = this.#codec.encode({ type: type.type, schemaVersion: type.schemaVersion, data: event.data });
    } catch (cause) {
      if (cause instanceof InvalidEventError) throw cause;
      throw new InvalidEventError(type.type, [
        { message: `codec ${this.#codec.name} cannot encode it: ${errorMessage(cause)}`, path: ['data'] },
      ]);
    }
    const metadata = JSON.stringify(event.metadata);
    const size = data.byteLength + Buffer.byteLength(metadata) + event.id.length + type.type.length;
    if (size > this.#maxEventBytes) throw new EventTooLargeError(type.type, size, this.#maxEventBytes);
    return {
      event,
      encoded: { id: event.id, type: type.type, schemaVersion: type.schemaVersion, codec: this.#codec.name, data, metadata, time },
    };
  }

  /** The recorded form of an event this process just appended: no decoding needed. */
  recorded(event: E, at: { streamId: string; version: number; position: Position; time: number; schemaVersion: number }): RecordedEvent<E> {
    return Object.freeze({
      type: event.type,
      data: event.data,
      id: event.id,
      metadata: event.metadata,
      streamId: at.streamId,
      version: at.version,
      position: Object.freeze({ ...at.position }),
      time: new Date(at.time),
      storedSchemaVersion: at.schemaVersion,
    }) as unknown as RecordedEvent<E>;
  }

  /** Decodes, upcasts and freezes a stored event; every failure is an `EventDecodeError`. */
  decode(stored: StoredEvent): RecordedEvent<E> {
    const at = { streamId: stored.streamId, version: stored.version, type: stored.type };
    const type = this.#types.get(stored.type);
    if (!type) throw new UnknownEventTypeError(stored.type, at);
    if (stored.codec !== this.#codec.name) {
      throw new EventDecodeError(at, `stored with codec "${stored.codec}" but the store uses "${this.#codec.name}"`);
    }
    if (stored.schemaVersion > type.schemaVersion) {
      throw new EventDecodeError(at, `stored with schema version ${stored.schemaVersion}, newer than this code's ${type.schemaVersion}`);
    }
    let data: unknown;
    let metadata: EventMetadata;
    try {
      data = this.#codec.decode({ type: stored.type, schemaVersion: stored.schemaVersion, data: stored.data });
      metadata = parseJson(stored.metadata) as EventMetadata;
    } catch (cause) {
      throw new EventDecodeError(at, errorMessage(cause), cause);
    }
    for (let v = stored.schemaVersion; v < type.schemaVersion; v++) {
      const upcast = type.upcasters[v];
      if (!upcast) throw new EventDecodeError(at, `no upcaster from schema version ${v} to ${v + 1}`);
      try {
        data = upcast(data);
      } catch (cause) {
        throw new EventDecodeError(at, `upcaster from schema version ${v} failed: ${errorMessage(cause)}`, cause);
      }
    }
    if (this.#validateOnRead || stored.schemaVersion !== type.schemaVersion) {
      try {
        data = type.parse(data);
      } catch (cause) {
        throw new EventDecodeError(at, errorMessage(cause), cause);
      }
    }
    return deepFreeze({
      type: stored.type,
      data,
      id: stored.id,
      metadata,
      streamId: stored.streamId,
      version: stored.version,
      position: stored.position,
      time: new Date(stored.time),
      storedSchemaVersion: stored.schemaVersion,
    }) as unknown as RecordedEvent<E>;
  }
}
