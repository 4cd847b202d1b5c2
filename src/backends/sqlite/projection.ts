import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { arg } from '../../core/arguments.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { EventStore } from '../../core/event-store.ts';
import type { Event } from '../../core/event-type.ts';
import type { RecordedEvent } from '../../core/recorded-event.ts';
import { quoteIdent, quoteTable, sqliteDialect, upsertSql } from '../sql/dialect.ts';
import {
  ACTIVE_TABLE,
  POSITIONS_TABLE,
  type ProjectionContext,
  type ProjectionSwitch,
  type ProjectionTarget,
  SqlProjection,
  versionedTable,
} from '../sql/projection.ts';

/** What a projection handler writes through: the read model's open transaction. */
export interface SqliteProjectionTx {
  run(sql: string, ...params: SQLInputValue[]): void;
  all<R>(sql: string, ...params: SQLInputValue[]): R[];
  /**
   * Writes `row` unless the stored row with the same `key` has a `version` at least as high
   * (`INSERT … ON CONFLICT (key) DO UPDATE … WHERE excluded.version > t.version`): an event
   * applied again, or an older one, changes nothing. Returns whether the row was written.
   */
  upsertVersioned(
    table: string,
    row: Readonly<Record<string, SQLInputValue>>,
    options: { key: readonly string[]; version?: string },
  ): boolean;
}

export interface SqliteProjectionOptions<E extends Event> {
  /** The read model's database (any file; not necessarily the event store's). */
  readonly database: DatabaseSync;
  /** Names the projection's position row. */
  readonly name: string;
  readonly handle: (event: RecordedEvent<E>, tx: SqliteProjectionTx, context: ProjectionContext) => void | Promise<void>;
  /** Read-model version; see `SqlProjectionLoop.version` (rebuild into new tables, then switch). Default 1. */
  readonly version?: number;
  /** Reader-facing tables, each a view of `<name>_v<version>`, switched when a version has caught up. */
  readonly tables?: readonly string[];
  /** Events per transaction. Default 100. */
  readonly batchSize?: number;
  /** Pause when caught up. Default 100 ms. */
  readonly pollMs?: number;
}

export type SqliteProjection<E extends Event> = SqlProjection<E, SqliteProjectionTx>;

/** Transactions are `BEGIN IMMEDIATE`: the read model's file may be shared with other processes. */
function sqliteTarget(db: DatabaseSync): ProjectionTarget<SqliteProjectionTx> {
  db.exec(`CREATE TABLE IF NOT EXISTS ${POSITIONS_TABLE} (name TEXT PRIMARY KEY, positions TEXT NOT NULL);
           CREATE TABLE IF NOT EXISTS ${ACTIVE_TABLE} (name TEXT PRIMARY KEY, version INTEGER NOT NULL)`);
  const loadActive = db.prepare(`SELECT version FROM ${ACTIVE_TABLE} WHERE name = ?`);
  const saveActive = db.prepare(upsertSql(sqliteDialect, ACTIVE_TABLE, ['name', 'version'], { key: ['name'] }));
  const switchTo = (name: string, s: ProjectionSwitch): void => {
    saveActive.run(name, s.version);
    // DDL is transactional in SQLite: readers see the old views or the new ones, never neither.
    for (const t of s.tables)
      db.exec(
        `DROP VIEW IF EXISTS ${quoteTable(t)}; CREATE VIEW ${quoteTable(t)} AS SELECT * FROM ${quoteTable(versionedTable(t, s.version))}`,
      );
  };
  const savePosition = db.prepare(upsertSql(sqliteDialect, POSITIONS_TABLE, ['name', 'positions'], { key: ['name'] }));
  const loadPosition = db.prepare(`SELECT positions FROM ${POSITIONS_TABLE} WHERE name = ?`);
  const tx: SqliteProjectionTx = {
    run: (sql, ...params) => void db.prepare(sql).run(...params),
    all: <R>(sql: string, ...params: SQLInputValue[]) => db.prepare(sql).all(...params) as R[],
    upsertVersioned(table, row, options) {
      const version = quoteIdent(options.version ?? 'version');
      const columns = Object.keys(row);
      const sql = upsertSql(sqliteDialect, quoteTable(table), columns, { key: options.key, where: `excluded.${version} > t.${version}` });
      return Number(db.prepare(sql).run(...columns.map((c) => row[c]!)).changes) > 0;
    },
  };
  return {
    load: async (key) => (loadPosition.get(key) as { positions: string } | undefined)?.positions,
    active: async (name) => (loadActive.get(name) as { version: number } | undefined)?.version,
    async transaction(fn, key, position, change) {
      const release = await turn(db);
      db.exec('BEGIN IMMEDIATE');
      try {
        await fn(tx);
        savePosition.run(key, position());
        if (change) switchTo(change.name, change);
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      } finally {
        release();
      }
    },
  };
}

/**
 * One transaction at a time per connection: projections sharing a `DatabaseSync` take turns
 * (a handler may await, and SQLite has no nested BEGIN on one connection).
 */
const queues = new WeakMap<DatabaseSync, Promise<void>>();
async function turn(db: DatabaseSync): Promise<() => void> {
  const before = queues.get(db) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  queues.set(
    db,
    before.then(() => mine),
  );
  await before;
  return release;
}

/** `sqlProjection(store, { database, name, handle })`: starts at once; `stop()` ends it. */
export function sqlProjection<E extends Event>(store: EventStore<E>, options: SqliteProjectionOptions<E>): SqliteProjection<E> {
  const o = arg.options(options, 'sqlProjection options') as SqliteProjectionOptions<E>;
  arg.object(o.database, 'database');
  arg.string(o.name, 'name');
  if (typeof o.handle !== 'function') throw new InvalidArgumentError('sqlProjection needs a handle function');
  arg.optional(o.version, (n) => arg.positiveInt(n, 'version'));
  arg.optional(o.tables, (t) => arg.array(t, 'tables').map((name, i) => arg.string(name, `tables[${i}]`)));
  arg.optional(o.batchSize, (n) => arg.positiveInt(n, 'batchSize'));
  arg.optional(o.pollMs, (ms) => arg.positive(ms, 'pollMs'));
  return new SqlProjection(store, sqliteTarget(o.database), o);
}
