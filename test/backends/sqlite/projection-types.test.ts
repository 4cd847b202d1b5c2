// Typed rows in SQL projection handlers: `upsertVersioned`'s key and version columns must be
// columns of the row (a typo is a compile error: tsc checks the @ts-expect-error lines, and
// fails on any that stops being an error), and rows read back carry their declared type.
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { it } from 'node:test';
import { sqlite, sqlProjection, type SqliteProjectionTx } from '../../../src/backends/sqlite/index.ts';
import type { PostgresProjectionTx } from '../../../src/backends/postgres/index.ts';
import { createEventStore, type EventOf } from '../../../src/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';

interface BalanceRow {
  readonly stream_id: string;
  readonly cents: number;
  readonly version: number;
}

// Compile-time checks only: never called.
export function typeChecks(tx: SqliteProjectionTx, pg: PostgresProjectionTx): void {
  const row = { stream_id: 'a', cents: 1, version: 1 } satisfies BalanceRow;
  tx.upsertVersioned('balances', row, { key: ['stream_id'] });
  tx.upsertVersioned('balances', { stream_id: 'a', cents: 1, seq: 3 }, { key: ['stream_id'], version: 'seq' });
  // @ts-expect-error a key column the row does not have
  tx.upsertVersioned('balances', row, { key: ['streamId'] });
  // @ts-expect-error a version column the row does not have
  tx.upsertVersioned('balances', row, { key: ['stream_id'], version: 'seq' });
  // @ts-expect-error no `version` column, and no other named
  tx.upsertVersioned('balances', { stream_id: 'a', cents: 1 }, { key: ['stream_id'] });
  // @ts-expect-error a value SQLite cannot bind
  tx.upsertVersioned('balances', { stream_id: 'a', version: 1, at: new Date() }, { key: ['stream_id'] });
  void pg.upsertVersioned('balances', row, { key: ['stream_id'] });
  // @ts-expect-error the same on PostgreSQL
  void pg.upsertVersioned('balances', row, { key: ['id'] });
  const rows: BalanceRow[] = tx.all<BalanceRow>('SELECT * FROM balances');
  void rows;
}

it('a typed row goes through upsertVersioned and comes back with its type', async () => {
  const store = createEventStore({ driver: sqlite(), events: [Deposited, Withdrawn] });
  await store.append('account-1', [Deposited({ amount: 5 }), Deposited({ amount: 2 })]);
  const db = new DatabaseSync(':memory:');
  db.exec('CREATE TABLE balances (stream_id TEXT PRIMARY KEY, cents INTEGER NOT NULL, version INTEGER NOT NULL)');
  const projection = sqlProjection<EventOf<typeof Deposited | typeof Withdrawn>>(store, {
    database: db,
    name: 'typed',
    handle: (event, tx) => {
      const [current] = tx.all<BalanceRow>('SELECT * FROM balances WHERE stream_id = ?', event.streamId);
      const amount = event.type === 'Deposited' ? event.data.amount : -event.data.amount;
      const next: BalanceRow = { stream_id: event.streamId, cents: (current?.cents ?? 0) + amount, version: event.version };
      tx.upsertVersioned('balances', next, { key: ['stream_id'] });
    },
  });
  await projection.caughtUp();
  await projection.stop();
  assert.deepEqual({ ...(db.prepare('SELECT * FROM balances').get() as object) }, { stream_id: 'account-1', cents: 7, version: 2 });
  await store.close();
});
