import pg from 'pg';
import { arg } from '../../core/arguments.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { EventStore } from '../../core/event-store.ts';
import type { Event } from '../../core/event-type.ts';
import type { RecordedEvent } from '../../core/recorded-event.ts';
import { postgresDialect, quoteIdent, quoteTable, upsertSql } from '../sql/dialect.ts';
import {
  ACTIVE_TABLE,
  POSITIONS_TABLE,
  type ProjectionContext,
  type ProjectionSwitch,
  type ProjectionTarget,
  SqlProjection,
  versionedTable,
} from '../sql/projection.ts';
import { assertSchemaName } from './names.ts';

/** What a projection handler writes through: the read model's open transaction (one connection). */
export interface PostgresProjectionTx {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /**
   * Writes `row` unless the stored row with the same `key` has a `version` at least as high
   * (`INSERT … ON CONFLICT (key) DO UPDATE … WHERE excluded.version > t.version`). `table` is
   * `name` or `schema.name`. Returns whether the row was written.
   */
  upsertVersioned(
    table: string,
    row: Readonly<Record<string, unknown>>,
    options: { key: readonly string[]; version?: string },
  ): Promise<boolean>;
}

export interface PostgresProjectionOptions<E extends Event> {
  /** The read model's database: a pool you own (not ended by the projection)… */
  readonly pool?: pg.Pool;
  /** …or where to connect (the projection opens and ends its own pool). */
  readonly connectionString?: string;
  /** Schema of the positions table `ef_projection_positions` (created if missing). Default `public`. */
  readonly schema?: string;
  readonly name: string;
  readonly handle: (event: RecordedEvent<E>, tx: PostgresProjectionTx, context: ProjectionContext) => void | Promise<void>;
  /** Read-model version; see `SqlProjectionLoop.version` (rebuild into new tables, then switch). Default 1. */
  readonly version?: number;
  /** Reader-facing tables, each a view of `<name>_v<version>`, switched when a version has caught up. */
  readonly tables?: readonly string[];
  /** Events per transaction. Default 100. */
  readonly batchSize?: number;
  /** Pause when caught up. Default 100 ms. */
  readonly pollMs?: number;
}

export type PostgresProjection<E extends Event> = SqlProjection<E, PostgresProjectionTx>;

function postgresTarget(pool: pg.Pool, schema: string): ProjectionTarget<PostgresProjectionTx> {
  const table = `${quoteIdent(schema)}.${quoteIdent(POSITIONS_TABLE)}`;
  const active = `${quoteIdent(schema)}.${quoteIdent(ACTIVE_TABLE)}`;
  const ready = pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)};
    CREATE TABLE IF NOT EXISTS ${table} (name text PRIMARY KEY, positions text NOT NULL);
    CREATE TABLE IF NOT EXISTS ${active} (name text PRIMARY KEY, version integer NOT NULL)`);
  const saveActive = upsertSql(postgresDialect, active, ['name', 'version'], { key: ['name'] });
  const switchTo = async (client: pg.PoolClient, name: string, s: ProjectionSwitch): Promise<void> => {
    await client.query(saveActive, [name, s.version]);
    // DDL is transactional in PostgreSQL: readers see the old views or the new ones, never neither.
    for (const t of s.tables) {
      await client.query(
        `DROP VIEW IF EXISTS ${quoteTable(t)}; CREATE VIEW ${quoteTable(t)} AS SELECT * FROM ${quoteTable(versionedTable(t, s.version))}`,
      );
    }
  };
  ready.catch(() => undefined); // surfaces at the first load
  const save = upsertSql(postgresDialect, table, ['name', 'positions'], { key: ['name'] });
  return {
    async load(key) {
      await ready;
      const { rows } = await pool.query<{ positions: string }>(`SELECT positions FROM ${table} WHERE name = $1`, [key]);
      return rows[0]?.positions;
    },
    async active(name) {
      await ready;
      const { rows } = await pool.query<{ version: number }>(`SELECT version FROM ${active} WHERE name = $1`, [name]);
      return rows[0]?.version;
    },
    async transaction(fn, key, position, change) {
      const client = await pool.connect();
      let broken: unknown;
      try {
        await client.query('BEGIN');
        await fn({
          query: async (sql, params) => (await client.query(sql, params)).rows,
          async upsertVersioned(target, row, options) {
            const version = quoteIdent(options.version ?? 'version');
            const columns = Object.keys(row);
            const sql = upsertSql(postgresDialect, quoteTable(target), columns, {
              key: options.key,
              where: `excluded.${version} > t.${version}`,
            });
            return (
              ((
                await client.query(
                  sql,
                  columns.map((c) => row[c]),
                )
              ).rowCount ?? 0) > 0
            );
          },
        });
        await client.query(save, [key, position()]);
        if (change) await switchTo(client, change.name, change);
        await client.query('COMMIT');
      } catch (error) {
        broken = error;
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release(broken instanceof Error && !(broken instanceof pg.DatabaseError));
      }
    },
  };
}

/** `sqlProjection(store, { connectionString, name, handle })`: starts at once; `stop()` ends it. */
export function sqlProjection<E extends Event>(store: EventStore<E>, options: PostgresProjectionOptions<E>): PostgresProjection<E> {
  const o = arg.options(options, 'sqlProjection options') as PostgresProjectionOptions<E>;
  arg.string(o.name, 'name');
  if (typeof o.handle !== 'function') throw new InvalidArgumentError('sqlProjection needs a handle function');
  if ((o.pool === undefined) === (o.connectionString === undefined)) {
    throw new InvalidArgumentError('sqlProjection needs either pool or connectionString');
  }
  arg.optional(o.connectionString, (s) => arg.string(s, 'connectionString'));
  const schema = assertSchemaName(o.schema ?? 'public');
  arg.optional(o.version, (n) => arg.positiveInt(n, 'version'));
  arg.optional(o.tables, (t) => arg.array(t, 'tables').map((name, i) => arg.string(name, `tables[${i}]`)));
  arg.optional(o.batchSize, (n) => arg.positiveInt(n, 'batchSize'));
  arg.optional(o.pollMs, (ms) => arg.positive(ms, 'pollMs'));
  const owned = o.pool === undefined ? new pg.Pool({ connectionString: o.connectionString }) : undefined;
  owned?.on('error', () => undefined);
  const projection = new SqlProjection(store, postgresTarget(o.pool ?? owned!, schema), o);
  if (owned) void projection.done.finally(() => owned.end()).catch(() => undefined);
  return projection;
}
