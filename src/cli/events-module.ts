import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Codec } from '../core/codec.ts';
import type { StoredEvent } from '../core/driver.ts';
import { errorMessage, InvalidArgumentError } from '../core/errors.ts';
import { EventCodec } from '../core/event-codec.ts';
import type { AnyEventType } from '../core/event-type.ts';
import { jsonCodec, parseJson } from '../core/json-codec.ts';

/** The user's event definitions, from `--events ./events.ts`. */
export interface EventDefinitions {
  readonly file: string;
  readonly types: readonly AnyEventType[];
  readonly codec: Codec;
}

/**
 * Imports the module and takes every event type it exports (`export const Deposited =
 * defineEvent(…)`, or arrays of them such as `export const events = [...]`), and its `codec`
 * export when there is one (default JSON). Where it exports several definitions of one type
 * name (an app keeping `PaymentReceivedV1` beside today's v2), the highest schema version is
 * today's and decodes; two different definitions at the same version are an error: which one
 * would decode?
 */
export async function loadEventDefinitions(file: string, cwd: string): Promise<EventDefinitions> {
  const path = resolve(cwd, file);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidArgumentError(`cannot load event definitions from ${file}: ${errorMessage(error)}`);
  }
  const byName = new Map<string, AnyEventType>();
  const add = (value: unknown) => {
    if (!isEventType(value)) return;
    const known = byName.get(value.type);
    if (known === value || (known && known.schemaVersion > value.schemaVersion)) return;
    if (known && known.schemaVersion === value.schemaVersion) {
      throw new InvalidArgumentError(
        `${file} exports two definitions of the event type "${value.type}" at schema version ${value.schemaVersion}`,
      );
    }
    byName.set(value.type, value);
  };
  for (const value of Object.values(module)) {
    if (Array.isArray(value)) value.forEach(add);
    else add(value);
  }
  if (byName.size === 0) throw new InvalidArgumentError(`${file} exports no event types (made by defineEvent)`);
  const codec = isCodec(module['codec']) ? module['codec'] : jsonCodec();
  return { file, types: [...byName.values()], codec };
}

function isEventType(value: unknown): value is AnyEventType {
  const v = value as Partial<AnyEventType> | null;
  return (
    typeof value === 'function' && typeof v!.type === 'string' && typeof v!.parse === 'function' && typeof v!.schemaVersion === 'number'
  );
}

function isCodec(value: unknown): value is Codec {
  const v = value as Partial<Codec> | null;
  return (
    typeof value === 'object' &&
    v !== null &&
    typeof v.name === 'string' &&
    typeof v.encode === 'function' &&
    typeof v.decode === 'function'
  );
}

/** An event for display: decoded with the user's definitions, else its raw payload. */
export interface ShownEvent {
  readonly streamId: string;
  readonly version: number;
  readonly position: { readonly partition: number; readonly offset: bigint };
  readonly time: string;
  readonly id: string;
  readonly type: string;
  /** As stored (before upcasting). */
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly metadata: unknown;
  /** `decoded`: with the definitions (upcast, validated when upcast); `raw`: as stored; `failed`: see `error`. */
  readonly decoding: 'decoded' | 'raw' | 'failed';
  readonly error?: string;
}

export class Decoder {
  readonly #codec: EventCodec<never> | undefined;

  constructor(definitions: EventDefinitions | undefined, options: { validate: boolean } = { validate: false }) {
    this.#codec = definitions
      ? new EventCodec({
          types: definitions.types,
          codec: definitions.codec,
          maxEventBytes: Number.MAX_SAFE_INTEGER,
          validateOnRead: options.validate,
        })
      : undefined;
  }

  get decodes(): boolean {
    return this.#codec !== undefined;
  }

  /** Decodes with the definitions; throws their `EventDecodeError` / `UnknownEventTypeError`. */
  strict(stored: StoredEvent): void {
    this.#codec!.decode(stored);
  }

  show(stored: StoredEvent): ShownEvent {
    const base = {
      streamId: stored.streamId,
      version: stored.version,
      position: stored.position,
      time: new Date(stored.time).toISOString(),
      id: stored.id,
      type: stored.type,
      schemaVersion: stored.schemaVersion,
    };
    if (this.#codec) {
      try {
        const event = this.#codec.decode(stored) as unknown as { data: unknown; metadata: unknown };
        return { ...base, data: event.data, metadata: event.metadata, decoding: 'decoded' };
      } catch (error) {
        return { ...base, ...raw(stored), decoding: 'failed', error: errorMessage(error) };
      }
    }
    return { ...base, ...raw(stored), decoding: 'raw' };
  }
}

/** The payload as stored: JSON when the codec is JSON and it parses, else base64. */
function raw(stored: StoredEvent): { data: unknown; metadata: unknown } {
  let metadata: unknown;
  try {
    metadata = parseJson(stored.metadata);
  } catch {
    metadata = stored.metadata;
  }
  if (stored.codec === 'json') {
    try {
      return { data: parseJson(new TextDecoder('utf-8', { fatal: true }).decode(stored.data)), metadata };
    } catch {
      // fall through: not JSON after all
    }
  }
  return { data: { base64: Buffer.from(stored.data).toString('base64'), codec: stored.codec }, metadata };
}
