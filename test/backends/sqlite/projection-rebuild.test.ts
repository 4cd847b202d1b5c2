// Rebuilding an SQL projection without downtime: version 2 is built from the start into its
// own tables while version 1 serves (and keeps up with a writer); when version 2 has caught up,
// one transaction points the view at it, and version 1 stops by itself. Handlers see 'rebuild'
// before the switch and 'live' after.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { sqlite, sqlProjection } from '../../../src/backends/sqlite/index.ts';
import { createEventStore, type EventOf } from '../../../src/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'ef-rebuild-'));
after(() => rmSync(dir, { recursive: true, force: true }));
type AccountEvent = EventOf<typeof Deposited | typeof Withdrawn>;

const until = async (check: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('sqlProjection: rebuild into new tables, then switch', () => {
  it('v2 builds while v1 serves; the view switches atomically once v2 caught up; v1 stops; modes rebuild → live', async () => {
    const store = createEventStore({ driver: sqlite({ path: join(dir, 'events.db') }), events: [Deposited, Withdrawn] });
    for (let i = 0; i < 300; i++) await store.append(`account-${i % 5}`, Deposited({ amount: 1 }));
    const db = new DatabaseSync(join(dir, 'read.db'));
    // v1: balance; v2: balance and a count of deposits (a changed read model).
    db.exec(`CREATE TABLE balances_v1 (stream_id TEXT PRIMARY KEY, balance INTEGER NOT NULL, version INTEGER NOT NULL);
             CREATE TABLE balances_v2 (stream_id TEXT PRIMARY KEY, balance INTEGER NOT NULL, deposits INTEGER NOT NULL, version INTEGER NOT NULL)`);
    const modes: Record<number, string[]> = { 1: [], 2: [] };
    const projection = (version: 1 | 2) =>
      sqlProjection<AccountEvent>(store, {
        database: db,
        name: 'balances',
        version,
        tables: ['balances'],
        batchSize: 25,
        pollMs: 5,
        handle: async (e, tx, ctx) => {
          if (modes[version]!.at(-1) !== ctx.mode) modes[version]!.push(ctx.mode);
          const [row] = tx.all<{ balance: number; deposits?: number }>(
            `SELECT * FROM ${ctx.table('balances')} WHERE stream_id = ?`,
            e.streamId,
          );
          const delta = e.type === 'Deposited' ? e.data.amount : -e.data.amount;
          const next = { stream_id: e.streamId, balance: (row?.balance ?? 0) + delta, version: e.version };
          tx.upsertVersioned(
            ctx.table('balances'),
            version === 1 ? next : { ...next, deposits: (row?.deposits ?? 0) + (delta > 0 ? 1 : 0) },
            { key: ['stream_id'] },
          );
          if (version === 2) await new Promise((r) => setTimeout(r, 0)); // v2's build takes a while
        },
      });
    const total = () => (db.prepare('SELECT coalesce(sum(balance), 0) AS s FROM balances').get() as { s: number }).s;

    const v1 = projection(1);
    await v1.caughtUp();
    assert.equal(total(), 300);
    assert.deepEqual(modes[1], ['rebuild'], 'v1 built from nothing, then switched');
    assert.equal(v1.mode, 'live');

    const v2 = projection(2);
    let appended = 300;
    const readsDuringBuild: number[] = [];
    const writer = (async () => {
      for (let i = 0; i < 100; i++) {
        await store.append(`account-${i % 5}`, Deposited({ amount: 1 }));
        appended++;
        if (v2.mode === 'rebuild') readsDuringBuild.push(total());
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await writer;
    await until(() => v2.mode === 'live', 'v2 to switch');
    await v2.caughtUp();
    await v1.done; // stopped by itself: a newer version is active
    for (let i = 0; i < 5; i++) await store.append(`account-${i}`, Deposited({ amount: 1 }));
    appended += 5;
    await until(() => total() === appended, 'v2 to handle events live');
    assert.ok(readsDuringBuild.length > 0 && readsDuringBuild.every((s) => s > 0), 'readers were served by v1 during the build');
    assert.deepEqual(modes[2], ['rebuild', 'live']);
    assert.equal(total(), appended, 'the view shows v2, caught up');
    const columns = (db.prepare('SELECT * FROM balances LIMIT 1').get() as object) ?? {};
    assert.ok('deposits' in columns, 'the view is v2');
    assert.equal((db.prepare('SELECT sum(deposits) AS d FROM balances').get() as { d: number }).d, appended);
    await v2.stop();
    db.close();
    await store.close();
  });
});
