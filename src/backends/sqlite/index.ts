// `eventfold/sqlite`: the embedded store, on Node's built-in node:sqlite (no native addon).
import { arg } from '../../core/arguments.ts';
import { SqliteDriver, type SqliteDriverOptions } from './sqlite-driver.ts';

export { SqliteDriver };
export type { SqliteDriverOptions };

/** `sqlite({ path: 'events.db' })` or `sqlite()` for memory; pass as `createEventStore({ driver })`. */
export function sqlite(options?: SqliteDriverOptions): SqliteDriver {
  const o = arg.options(options, 'sqlite options');
  arg.optional(o.path, (p) => arg.string(p, 'path'));
  arg.optional(o.database, (d) => arg.object(d, 'database'));
  arg.optional(o.busyTimeoutMs, (ms) => arg.nonNegative(ms, 'busyTimeoutMs'));
  arg.optional(o.synchronous, (s) => arg.oneOf(s, 'synchronous', ['full', 'normal']));
  return new SqliteDriver(o);
}

export { sqlProjection } from './projection.ts';
export type { SqliteProjection, SqliteProjectionOptions, SqliteProjectionTx } from './projection.ts';
