import type { StoredEvent, StoredSnapshot } from '../../core/driver.ts';
import { type SqlDialect, upsertSql } from './dialect.ts';

/** Where one store's events and snapshots are, as SQL names. */
export interface EventTables {
  /** The events table, as written in SQL (qualified and quoted as needed). */
  readonly events: string;
  readonly snapshots: string;
  /** The events table's offset column (SQLite's `position`, PostgreSQL's `off`). */
  readonly offsetColumn: string;
  /** The snapshots table's offset column (SQLite's `offset`, PostgreSQL's `off`). */
  readonly snapshotOffsetColumn: string;
  /**
   * An SQL expression every log read stays below (`off < bound`), for a store whose offsets
   * are handed out before commit (PostgreSQL's stable prefix); none when offsets commit in order.
   */
  readonly stableBound?: string;
}

/** A row of `eventColumns`, as either client returns it (SQLite: numbers, Uint8Array; pg: int8 as text, Buffer). */
export interface EventRow {
  off: string | number | bigint;
  id: string;
  stream_id: string;
  version: number;
  type: string;
  schema_version: number;
  codec: string;
  data: Uint8Array;
  metadata: string;
  recorded_at: string | number | bigint;
}

/** The columns of `EventRow` from the events table aliased `e`. */
export function eventColumns(t: EventTables): string {
  return `e.${t.offsetColumn} AS off, e.id, e.stream_id, e.version, e.type, e.schema_version, e.codec, e.data, e.metadata, e.recorded_at`;
}

/**
 * The statements both SQL drivers run alike, parameters in the order the comments give. The
 * append (its check and insert) and checkpoints stay in each driver: there the databases
 * differ (row locks, arrays).
 */
export function eventSql(d: SqlDialect, t: EventTables) {
  const p = d.param;
  const cols = eventColumns(t);
  const off = `e.${t.offsetColumn}`;
  const stable = t.stableBound === undefined ? '' : ` AND ${off} < ${t.stableBound}`;
  const stableOnly = t.stableBound === undefined ? '' : ` WHERE ${off} < ${t.stableBound}`;
  return {
    /** (stream) → { version } */
    streamVersion: `SELECT coalesce(max(version), 0) AS version FROM ${t.events} WHERE stream_id = ${p(1)}`,
    /** (stream, fromVersion, toVersion, limit); by version, never held back: a stream's versions commit in order. */
    readStream: `SELECT ${cols} FROM ${t.events} e WHERE e.stream_id = ${p(1)} AND e.version >= ${p(2)} AND e.version <= ${p(3)}
      ORDER BY e.version LIMIT ${p(4)}`,
    /** (after, limit) */
    readLog: `SELECT ${cols} FROM ${t.events} e WHERE ${off} > ${p(1)}${stable} ORDER BY ${off} LIMIT ${p(2)}`,
    /** (after, stream, limit) */
    readLogOfStream: `SELECT ${cols} FROM ${t.events} e WHERE ${off} > ${p(1)} AND e.stream_id = ${p(2)}${stable} ORDER BY ${off} LIMIT ${p(3)}`,
    /** () → { head } */
    head: `SELECT max(${off}) AS head FROM ${t.events} e${stableOnly}`,
    /** (time) → { first } */
    firstAtTime: `SELECT min(${off}) AS first FROM ${t.events} e WHERE e.recorded_at >= ${p(1)}${stable}`,
    /** (after stream id, limit) → { stream_id, version }: a page of streams in id order (keyset paging, for tools). */
    listStreams: `SELECT stream_id, max(version) AS version FROM ${t.events} WHERE stream_id > ${p(1)}
      GROUP BY stream_id ORDER BY stream_id LIMIT ${p(2)}`,
    /** (stream, name) → SnapshotRow */
    readSnapshot: `SELECT schema_version, version, partition, ${t.snapshotOffsetColumn} AS off, state, taken_at
      FROM ${t.snapshots} WHERE stream_id = ${p(1)} AND name = ${p(2)}`,
    /** (stream, name, schemaVersion, version, partition, offset, state, takenAt): last write wins. */
    writeSnapshot: upsertSql(
      d,
      t.snapshots,
      ['stream_id', 'name', 'schema_version', 'version', 'partition', t.snapshotOffsetColumn, 'state', 'taken_at'],
      { key: ['stream_id', 'name'] },
    ),
  };
}

export interface SnapshotRow {
  schema_version: number;
  version: number;
  partition: number;
  off: string | number | bigint;
  state: Uint8Array;
  taken_at: string | number | bigint;
}

export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    streamId: row.stream_id,
    version: row.version,
    type: row.type,
    schemaVersion: row.schema_version,
    codec: row.codec,
    data: plainBytes(row.data),
    metadata: row.metadata,
    time: Number(row.recorded_at),
    position: { partition: 0, offset: BigInt(row.off) },
  };
}

export function toStoredSnapshot(streamId: string, name: string, row: SnapshotRow): StoredSnapshot {
  return {
    streamId,
    name,
    schemaVersion: row.schema_version,
    version: row.version,
    position: { partition: row.partition, offset: BigInt(row.off) },
    state: plainBytes(row.state),
    takenAt: Number(row.taken_at),
  };
}

/** The parameters of `writeSnapshot`, in its order (both clients take bigint and Uint8Array). */
export function snapshotParams(s: StoredSnapshot): [string, string, number, number, number, bigint, Uint8Array, number] {
  return [s.streamId, s.name, s.schemaVersion, s.version, s.position.partition, s.position.offset, s.state, s.takenAt];
}

/** A Buffer seen as a plain Uint8Array (same memory): what the core and its codecs expect. */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}
