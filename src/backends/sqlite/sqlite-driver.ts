import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type {
  AppendRequest,
  AppendResult,
  ConditionalAppendDriver,
  DriverCapabilities,
  PartitionRange,
  Position,
  StoredEvent,
  StoredSnapshot,
  VersionRange,
} from '../../core/driver.ts';
import { DriverError, DuplicateEventIdError, ExpectedVersionConflictError } from '../../core/errors.ts';
import { matchesExpectedVersion } from '../../core/expected-version.ts';
import { CREATE_TABLES, SCHEMA_VERSION } from './schema.ts';

export interface SqliteDriverOptions {
  /** Database file (WAL mode), or `':memory:'` (the default). */
  readonly path?: string;
  /** Use this open `node:sqlite` database instead of opening `path`; the driver will not close it. */
  readonly database?: DatabaseSync;
  /** How long a writer waits for another process's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /**
   * `'full'` (default) syncs the WAL on every commit: an acknowledged append survives power
   * loss. `'normal'` is faster and survives a process crash, but may lose the last appends on
   * power loss.
   */
  readonly synchronous?: 'full' | 'normal';
}

const NAME = 'sqlite';

interface EventRow {
  position: number | bigint;
  id: string;
  stream_id: string;
  version: number;
  type: string;
  schema_version: number;
  codec: string;
  data: Uint8Array;
  metadata: string;
  recorded_at: number;
}

/**
 * The embedded store on Node's built-in `node:sqlite`: one file in WAL mode (or memory), one
 * partition whose offsets are the global positions. Appends run in `BEGIN IMMEDIATE`
 * transactions, so the expected-version check and the insert are atomic across processes.
 */
export class SqliteDriver implements ConditionalAppendDriver {
  readonly name = NAME;
  readonly partitions = 1;
  readonly concurrency = 'conditional-append';
  readonly capabilities: DriverCapabilities = { timeIndex: true };
  readonly #options: SqliteDriverOptions;
  #db: DatabaseSync | undefined;
  #statements: ReturnType<typeof prepare> | undefined;

  constructor(options: SqliteDriverOptions = {}) {
    this.#options = options;
  }

  async open(): Promise<void> {
    const db = this.#options.database ?? new DatabaseSync(this.#options.path ?? ':memory:');
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(this.#options.busyTimeoutMs ?? 5000))}`);
    if ((this.#options.path ?? ':memory:') !== ':memory:' && !this.#options.database) {
      db.exec('PRAGMA journal_mode = WAL');
    }
    db.exec(`PRAGMA synchronous = ${this.#options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
    if (version > SCHEMA_VERSION) {
      throw new DriverError(NAME, `database schema version ${version} is newer than this eventfold (${SCHEMA_VERSION})`);
    }
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(CREATE_TABLES);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
    this.#db = db;
    this.#statements = prepare(db);
  }

  async close(): Promise<void> {
    if (this.#db && !this.#options.database) this.#db.close();
    this.#db = undefined;
    this.#statements = undefined;
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    return this.#transaction(() => this.#appendOne(request));
  }

  async appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    return this.#transaction(() => requests.map((r) => this.#appendOne(r)));
  }

  async streamVersion(streamId: string, _partition?: number): Promise<number> {
    return this.#currentVersion(streamId);
  }

  async readStream(streamId: string, _partition: number, range: VersionRange): Promise<StoredEvent[]> {
    const rows = this.#s.readStream.all(streamId, range.fromVersion, range.toVersion, range.limit) as unknown as EventRow[];
    return rows.map(toStoredEvent);
  }

  /** With `streamId` (PartitionRange), only that stream's events: what a partition-owner wrapper of this store needs. */
  async readPartition(partition: number, range: PartitionRange): Promise<StoredEvent[]> {
    if (partition !== 0) return [];
    const rows = (range.streamId === undefined
      ? this.#s.readAll.all(range.after ?? -1n, range.limit)
      : this.#s.readStreamAfter.all(range.after ?? -1n, range.streamId, range.limit)) as unknown as EventRow[];
    return rows.map(toStoredEvent);
  }

  async partitionHead(partition: number): Promise<bigint | undefined> {
    if (partition !== 0) return undefined;
    const row = this.#s.head.get() as { head: number | bigint | null };
    return row.head === null ? undefined : BigInt(row.head);
  }

  async firstOffsetAtTime(partition: number, time: number): Promise<bigint | undefined> {
    if (partition !== 0) return undefined;
    const row = this.#s.firstAtTime.get(time) as { first: number | bigint | null };
    return row.first === null ? undefined : BigInt(row.first);
  }

  async readSnapshot(streamId: string, name: string): Promise<StoredSnapshot | undefined> {
    const row = this.#s.readSnapshot.get(streamId, name) as
      | { schema_version: number; version: number; partition: number; offset: number | bigint; state: Uint8Array; taken_at: number }
      | undefined;
    if (!row) return undefined;
    return {
      streamId,
      name,
      schemaVersion: row.schema_version,
      version: row.version,
      position: { partition: row.partition, offset: BigInt(row.offset) },
      state: row.state,
      takenAt: row.taken_at,
    };
  }

  async writeSnapshot(s: StoredSnapshot): Promise<void> {
    this.#s.writeSnapshot.run(s.streamId, s.name, s.schemaVersion, s.version, s.position.partition, s.position.offset, s.state, s.takenAt);
  }

  async readCheckpoint(group: string): Promise<readonly Position[] | undefined> {
    const rows = this.#s.readCheckpoint.all(group) as { partition: number; offset: number | bigint }[];
    if (rows.length === 0) return undefined;
    return rows.map((r) => ({ partition: r.partition, offset: BigInt(r.offset) }));
  }

  async writeCheckpoint(group: string, positions: readonly Position[]): Promise<void> {
    this.#transaction(() => {
      this.#s.deleteCheckpoint.run(group);
      for (const p of positions) this.#s.writeCheckpoint.run(group, p.partition, p.offset);
    });
  }

  async deleteCheckpoint(group: string): Promise<void> {
    this.#s.deleteCheckpoint.run(group);
  }

  get #s(): ReturnType<typeof prepare> {
    if (!this.#statements) throw new DriverError(NAME, 'the database is not open');
    return this.#statements;
  }

  #currentVersion(streamId: string): number {
    return (this.#s.streamVersion.get(streamId) as { version: number }).version;
  }

  #appendOne(request: AppendRequest): AppendResult {
    const s = this.#s;
    const current = this.#currentVersion(request.streamId);
    if (!matchesExpectedVersion(request.expectedVersion, current)) {
      throw new ExpectedVersionConflictError(request.streamId, request.expectedVersion, current, NAME);
    }
    for (const event of request.events) {
      const existing = s.findId.get(event.id) as { stream_id: string; version: number } | undefined;
      if (existing) throw new DuplicateEventIdError(event.id, { streamId: existing.stream_id, version: existing.version }, NAME);
    }
    const positions: Position[] = [];
    let version = current;
    for (const e of request.events) {
      version++;
      const result = s.insert.run(e.id, request.streamId, version, e.type, e.schemaVersion, e.codec, e.data, e.metadata, e.time);
      positions.push({ partition: 0, offset: BigInt(result.lastInsertRowid) });
    }
    return { nextExpectedVersion: version, positions };
  }

  /** Runs `fn` in a write transaction (synchronous, so nothing else in this process interleaves). */
  #transaction<T>(fn: () => T): T {
    const db = this.#db;
    if (!db) throw new DriverError(NAME, 'the database is not open');
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  }
}

function prepare(db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    streamVersion: p('SELECT coalesce(max(version), 0) AS version FROM ef_events WHERE stream_id = ?'),
    findId: p('SELECT stream_id, version FROM ef_events WHERE id = ?'),
    insert: p(
      `INSERT INTO ef_events (id, stream_id, version, type, schema_version, codec, data, metadata, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    readStream: p('SELECT * FROM ef_events WHERE stream_id = ? AND version >= ? AND version <= ? ORDER BY version LIMIT ?'),
    readAll: p('SELECT * FROM ef_events WHERE position > ? ORDER BY position LIMIT ?'),
    readStreamAfter: p('SELECT * FROM ef_events WHERE position > ? AND stream_id = ? ORDER BY position LIMIT ?'),
    head: p('SELECT max(position) AS head FROM ef_events'),
    firstAtTime: p('SELECT min(position) AS first FROM ef_events WHERE recorded_at >= ?'),
    readSnapshot: p('SELECT * FROM ef_snapshots WHERE stream_id = ? AND name = ?'),
    writeSnapshot: p(
      `INSERT INTO ef_snapshots (stream_id, name, schema_version, version, partition, offset, state, taken_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (stream_id, name) DO UPDATE SET schema_version = excluded.schema_version, version = excluded.version,
         partition = excluded.partition, offset = excluded.offset, state = excluded.state, taken_at = excluded.taken_at`,
    ),
    readCheckpoint: p('SELECT partition, offset FROM ef_checkpoints WHERE group_name = ? ORDER BY partition'),
    writeCheckpoint: p('INSERT INTO ef_checkpoints (group_name, partition, offset) VALUES (?, ?, ?)'),
    deleteCheckpoint: p('DELETE FROM ef_checkpoints WHERE group_name = ?'),
  };
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    streamId: row.stream_id,
    version: row.version,
    type: row.type,
    schemaVersion: row.schema_version,
    codec: row.codec,
    data: row.data,
    metadata: row.metadata,
    time: row.recorded_at,
    position: { partition: 0, offset: BigInt(row.position) },
  };
}
