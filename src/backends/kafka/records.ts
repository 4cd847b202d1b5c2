import type { EncodedEvent, StoredEvent, StoredSnapshot } from '../../core/driver.ts';
import type { TopicPartition } from './layout.ts';
import type { LogRecord } from './log.ts';

/**
 * Record layout of an event: key = stream id (UTF-8), value = the codec's payload bytes
 * untouched, timestamp = the event time (so ListOffsets-by-time is the time index), and the
 * envelope in headers, readable by any Kafka consumer without eventfold:
 *
 *   ef-id, ef-type, ef-schema (schema version), ef-codec, ef-meta (JSON), ef-version (stream
 *   version), ef-time (exact time as the core passed it; the timestamp is its floor)
 */
const H = {
  id: 'ef-id',
  type: 'ef-type',
  schema: 'ef-schema',
  codec: 'ef-codec',
  meta: 'ef-meta',
  version: 'ef-version',
  time: 'ef-time',
} as const;

export interface OutgoingRecord {
  readonly topic: string;
  readonly partition: number;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly headers: Map<Buffer, Buffer>;
  readonly timestamp: bigint;
}

export function eventRecord(target: TopicPartition, streamId: string, event: EncodedEvent, version: number): OutgoingRecord {
  return {
    topic: target.topic,
    partition: target.partition,
    key: Buffer.from(streamId, 'utf8'),
    value: Buffer.from(event.data.buffer, event.data.byteOffset, event.data.byteLength),
    headers: new Map([
      [Buffer.from(H.id), Buffer.from(event.id, 'utf8')],
      [Buffer.from(H.type), Buffer.from(event.type, 'utf8')],
      [Buffer.from(H.schema), Buffer.from(String(event.schemaVersion))],
      [Buffer.from(H.codec), Buffer.from(event.codec, 'utf8')],
      [Buffer.from(H.meta), Buffer.from(event.metadata, 'utf8')],
      [Buffer.from(H.version), Buffer.from(String(version))],
      [Buffer.from(H.time), Buffer.from(String(event.time))],
    ]),
    timestamp: BigInt(Math.max(0, Math.floor(event.time))),
  };
}

/**
 * The record a lease writes, in a transaction it then aborts, to prove it still owns its
 * partition (see `KafkaPartitionLease.appendWith`). Aborted, so no read_committed reader sees it.
 */
export function ownershipProbe(target: TopicPartition): OutgoingRecord {
  return {
    topic: target.topic,
    partition: target.partition,
    key: Buffer.alloc(0),
    value: Buffer.alloc(0),
    headers: new Map([[Buffer.from('ef-probe'), Buffer.from('1')]]),
    timestamp: BigInt(Date.now()),
  };
}

/** The envelope headers' names as bytes, to match header keys without decoding them. */
const KEYS = Object.fromEntries(Object.entries(H).map(([field, name]) => [field, Buffer.from(name, 'latin1')])) as Record<
  keyof typeof H,
  Buffer
>;

/**
 * Which envelope header a key is, or undefined. Reads run this for every header of every record
 * (a 10k-event load is 70k headers), so it matches bytes instead of decoding each key.
 */
function envelopeField(key: Buffer): keyof typeof H | undefined {
  // Every envelope key is "ef-" + a word whose first letter (with the length) tells them apart.
  if (key.length < 5 || key[0] !== 0x65 || key[1] !== 0x66 || key[2] !== 0x2d) return undefined;
  let field: keyof typeof H | undefined;
  switch (key[3]) {
    case 0x69:
      field = 'id';
      break; // i
    case 0x73:
      field = 'schema';
      break; // s
    case 0x63:
      field = 'codec';
      break; // c
    case 0x6d:
      field = 'meta';
      break; // m
    case 0x76:
      field = 'version';
      break; // v
    case 0x74:
      field = key[4] === 0x79 ? 'type' : 'time';
      break; // t: ty / ti
    default:
      return undefined;
  }
  return key.equals(KEYS[field]) ? field : undefined;
}

/** Stream id and version of an event record, without decoding the rest (for the stream index). */
export function streamOf(record: LogRecord): { streamId: string; version: number } | undefined {
  if (!record.key) return undefined;
  for (const [k, v] of record.headers) {
    if (k && v && envelopeField(k) === 'version') return { streamId: record.key.toString('utf8'), version: Number(v.toString('latin1')) };
  }
  return undefined;
}

/** An event record back as the core stored it; undefined for a record eventfold did not write. */
export function storedEvent(record: LogRecord, partition: number): StoredEvent | undefined {
  const h: Partial<Record<keyof typeof H, Buffer>> = {};
  for (const [k, v] of record.headers) {
    const field = k && envelopeField(k);
    if (field) h[field] = v ?? EMPTY;
  }
  if (!record.key || !h.id || !h.version) return undefined;
  const value = record.value ?? EMPTY;
  return {
    id: h.id.toString('utf8'),
    type: h.type ? h.type.toString('utf8') : '',
    schemaVersion: h.schema ? Number(h.schema.toString('latin1')) : 1,
    codec: h.codec ? h.codec.toString('utf8') : '',
    data: new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
    metadata: h.meta ? h.meta.toString('utf8') : '{}',
    time: h.time ? Number(h.time.toString('latin1')) : Number(record.timestamp),
    streamId: record.key.toString('utf8'),
    version: Number(h.version.toString('latin1')),
    position: { partition, offset: record.offset },
  };
}

const EMPTY = Buffer.alloc(0);

function headerMap(record: LogRecord): Map<string, Buffer> {
  const map = new Map<string, Buffer>();
  for (const [k, v] of record.headers) if (k) map.set(k.toString('latin1'), v ?? EMPTY);
  return map;
}

/** Snapshot record: key "<streamId>/<name>" (stream ids cannot contain "/"), value = state. */
export function snapshotKey(streamId: string, name: string): string {
  return `${streamId}/${name}`;
}

/**
 * `covered` is where the snapshot's position lives (topic and Kafka partition), so a reader
 * with other `categories` (a different store partition numbering) can still place it.
 */
export function snapshotRecord(topic: string, partition: number, s: StoredSnapshot, covered: TopicPartition): OutgoingRecord {
  return {
    topic,
    partition,
    key: Buffer.from(snapshotKey(s.streamId, s.name), 'utf8'),
    value: Buffer.from(s.state.buffer, s.state.byteOffset, s.state.byteLength),
    headers: new Map([
      [Buffer.from('ef-schema'), Buffer.from(String(s.schemaVersion))],
      [Buffer.from('ef-version'), Buffer.from(String(s.version))],
      [Buffer.from('ef-partition'), Buffer.from(String(s.position.partition))],
      [Buffer.from('ef-offset'), Buffer.from(String(s.position.offset))],
      [Buffer.from('ef-topic'), Buffer.from(covered.topic, 'utf8')],
      [Buffer.from('ef-topic-partition'), Buffer.from(String(covered.partition))],
      [Buffer.from('ef-taken-at'), Buffer.from(String(s.takenAt))],
    ]),
    timestamp: BigInt(Math.max(0, Math.floor(s.takenAt))),
  };
}

/**
 * `place` maps the topic and Kafka partition the snapshot covers to today's store partition
 * (topic undefined: a snapshot written before categories existed, so of the default topic).
 * A snapshot it cannot place is ignored: the aggregate is rebuilt from its events.
 */
export function storedSnapshot(
  record: LogRecord,
  place: (topic: string | undefined, partition: number) => number | undefined,
): StoredSnapshot | undefined {
  if (!record.key || !record.value) return undefined; // a tombstone
  const key = record.key.toString('utf8');
  const slash = key.indexOf('/');
  if (slash < 0) return undefined;
  const h = headerMap(record);
  const num = (name: string): string => (h.get(name) ?? Buffer.from('0')).toString('latin1');
  const state = record.value;
  const topic = h.get('ef-topic')?.toString('utf8');
  const partition = place(topic, Number(num(topic === undefined ? 'ef-partition' : 'ef-topic-partition')));
  if (partition === undefined) return undefined;
  return {
    streamId: key.slice(0, slash),
    name: key.slice(slash + 1),
    schemaVersion: Number(num('ef-schema')),
    version: Number(num('ef-version')),
    position: { partition, offset: BigInt(num('ef-offset')) },
    state: new Uint8Array(state.buffer, state.byteOffset, state.byteLength),
    takenAt: Number(num('ef-taken-at')),
  };
}
