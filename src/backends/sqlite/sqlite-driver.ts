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
  StreamPage,
  VersionRange,
} from '../../core/driver.ts';
import { DriverError } from '../../core/errors.ts';
import { appendKeys, appendResults, planAppend } from '../sql/append-plan.ts';
import { sqliteDialect } from '../sql/dialect.ts';
import {
  type EventRow,
  type EventTables,
  eventSql,
  type SnapshotRow,
  snapshotParams,
  toStoredEvent,
  toStoredSnapshot,
} from '../sql/event-sql.ts';
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

const TABLES: EventTables = { events: 'ef_events', snapshots: 'ef_snapshots', offsetColumn: 'position', snapshotOffsetColumn: 'offset' };

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
    return this.#transaction(() => this.#write([request]))[0]!;
  }

  async appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    return this.#transaction(() => this.#write(requests));
  }

  async streamVersion(streamId: string, _partition?: number): Promise<number> {
    return (this.#s.streamVersion.get(streamId) as { version: number }).version;
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
    const row = this.#s.readSnapshot.get(streamId, name) as SnapshotRow | undefined;
    return row && toStoredSnapshot(streamId, name, row);
  }

  async writeSnapshot(s: StoredSnapshot): Promise<void> {
    this.#s.writeSnapshot.run(...snapshotParams(s));
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

  /** Streams in id order, the cursor being the last id of the page: the (stream_id, version) index answers it. */
  async listStreams(page: { cursor: string | undefined; limit: number }): Promise<StreamPage> {
    const rows = this.#s.listStreams.all(page.cursor ?? '', page.limit) as { stream_id: string; version: number }[];
    return {
      streams: rows.map((r) => ({ streamId: r.stream_id, partition: 0, version: r.version })),
      cursor: rows.length === page.limit ? rows[rows.length - 1]!.stream_id : undefined,
    };
  }

  async listCheckpointGroups(): Promise<string[]> {
    return (this.#s.listGroups.all() as { group_name: string }[]).map((r) => r.group_name);
  }

  get #s(): ReturnType<typeof prepare> {
    if (!this.#statements) throw new DriverError(NAME, 'the database is not open');
    return this.#statements;
  }

  /** Inside a write transaction: the check reads and the inserts see one state of the file. */
  #write(requests: readonly AppendRequest[]): AppendResult[] {
    const s = this.#s;
    const { streams, ids } = appendKeys(requests);
    const versions = new Map(streams.map((id) => [id, (s.streamVersion.get(id) as { version: number }).version]));
    const stored = new Map<string, { streamId: string; version: number }>();
    for (const id of ids) {
      const row = s.findId.get(id) as { stream_id: string; version: number } | undefined;
      if (row) stored.set(id, { streamId: row.stream_id, version: row.version });
    }
    const rows = planAppend(NAME, requests, { versions, stored });
    const offsets = rows.map(({ streamId, version, event: e }) =>
      BigInt(s.insert.run(e.id, streamId, version, e.type, e.schemaVersion, e.codec, e.data, e.metadata, e.time).lastInsertRowid),
    );
    return appendResults(requests, rows, offsets);
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
  const shared = eventSql(sqliteDialect, TABLES);
  return {
    streamVersion: p(shared.streamVersion),
    findId: p('SELECT stream_id, version FROM ef_events WHERE id = ?'),
    insert: p(
      `INSERT INTO ef_events (id, stream_id, version, type, schema_version, codec, data, metadata, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    readStream: p(shared.readStream),
    readAll: p(shared.readLog),
    readStreamAfter: p(shared.readLogOfStream),
    head: p(shared.head),
    firstAtTime: p(shared.firstAtTime),
    readSnapshot: p(shared.readSnapshot),
    writeSnapshot: p(shared.writeSnapshot),
    readCheckpoint: p('SELECT partition, offset FROM ef_checkpoints WHERE group_name = ? ORDER BY partition'),
    writeCheckpoint: p('INSERT INTO ef_checkpoints (group_name, partition, offset) VALUES (?, ?, ?)'),
    deleteCheckpoint: p('DELETE FROM ef_checkpoints WHERE group_name = ?'),
    listStreams: p(shared.listStreams),
    listGroups: p('SELECT DISTINCT group_name FROM ef_checkpoints ORDER BY group_name'),
  };
}
