// `eventfold/sqlite`: the embedded store, on Node's built-in node:sqlite (no native addon).
import { SqliteDriver, type SqliteDriverOptions } from './sqlite-driver.ts';

export { SqliteDriver };
export type { SqliteDriverOptions };

/** `sqlite({ path: 'events.db' })` or `sqlite()` for memory; pass as `createEventStore({ driver })`. */
export function sqlite(options: SqliteDriverOptions = {}): SqliteDriver {
  return new SqliteDriver(options);
}
