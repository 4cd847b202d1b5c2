import pg from 'pg';
import { arg } from '../../core/arguments.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { EventStore } from '../../core/event-store.ts';
import type { Event } from '../../core/event-type.ts';
import { postgresDialect, quoteIdent } from '../sql/dialect.ts';
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
import { assertSchemaName } from './names.ts';

/** What a projection handler writes through: the read model's open transaction (one connection). */
export interface PostgresProjectionTx {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /**
   * Writes `row` unless the stored row with the same `key` has a `version` at least as high
   * (`INSERT … ON CONFLICT (key) DO UPDATE … WHERE excluded.version > t.version`). `table` is
   * `name` or `schema.name`. Returns whether the row was written.
   */
  upsertVersioned<Row extends object, V extends string = 'version'>(
    table: string,
    row: Row & { readonly [C in NoInfer<V>]: unknown },
    options: VersionedUpsertOptions<Row, V>,
  ): Promise<boolean>;
}

/** What `sqlProjection` takes on PostgreSQL: where the read model is, and the loop's options (`SqlProjectionLoop`). */
export interface PostgresProjectionOptions<E extends Event> extends SqlProjectionLoop<E, PostgresProjectionTx> {
  /** The read model's database: a pool you own (not ended by the projection)… */
  readonly pool?: pg.Pool;
  /** …or where to connect (the projection opens and ends its own pool). */
  readonly connectionString?: string;
  /** Schema of the tables `ef_projection_positions` and `ef_projection_active` (created if missing). Default `public`. */
  readonly schema?: string;
}

export type PostgresProjection<E extends Event> = SqlProjection<E, PostgresProjectionTx>;

function postgresTarget(pool: pg.Pool, schema: string): ProjectionTarget<PostgresProjectionTx> {
  const tables = projectionTables(schema);
  const sql = projectionStatements(postgresDialect, tables);
  const ready = pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}; ${projectionTablesDdl(tables)}`);
  ready.catch(() => undefined); // surfaces at the first load
  return {
    system: 'postgres',
    async load(key) {
      await ready;
      return (await pool.query<{ positions: string }>(sql.loadPosition, [key])).rows[0]?.positions;
    },
    async active(name) {
      await ready;
      return (await pool.query<{ version: number }>(sql.loadActive, [name])).rows[0]?.version;
    },
    async transaction(fn, key, position, change) {
      const client = await pool.connect();
      let broken: unknown;
      try {
        await client.query('BEGIN');
        await fn({
          query: async (text, params) => (await client.query(text, params)).rows,
          async upsertVersioned(target: string, typed: object, options: { key: readonly string[]; version?: string }) {
            const row = typed as Readonly<Record<string, unknown>>;
            const columns = Object.keys(row);
            const result = await client.query(
              versionedUpsertSql(postgresDialect, target, columns, options),
              columns.map((c) => row[c]),
            );
            return (result.rowCount ?? 0) > 0;
          },
        });
        await client.query(sql.savePosition, [key, position()]);
        if (change) {
          await client.query(sql.saveActive, [change.name, change.version]);
          for (const t of change.tables) await client.query(switchViewSql(t, change.version));
        }
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
  checkProjectionLoop(o);
  if ((o.pool === undefined) === (o.connectionString === undefined)) {
    throw new InvalidArgumentError('sqlProjection needs either pool or connectionString');
  }
  arg.optional(o.connectionString, (s) => arg.string(s, 'connectionString'));
  const schema = assertSchemaName(o.schema ?? 'public');
  const owned = o.pool === undefined ? new pg.Pool({ connectionString: o.connectionString }) : undefined;
  owned?.on('error', () => undefined);
  const projection = new SqlProjection(store, postgresTarget(o.pool ?? owned!, schema), o);
  if (owned) void projection.done.finally(() => owned.end()).catch(() => undefined);
  return projection;
}
