import type { StandardSchemaV1 } from '@standard-schema/spec';
import { arg, describe } from './arguments.ts';
import { InvalidArgumentError, InvalidEventError, type ValidationIssue } from './errors.ts';
import { payloadShapeIssue } from './payload-shape.ts';
import { deepFreeze } from './safe-object.ts';

/** Correlation, causation and tenant travel with every event; other keys are free-form strings. */
export interface EventMetadata {
  readonly correlationId?: string;
  readonly causationId?: string;
  readonly tenant?: string;
  readonly [key: string]: string | undefined;
}

/** A domain event as built by its type's constructor: frozen, validated, with a stable id. */
export interface Event<Type extends string = string, Data = unknown> {
  readonly type: Type;
  readonly data: Data;
  /** Stable id: appending the same event object twice stores it once. */
  readonly id: string;
  readonly metadata: EventMetadata;
}

/**
 * Turns the stored payload of an older schema version into the next version's shape.
 * `upcasters[1]` maps a v1 payload to v2, `upcasters[2]` v2 to v3, and so on.
 */
export type Upcaster = (olderPayload: unknown) => unknown;

export interface EventTypeOptions<Type extends string, Schema extends StandardSchemaV1> {
  readonly type: Type;
  readonly schema: Schema;
  /** Version of the payload shape that `schema` describes. Default 1. */
  readonly schemaVersion?: number;
  readonly upcasters?: Readonly<Record<number, Upcaster>>;
}

export interface EventType<Type extends string = string, Input = unknown, Output = Input> {
  /** Validates `data`, freezes it and returns the event; throws `InvalidEventError`. */
  (data: Input, options?: { id?: string; metadata?: EventMetadata }): Event<Type, Output>;
  readonly type: Type;
  readonly schema: StandardSchemaV1<Input, Output>;
  readonly schemaVersion: number;
  readonly upcasters: Readonly<Record<number, Upcaster>>;
  /** Validates a payload read back from storage (after upcasting) without building an event. */
  parse(data: unknown): Output;
}

/** Any event type. (`any` because a constructor's parameter type varies contravariantly.) */
// biome-ignore lint/suspicious/noExplicitAny: the constructor's parameter varies contravariantly; unknown would admit no event type
export type AnyEventType = EventType<string, any, any>;

/** The event union produced by a list of event types. */
export type EventOf<T extends AnyEventType | readonly AnyEventType[]> = T extends readonly AnyEventType[]
  ? EventOf<T[number]>
  : T extends EventType<infer Type, infer _Input, infer Output>
    ? Event<Type, Output>
    : never;

/** What an event type's name may hold (also what reaches a backend's names built from it, such as Pulsar's schema topics). */
export const EVENT_TYPE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;

/**
 * Defines an event type once: its name, its schema (any Standard Schema validator — zod,
 * valibot, arktype…), its schema version and the upcasters from older versions.
 */
export function defineEvent<const Type extends string, Schema extends StandardSchemaV1>(
  options: EventTypeOptions<Type, Schema>,
): EventType<Type, StandardSchemaV1.InferInput<Schema>, StandardSchemaV1.InferOutput<Schema>> {
  const { type, schema } = arg.object(options, 'defineEvent options');
  if (typeof type !== 'string' || !EVENT_TYPE_NAME.test(type)) {
    throw new InvalidArgumentError(`event type name ${describe(type)} must match ${EVENT_TYPE_NAME}`);
  }
  if (
    (typeof schema !== 'object' && typeof schema !== 'function') ||
    schema === null ||
    typeof schema['~standard']?.validate !== 'function'
  ) {
    throw new InvalidArgumentError(`schema of ${type} must be a Standard Schema (zod, valibot, arktype…), got ${describe(schema)}`);
  }
  const schemaVersion = arg.positiveInt(options.schemaVersion ?? 1, `schemaVersion of ${type}`);
  const upcasters = Object.freeze({ ...arg.optional(options.upcasters, (u) => arg.object(u, `upcasters of ${type}`)) });
  for (let v = 1; v < schemaVersion; v++) {
    if (typeof upcasters[v] !== 'function' && Object.keys(upcasters).length > 0) {
      throw new InvalidArgumentError(`${type} has upcasters but none from schema version ${v} to ${v + 1}`);
    }
  }

  const parse = (data: unknown): StandardSchemaV1.InferOutput<Schema> => validate(type, schema, data);

  const create = (
    data: StandardSchemaV1.InferInput<Schema>,
    options?: { id?: string; metadata?: EventMetadata },
  ): Event<Type, StandardSchemaV1.InferOutput<Schema>> => {
    const opts = arg.options(options, `${type} options`);
    // Before the schema or the freeze recurse over it: depth and `__proto__` keys.
    const shape = payloadShapeIssue(data, 'data');
    if (shape) throw new InvalidEventError(type, [shape]);
    const metadata = validateMetadata(type, opts.metadata ?? {});
    const value = parse(data);
    const id = opts.id ?? crypto.randomUUID();
    if (typeof id !== 'string' || id.length === 0 || id.length > 128) {
      throw new InvalidEventError(type, [{ message: 'id must be a non-empty string of at most 128 characters', path: ['id'] }]);
    }
    const event = deepFreeze({ type, data: value, id, metadata });
    constructed.add(event);
    return event;
  };

  return Object.freeze(Object.assign(create, { type, schema, schemaVersion, upcasters, parse }));
}

/** Events built by a constructor are already validated; the store re-validates anything else. */
const constructed = new WeakSet<object>();

export function isConstructedEvent(event: object): boolean {
  return constructed.has(event);
}

function validate<Schema extends StandardSchemaV1>(type: string, schema: Schema, data: unknown): StandardSchemaV1.InferOutput<Schema> {
  const result = schema['~standard'].validate(data);
  if (result instanceof Promise) {
    throw new InvalidArgumentError(`the schema of ${type} validates asynchronously; event schemas must be synchronous`);
  }
  if (result.issues) {
    throw new InvalidEventError(type, result.issues.map(toIssue));
  }
  return result.value as StandardSchemaV1.InferOutput<Schema>;
}

function toIssue(issue: StandardSchemaV1.Issue): ValidationIssue {
  return {
    message: issue.message,
    path: (issue.path ?? []).map((p) => (typeof p === 'object' && p !== null ? p.key : p)),
  };
}

/** Longest metadata value, in UTF-16 code units (`string.length`). */
export const MAX_METADATA_VALUE = 1024;

export function validateMetadata(type: string, metadata: unknown): EventMetadata {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new InvalidEventError(type, [{ message: 'metadata must be an object of strings', path: ['metadata'] }]);
  }
  if (Object.hasOwn(metadata, '__proto__')) {
    throw new InvalidEventError(type, [{ message: '"__proto__" is not allowed as a key', path: ['metadata', '__proto__'] }]);
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length > MAX_METADATA_VALUE) {
      throw new InvalidEventError(type, [
        { message: `metadata values must be strings of at most ${MAX_METADATA_VALUE} characters`, path: ['metadata', key] },
      ]);
    }
    out[key] = value;
  }
  return out;
}
