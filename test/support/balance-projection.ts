// The read model of the SQL projection tests: a balance per account, and how many times each
// event was applied (so an event applied twice shows).
import { setImmediate } from 'node:timers/promises';
import type { DatabaseSync } from 'node:sqlite';
import { type SqliteProjection, sqlProjection } from '../../src/backends/sqlite/index.ts';
import { type PostgresProjection, sqlProjection as pgProjection } from '../../src/backends/postgres/index.ts';
import type { EventOf, EventStore } from '../../src/index.ts';
import type { Deposited, Withdrawn } from '../conformance/fixtures.ts';

type AccountEvent = EventOf<typeof Deposited | typeof Withdrawn>;

export function balanceProjection(
  store: EventStore<AccountEvent>,
  database: DatabaseSync,
  options: { slow?: boolean } = {},
): SqliteProjection<AccountEvent> {
  database.exec(`CREATE TABLE IF NOT EXISTS balances (stream_id TEXT PRIMARY KEY, balance INTEGER NOT NULL, version INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS applied (id TEXT PRIMARY KEY, times INTEGER NOT NULL)`);
  return sqlProjection(store, {
    database,
    name: 'balances',
    batchSize: 20,
    handle: async (e, tx) => {
      tx.run('INSERT INTO applied (id, times) VALUES (?, 1) ON CONFLICT (id) DO UPDATE SET times = times + 1', e.id);
      const [row] = tx.all<{ balance: number }>('SELECT balance FROM balances WHERE stream_id = ?', e.streamId);
      const delta = e.type === 'Deposited' ? e.data.amount : -e.data.amount;
      tx.upsertVersioned(
        'balances',
        { stream_id: e.streamId, balance: (row?.balance ?? 0) + delta, version: e.version },
        { key: ['stream_id'] },
      );
      if (options.slow) await setImmediate(); // a kill lands inside the batch's transaction more often
    },
  });
}

/** The same read model in PostgreSQL, in `schema` (the tables are created by `createPgBalances`). */
export function pgBalanceProjection(
  store: EventStore<AccountEvent>,
  connectionString: string,
  schema: string,
  options: { slow?: boolean } = {},
): PostgresProjection<AccountEvent> {
  const q = (t: string) => `"${schema}"."${t}"`;
  return pgProjection(store, {
    connectionString,
    schema,
    name: 'balances',
    batchSize: 20,
    handle: async (e, tx) => {
      await tx.query(
        `INSERT INTO ${q('applied')} (id, times) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET times = ${q('applied')}.times + 1`,
        [e.id],
      );
      const [row] = await tx.query<{ balance: number }>(`SELECT balance FROM ${q('balances')} WHERE stream_id = $1`, [e.streamId]);
      const delta = e.type === 'Deposited' ? e.data.amount : -e.data.amount;
      await tx.upsertVersioned(
        `${schema}.balances`,
        { stream_id: e.streamId, balance: (row?.balance ?? 0) + delta, version: e.version },
        { key: ['stream_id'] },
      );
      if (options.slow) await setImmediate();
    },
  });
}

export const PG_BALANCE_TABLES = (schema: string) => `CREATE SCHEMA IF NOT EXISTS "${schema}";
  CREATE TABLE "${schema}".balances (stream_id text PRIMARY KEY, balance integer NOT NULL, version integer NOT NULL);
  CREATE TABLE "${schema}".applied (id text PRIMARY KEY, times integer NOT NULL);
  CREATE TABLE "${schema}".ef_projection_positions (name text PRIMARY KEY, positions text NOT NULL)`;
