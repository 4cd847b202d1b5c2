import { describe } from './describe.ts';

/**
 * Every error eventfold throws is an `EventfoldError` with a stable `code`, so callers can
 * branch on `err.code` (or `instanceof`) instead of parsing messages. Messages are prefixed
 * `[eventfold]` or `[eventfold] [<backend>]` so a log line says where it came from.
 */
export type EventfoldErrorCode =
  | 'VERSION_CONFLICT'
  | 'DUPLICATE_EVENT_ID'
  | 'INVALID_EVENT'
  | 'UNKNOWN_EVENT_TYPE'
  | 'EVENT_TOO_LARGE'
  | 'INVALID_STREAM_NAME'
  | 'INVALID_ARGUMENT'
  | 'DECODE_FAILED'
  | 'STORE_CLOSED'
  | 'DRIVER_ERROR'
  | 'COMMAND_REJECTED'
  | 'PARTITION_FENCED'
  | 'APPEND_TOO_LARGE'
  | 'BACKEND_UNAVAILABLE'
  | 'SCHEMA_INCOMPATIBLE';

export class EventfoldError extends Error {
  readonly code: EventfoldErrorCode;
  constructor(code: EventfoldErrorCode, message: string, options?: { cause?: unknown; backend?: string }) {
    const prefix = options?.backend ? `[eventfold] [${options.backend}]` : '[eventfold]';
    super(`${prefix} ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

/** Base of optimistic-concurrency failures: retrying after a reload may succeed. */
export class ConcurrencyError extends EventfoldError {}

/** The stream was not at the version the writer expected. Nothing was written. */
export class ExpectedVersionConflictError extends ConcurrencyError {
  readonly streamId: string;
  readonly expectedVersion: ExpectedVersionLike;
  readonly actualVersion: number;
  constructor(streamId: string, expectedVersion: ExpectedVersionLike, actualVersion: number, backend?: string) {
    super(
      'VERSION_CONFLICT',
      `stream "${streamId}" is at version ${actualVersion}, expected ${String(expectedVersion)}`,
      backend === undefined ? undefined : { backend },
    );
    this.streamId = streamId;
    this.expectedVersion = expectedVersion;
    this.actualVersion = actualVersion;
  }
}

type ExpectedVersionLike = number | 'any' | 'no_stream' | 'stream_exists';

/**
 * An event id of the batch is already stored, and the batch is not an exact retry of the
 * append that stored it. Nothing was written.
 */
export class DuplicateEventIdError extends EventfoldError {
  readonly eventId: string;
  /** Where the id is already stored. */
  readonly existing: { readonly streamId: string; readonly version: number };
  constructor(eventId: string, existing: { streamId: string; version: number }, backend?: string) {
    super(
      'DUPLICATE_EVENT_ID',
      `event id ${eventId} is already stored as version ${existing.version} of stream "${existing.streamId}"`,
      backend === undefined ? undefined : { backend },
    );
    this.eventId = eventId;
    this.existing = existing;
  }
}

export interface ValidationIssue {
  readonly message: string;
  readonly path: readonly PropertyKey[];
}

/** `data.items[3].price`, `metadata["x-id"]`: a path as a reader would write it in code. */
export function formatPath(path: readonly PropertyKey[]): string {
  // A path into a deeply nested payload keeps its ends: `data.a.a.a…(250 more)….a.a`.
  if (path.length > 12) {
    return `${formatPath(path.slice(0, 6))}…(${path.length - 9} more)…${formatPath(['x', ...path.slice(-3)]).slice(1)}`;
  }
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'symbol') out += `[${key.toString()}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}

/** The payload or metadata of an event failed validation. Nothing was written. */
export class InvalidEventError extends EventfoldError {
  readonly eventType: string;
  readonly issues: readonly ValidationIssue[];
  constructor(eventType: string, issues: readonly ValidationIssue[]) {
    const summary = issues
      .slice(0, 5)
      .map((i) => (i.path.length ? `${formatPath(i.path)}: ${i.message}` : i.message))
      .join('; ');
    super('INVALID_EVENT', `invalid ${eventType} event: ${summary}`);
    this.eventType = eventType;
    this.issues = issues;
  }
}

/** The event type is not registered with the store (on write) or cannot be decoded (on read). */
export class UnknownEventTypeError extends EventfoldError {
  readonly eventType: string;
  readonly streamId: string | undefined;
  readonly version: number | undefined;
  constructor(eventType: string, where?: { streamId: string; version: number }) {
    super(
      'UNKNOWN_EVENT_TYPE',
      where
        ? `unknown event type "${eventType}" at version ${where.version} of stream "${where.streamId}"`
        : `unknown event type "${eventType}": register it with the store's \`events\` option`,
    );
    this.eventType = eventType;
    this.streamId = where?.streamId;
    this.version = where?.version;
  }
}

export class EventTooLargeError extends EventfoldError {
  readonly eventType: string;
  readonly size: number;
  readonly limit: number;
  constructor(eventType: string, size: number, limit: number) {
    super('EVENT_TOO_LARGE', `${eventType} event is ${size} bytes encoded, over the limit of ${limit} bytes`);
    this.eventType = eventType;
    this.size = size;
    this.limit = limit;
  }
}

/** An argument of a public call is of the wrong type or out of range. Nothing was done. */
export class InvalidArgumentError extends EventfoldError {
  constructor(message: string, code: 'INVALID_ARGUMENT' | 'INVALID_STREAM_NAME' = 'INVALID_ARGUMENT') {
    super(code, message);
  }
}

/**
 * A connection URL (`openDriver('redis://…')`) is malformed or has an unknown or invalid query
 * parameter; an `InvalidArgumentError` too. The message shows the URL with its password redacted.
 */
export class InvalidConnectionUrlError extends InvalidArgumentError {
  /** The query parameter at fault, when one is. */
  readonly parameter: string | undefined;
  constructor(message: string, parameter?: string) {
    super(message);
    this.parameter = parameter;
  }
}

/**
 * The backend a connection URL names cannot be used here: it is not part of this version of
 * eventfold (`missingPackage` undefined), or its client, an optional peer dependency, is not
 * installed (`missingPackage` names what to `npm install`).
 */
export class BackendUnavailableError extends EventfoldError {
  readonly backend: string;
  readonly missingPackage: string | undefined;
  constructor(backend: string, reason: { missingPackage: string; cause?: unknown } | 'not-in-this-version') {
    if (reason === 'not-in-this-version') {
      super('BACKEND_UNAVAILABLE', `the ${backend} backend is not available in this version of eventfold`);
      this.missingPackage = undefined;
    } else {
      super(
        'BACKEND_UNAVAILABLE',
        `the ${backend} backend needs the package "${reason.missingPackage}": npm install ${reason.missingPackage}`,
        { cause: reason.cause },
      );
      this.missingPackage = reason.missingPackage;
    }
    this.backend = backend;
  }
}

/** A stream name breaks the naming rule (see `assertStreamName`); an `InvalidArgumentError` too. */
export class InvalidStreamNameError extends InvalidArgumentError {
  /** The name, or a description of a value that is no string (`Symbol(x)`, `42`). */
  readonly streamId: string;
  constructor(streamId: unknown, reason: string) {
    super(`invalid stream name ${describe(streamId)}: ${reason}`, 'INVALID_STREAM_NAME');
    this.streamId = typeof streamId === 'string' ? streamId : describe(streamId);
  }
}

/** A stored event could not be decoded or upcast. Names the event so it can be found. */
export class EventDecodeError extends EventfoldError {
  readonly streamId: string;
  readonly version: number;
  readonly eventType: string;
  constructor(at: { streamId: string; version: number; type: string }, reason: string, cause?: unknown) {
    super('DECODE_FAILED', `cannot decode ${at.type} at version ${at.version} of stream "${at.streamId}": ${reason}`, { cause });
    this.streamId = at.streamId;
    this.version = at.version;
    this.eventType = at.type;
  }
}

export class StoreClosedError extends EventfoldError {
  constructor() {
    super('STORE_CLOSED', 'the event store is closed');
  }
}

/** A backend failed in a way that is not one of the typed conditions above. */
export class DriverError extends EventfoldError {
  constructor(backend: string, message: string, cause?: unknown) {
    super('DRIVER_ERROR', message, { backend, cause });
  }
}

/** Thrown by a decider's `decide` to refuse a command; carried through `handle` unchanged. */
export class CommandRejectedError extends EventfoldError {
  constructor(message: string) {
    super('COMMAND_REJECTED', message);
  }
}

/**
 * Another writer has claimed the partition this writer was appending to; its append did not
 * become visible. The core re-claims the partition, catches up and checks again.
 */
export class PartitionFencedError extends EventfoldError {
  readonly partition: number;
  constructor(backend: string, partition: number, cause?: unknown) {
    super('PARTITION_FENCED', `partition ${partition} was claimed by another writer`, { backend, cause });
    this.partition = partition;
  }
}

/**
 * One append is larger than the backend takes in one atomic write (Kafka: the broker's
 * `message.max.bytes` per record batch). Nothing of it was stored; split it into smaller appends.
 */
export class AppendTooLargeError extends EventfoldError {
  readonly streamIds: readonly string[];
  readonly events: number;
  constructor(backend: string, streamIds: readonly string[], events: number, cause?: unknown) {
    super(
      'APPEND_TOO_LARGE',
      `the append of ${events} event(s) to ${streamIds.map((s) => JSON.stringify(s)).join(', ')} is larger than the backend takes in one write; nothing was stored, split it`,
      { backend, cause },
    );
    this.streamIds = streamIds;
    this.events = events;
  }
}

/**
 * The backend's schema registry refused an event type's schema: the change breaks the
 * compatibility strategy the store runs under (Pulsar: the namespace's). Raised when the store
 * opens, before anything is read or written; nothing stored is touched. Not a `DriverError`:
 * the backend works, the code's event schema is what must change (or get a new `schemaVersion`
 * with an upcaster).
 */
export class SchemaIncompatibleError extends EventfoldError {
  readonly eventType: string;
  readonly schemaVersion: number;
  /** The strategy the change was checked under, e.g. `BACKWARD`. */
  readonly strategy: string;
  /** What the registry said. */
  readonly reason: string;
  constructor(backend: string, at: { eventType: string; schemaVersion: number; strategy: string }, reason: string) {
    super(
      'SCHEMA_INCOMPATIBLE',
      `the schema of event type ${at.eventType} (schema version ${at.schemaVersion}) is incompatible under ${at.strategy} with the one registered: ${reason}`,
      { backend },
    );
    this.eventType = at.eventType;
    this.schemaVersion = at.schemaVersion;
    this.strategy = at.strategy;
    this.reason = reason;
  }
}

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
