import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { arg } from '../../core/arguments.ts';
import type { EventStore } from '../../core/event-store.ts';
import type { Event } from '../../core/event-type.ts';
import { sqliteDialect } from '../sql/dialect.ts';
import { type ProjectionTarget, SqlProjection, type SqlProjectionLoop } from '../sql/projection.ts';
import {
  checkProjectionLoop,
  projectionStatements,
  projectionTables,
  projectionTablesDdl,
  switchViewSql,
  type VersionedUpsertOptions,
  versionedUpsertSql,
} from '../sql/projection-sql.ts';

/** What a projection handler writes through: the read model's open transaction. */
export interface SqliteProjectionTx {
  run(sql: string, ...params: SQLInputValue[]): void;
  all<R>(sql: string, ...params: SQLInputValue[]): R[];
  /**
   * Writes `row` unless the stored row with the same `key` has a `version` at least as high
   * (`INSERT … ON CONFLICT (key) DO UPDATE … WHERE excluded.version > t.version`): an event
   * applied again, or an older one, changes nothing. Returns whether the row was written.
   */
  upsertVersioned<Row extends { readonly [K in keyof Row]: SQLInputValue }, V extends string = 'version'>(
    table: string,
    row: Row & { readonly [C in NoInfer<V>]: SQLInputValue },
    options: VersionedUpsertOptions<Row, V>,
  ): boolean;
}

/** What `sqlProjection` takes on SQLite: the read model's database, and the loop's options (`SqlProjectionLoop`). */
export interface SqliteProjectionOptions<E extends Event> extends SqlProjectionLoop<E, SqliteProjectionTx> {
  /** The read model's database (any file; not necessarily the event store's). */
  readonly database: DatabaseSync;
}

export type SqliteProjection<E extends Event> = SqlProjection<E, SqliteProjectionTx>;

/** Transactions are `BEGIN IMMEDIATE`: the read model's file may be shared with other processes. */
function sqliteTarget(db: DatabaseSync): ProjectionTarget<SqliteProjectionTx> {
  const tables = projectionTables();
  db.exec(projectionTablesDdl(tables));
  const sql = projectionStatements(sqliteDialect, tables);
  const loadPosition = db.prepare(sql.loadPosition);
  const savePosition = db.prepare(sql.savePosition);
  const loadActive = db.prepare(sql.loadActive);
  const saveActive = db.prepare(sql.saveActive);
  const tx: SqliteProjectionTx = {
    run: (text, ...params) => void db.prepare(text).run(...params),
    all: <R>(text: string, ...params: SQLInputValue[]) => db.prepare(text).all(...params) as R[],
    upsertVersioned(table: string, typed: object, options: { key: readonly string[]; version?: string }) {
      const row = typed as Readonly<Record<string, SQLInputValue>>; // the interface's type parameter checked the values
      const columns = Object.keys(row);
      return Number(db.prepare(versionedUpsertSql(sqliteDialect, table, columns, options)).run(...columns.map((c) => row[c]!)).changes) > 0;
    },
  };
  return {
    system: 'sqlite',
    load: async (key) => (loadPosition.get(key) as { positions: string } | undefined)?.positions,
    active: async (name) => (loadActive.get(name) as { version: number } | undefined)?.version,
    async transaction(fn, key, position, change) {
      const release = await turn(db);
      db.exec('BEGIN IMMEDIATE');
      try {
        await fn(tx);
        savePosition.run(key, position());
        if (change) {
          saveActive.run(change.name, change.version);
          for (const t of change.tables) db.exec(switchViewSql(t, change.version));
        }
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
  checkProjectionLoop(o);
  return new SqlProjection(store, sqliteTarget(o.database), o);
}
