import type { AppendRequest, AppendResult, EncodedEvent, Position } from '../driver.ts';
import {
  AppendTooLargeError,
  DriverError,
  DuplicateEventIdError,
  ExpectedVersionConflictError,
  errorMessage,
  InvalidArgumentError,
} from '../errors.ts';
import type { ExpectedVersion } from '../expected-version.ts';

/**
 * The bytes of a routed append (append-router.ts): a request one writer process sends to the
 * owner of a partition, and the owner's reply. Both travel through the backend (Kafka topics,
 * Pulsar topics) and may be read by any process of the store, so decoding checks every field
 * and never evaluates anything.
 *
 * Layout: 4-byte big-endian length of a JSON header, the header, then the events' `data`
 * bytes one after another (their sizes are in the header), so payloads are not re-encoded.
 */
export interface RoutedRequest {
  /** Unique per send: the reply carries it back. */
  readonly id: string;
  /** Where the reply goes (the sender's `RoutingMember.address`). */
  readonly replyTo: string;
  /** One append (`store.append`), or several to append as one atomic step (`store.appendMany`). */
  readonly many: boolean;
  readonly requests: readonly AppendRequest[];
}

export type RoutedReply =
  | { readonly id: string; readonly results: readonly AppendResult[] }
  | { readonly id: string; readonly error: unknown };

const VERSION = 1;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeRequest(message: RoutedRequest): Uint8Array {
  const blobs: Uint8Array[] = [];
  const header = {
    v: VERSION,
    id: message.id,
    replyTo: message.replyTo,
    many: message.many,
    requests: message.requests.map((r) => ({
      streamId: r.streamId,
      partition: r.partition,
      expectedVersion: r.expectedVersion,
      events: r.events.map((e) => {
        blobs.push(e.data);
        return {
          id: e.id,
          type: e.type,
          schemaVersion: e.schemaVersion,
          codec: e.codec,
          metadata: e.metadata,
          time: e.time,
          size: e.data.byteLength,
        };
      }),
    })),
  };
  return frame(header, blobs);
}

export function decodeRequest(bytes: Uint8Array): RoutedRequest {
  const { header, body } = unframe(bytes);
  const h = object(header, 'request');
  let at = 0;
  const requests = array(h['requests'], 'requests').map((value): AppendRequest => {
    const r = object(value, 'request');
    const events = array(r['events'], 'events').map((ev): EncodedEvent => {
      const e = object(ev, 'event');
      const size = integer(e['size'], 'event size');
      if (at + size > body.byteLength) throw malformed('event data runs past the message');
      const data = body.slice(at, at + size);
      at += size;
      return {
        id: string(e['id'], 'event id'),
        type: string(e['type'], 'event type'),
        schemaVersion: integer(e['schemaVersion'], 'schema version'),
        codec: string(e['codec'], 'codec'),
        metadata: string(e['metadata'], 'metadata'),
        time: number(e['time'], 'time'),
        data,
      };
    });
    if (events.length === 0) throw malformed('an append without events');
    return {
      streamId: string(r['streamId'], 'stream id'),
      partition: integer(r['partition'], 'partition'),
      expectedVersion: expectedVersion(r['expectedVersion']),
      events,
    };
  });
  if (at !== body.byteLength) throw malformed('bytes after the last event');
  if (requests.length === 0) throw malformed('no appends');
  return { id: string(h['id'], 'id'), replyTo: string(h['replyTo'], 'reply address'), many: h['many'] === true, requests };
}

export function encodeReply(reply: RoutedReply): Uint8Array {
  const header =
    'results' in reply
      ? {
          v: VERSION,
          id: reply.id,
          results: reply.results.map((r) => ({
            nextExpectedVersion: r.nextExpectedVersion,
            positions: r.positions.map((p) => [p.partition, p.offset.toString()]),
          })),
        }
      : { v: VERSION, id: reply.id, error: describeError(reply.error) };
  return frame(header, []);
}

/** The reply, with an error rebuilt as the typed error the owner threw (a `DriverError` for anything else). */
export function decodeReply(bytes: Uint8Array, backend: string): RoutedReply {
  const h = object(unframe(bytes).header, 'reply');
  const id = string(h['id'], 'id');
  if (h['error'] !== undefined) return { id, error: rebuildError(object(h['error'], 'error'), backend) };
  const results = array(h['results'], 'results').map((value): AppendResult => {
    const r = object(value, 'result');
    return {
      nextExpectedVersion: integer(r['nextExpectedVersion'], 'version'),
      positions: array(r['positions'], 'positions').map((p): Position => {
        const pair = array(p, 'position');
        const offset = string(pair[1], 'offset');
        if (!/^\d{1,20}$/.test(offset)) throw malformed('offset');
        return { partition: integer(pair[0], 'partition'), offset: BigInt(offset) };
      }),
    };
  });
  return { id, results };
}

/** Only the typed conditions a caller branches on cross the wire; anything else becomes its message. */
function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof ExpectedVersionConflictError) {
    return { kind: 'conflict', streamId: error.streamId, expectedVersion: error.expectedVersion, actualVersion: error.actualVersion };
  }
  if (error instanceof DuplicateEventIdError) return { kind: 'duplicate', eventId: error.eventId, existing: error.existing };
  if (error instanceof AppendTooLargeError) return { kind: 'too-large', streamIds: error.streamIds, events: error.events };
  if (error instanceof InvalidArgumentError) return { kind: 'invalid', message: stripPrefix(error.message) };
  return { kind: 'driver', message: stripPrefix(errorMessage(error)) };
}

function rebuildError(e: Record<string, unknown>, backend: string): Error {
  switch (e['kind']) {
    case 'conflict':
      return new ExpectedVersionConflictError(
        string(e['streamId'], 'stream id'),
        expectedVersion(e['expectedVersion']),
        integer(e['actualVersion'], 'version'),
        backend,
      );
    case 'duplicate': {
      const existing = object(e['existing'], 'existing');
      return new DuplicateEventIdError(
        string(e['eventId'], 'event id'),
        { streamId: string(existing['streamId'], 'stream id'), version: integer(existing['version'], 'version') },
        backend,
      );
    }
    case 'too-large':
      return new AppendTooLargeError(
        backend,
        array(e['streamIds'], 'stream ids').map((s) => string(s, 'stream id')),
        integer(e['events'], 'events'),
      );
    case 'invalid':
      return new InvalidArgumentError(string(e['message'], 'message'));
    default:
      return new DriverError(backend, `the partition's owner failed: ${string(e['message'], 'message')}`);
  }
}

function stripPrefix(message: string): string {
  return message.replace(/^\[eventfold\](?: \[[^\]]*\])? /, '');
}

function frame(header: unknown, blobs: readonly Uint8Array[]): Uint8Array {
  const json = utf8.encode(JSON.stringify(header));
  let size = 4 + json.byteLength;
  for (const b of blobs) size += b.byteLength;
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, json.byteLength);
  out.set(json, 4);
  let at = 4 + json.byteLength;
  for (const b of blobs) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

function unframe(bytes: Uint8Array): { header: unknown; body: Uint8Array } {
  if (bytes.byteLength < 4) throw malformed('too short');
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (4 + length > bytes.byteLength) throw malformed('header runs past the message');
  let header: unknown;
  try {
    header = JSON.parse(fromUtf8.decode(bytes.subarray(4, 4 + length)));
  } catch {
    throw malformed('header is not JSON');
  }
  if (object(header, 'message')['v'] !== VERSION) throw malformed('unknown version');
  return { header, body: bytes.subarray(4 + length) };
}

function malformed(what: string): DriverError {
  return new DriverError('router', `malformed routed append message: ${what}`);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function array(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw malformed(`${what} is not a list`);
  return value;
}

function string(value: unknown, what: string): string {
  if (typeof value !== 'string') throw malformed(`${what} is not a string`);
  return value;
}

function number(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw malformed(`${what} is not a number`);
  return value;
}

function integer(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw malformed(`${what} is not a non-negative integer`);
  return value as number;
}

function expectedVersion(value: unknown): ExpectedVersion {
  if (value === 'any' || value === 'no_stream' || value === 'stream_exists') return value;
  return integer(value, 'expected version');
}
