// `eventfold/postgres`: PostgreSQL on node-postgres (`pg`, an optional peer dependency).
import { arg } from '../../core/arguments.ts';
import { assertSchemaName, PostgresNames } from './names.ts';
import { PostgresDriver, type PostgresDriverOptions } from './postgres-driver.ts';

export { PostgresDriver, PostgresNames };
export type { PostgresDriverOptions };

/** `postgres({ connectionString: 'postgres://user@host/db', schema: 'orders' })`; pass as `createEventStore({ driver })`. */
export function postgres(options?: PostgresDriverOptions): PostgresDriver {
  const o = arg.options(options, 'postgres options');
  arg.optional(o.connectionString, (s) => arg.string(s, 'connectionString'));
  arg.optional(o.pool, (p) => arg.object(p, 'pool'));
  arg.optional(o.schema, assertSchemaName);
  arg.optional(o.stableReadWaitMs, (ms) => arg.nonNegative(ms, 'stableReadWaitMs'));
  arg.optional(o.pollMs, (ms) => arg.positive(ms, 'pollMs'));
  return new PostgresDriver(o);
}

export { sqlProjection } from './projection.ts';
export type { PostgresProjection, PostgresProjectionOptions, PostgresProjectionTx } from './projection.ts';
