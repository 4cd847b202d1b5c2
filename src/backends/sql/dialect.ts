/**
 * What differs between the SQL eventfold writes for SQLite and for PostgreSQL, where the rest
 * of a statement is the same: how a parameter is written. Both take standard double-quoted
 * identifiers and `INSERT … ON CONFLICT … DO UPDATE`, so the builders in this folder need
 * nothing else.
 */
export interface SqlDialect {
  readonly name: 'sqlite' | 'postgres';
  /** The n-th parameter of a statement (1-based): `?n` in SQLite, `$n` in PostgreSQL. */
  param(n: number): string;
}

export const sqliteDialect: SqlDialect = { name: 'sqlite', param: (n) => `?${n}` };
export const postgresDialect: SqlDialect = { name: 'postgres', param: (n) => `$${n}` };

/** A double-quoted identifier, `"` doubled as SQL asks; callers check names before they get here. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export interface UpsertOptions {
  /** Columns that identify the row: the conflict target (a primary key or unique constraint). */
  readonly key: readonly string[];
  /** A condition on the stored row `t` and the new one `excluded`; when false the row is left as it is. */
  readonly where?: string;
}

/**
 * `INSERT INTO table AS t (columns) VALUES (params) ON CONFLICT (key) DO UPDATE SET c = excluded.c …`:
 * the row is written whole whether it is new or not. Parameters are numbered in column order.
 * `table` is an SQL name as written (qualified, quoted); columns are quoted here.
 */
export function upsertSql(d: SqlDialect, table: string, columns: readonly string[], options: UpsertOptions): string {
  const cols = columns.map(quoteIdent);
  const key = new Set(options.key);
  const set = columns.filter((c) => !key.has(c)).map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`);
  const onConflict =
    set.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${set.join(', ')}${options.where === undefined ? '' : ` WHERE ${options.where}`}`;
  return `INSERT INTO ${table} AS t (${cols.join(', ')}) VALUES (${columns.map((_, i) => d.param(i + 1)).join(', ')})
    ON CONFLICT (${options.key.map(quoteIdent).join(', ')}) ${onConflict}`;
}

/** `name` or `schema.name`, each part quoted: how projection handlers name their tables. */
export function quoteTable(table: string): string {
  return table.split('.').map(quoteIdent).join('.');
}
