import { arg } from '../../core/arguments.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { Event } from '../../core/event-type.ts';
import { quoteIdent, quoteTable, type SqlDialect, upsertSql } from './dialect.ts';
import { ACTIVE_TABLE, POSITIONS_TABLE, type SqlProjectionLoop, versionedTable } from './projection.ts';

/**
 * The SQL and the option checks both `sqlProjection`s (SQLite, PostgreSQL) share; each target
 * only runs these statements its own way (prepared statements on one connection, or a pool).
 */

/** `schema` qualifies the two bookkeeping tables (PostgreSQL); SQLite has none. */
export function projectionTables(schema?: string): { positions: string; active: string } {
  const q = (t: string) => (schema === undefined ? quoteIdent(t) : `${quoteIdent(schema)}.${quoteIdent(t)}`);
  return { positions: q(POSITIONS_TABLE), active: q(ACTIVE_TABLE) };
}

/** Creates the positions and active-version tables if missing (both dialects take these types). */
export function projectionTablesDdl(tables: { positions: string; active: string }): string {
  return `CREATE TABLE IF NOT EXISTS ${tables.positions} (name TEXT PRIMARY KEY, positions TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS ${tables.active} (name TEXT PRIMARY KEY, version INTEGER NOT NULL)`;
}

/** The statements a target prepares once: load and save a position, load and save the active version. */
export function projectionStatements(d: SqlDialect, tables: { positions: string; active: string }) {
  return {
    loadPosition: `SELECT positions FROM ${tables.positions} WHERE name = ${d.param(1)}`,
    savePosition: upsertSql(d, tables.positions, ['name', 'positions'], { key: ['name'] }),
    loadActive: `SELECT version FROM ${tables.active} WHERE name = ${d.param(1)}`,
    saveActive: upsertSql(d, tables.active, ['name', 'version'], { key: ['name'] }),
  };
}

/**
 * Points the reader-facing view `table` at `<table>_v<version>`. DDL is transactional in both
 * SQLite and PostgreSQL: run inside the switch's transaction, readers see the old views or the
 * new ones, never neither.
 */
export function switchViewSql(table: string, version: number): string {
  return `DROP VIEW IF EXISTS ${quoteTable(table)}; CREATE VIEW ${quoteTable(table)} AS SELECT * FROM ${quoteTable(versionedTable(table, version))}`;
}

/**
 * The options of a handler's `upsertVersioned`, typed by the row: the key columns and the
 * version column (default `version`) must be columns of it, so a typo is a compile error.
 */
export interface VersionedUpsertOptions<Row, V extends string> {
  readonly key: readonly (keyof Row & string)[];
  /** The row must have this column (the handler's `row` type says so). Default `version`. */
  readonly version?: V;
}

/** The handler's `upsertVersioned`: writes the row unless the stored one's `version` is at least as high. */
export function versionedUpsertSql(
  d: SqlDialect,
  table: string,
  columns: readonly string[],
  options: { key: readonly string[]; version?: string },
): string {
  const version = quoteIdent(options.version ?? 'version');
  return upsertSql(d, quoteTable(table), columns, { key: options.key, where: `excluded.${version} > t.${version}` });
}

/** Checks the options every `sqlProjection` takes (name, handle, version, tables, batchSize, pollMs). */
export function checkProjectionLoop<E extends Event, Tx>(o: SqlProjectionLoop<E, Tx>): void {
  arg.string(o.name, 'name');
  if (typeof o.handle !== 'function') throw new InvalidArgumentError('sqlProjection needs a handle function');
  arg.optional(o.version, (n) => arg.positiveInt(n, 'version'));
  arg.optional(o.tables, (t) => arg.array(t, 'tables').map((name, i) => arg.string(name, `tables[${i}]`)));
  arg.optional(o.batchSize, (n) => arg.positiveInt(n, 'batchSize'));
  arg.optional(o.pollMs, (ms) => arg.positive(ms, 'pollMs'));
}
