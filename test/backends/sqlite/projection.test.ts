// SQL projections on SQLite: the handler's rows and the projection's position commit in one
// transaction. The projector process is SIGKILLed 5 times at random moments while a writer
// appends; the read model then equals a fold over readAll, each event applied exactly once.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { sqlite } from '../../../src/backends/sqlite/index.ts';
import { createEventStore, InvalidArgumentError } from '../../../src/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { balanceProjection } from '../../support/balance-projection.ts';

const dir = mkdtempSync(join(tmpdir(), 'ef-projection-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const worker = new URL('../../support/projector-worker.ts', import.meta.url).pathname;

const open = (path: string) => createEventStore({ driver: sqlite({ path, busyTimeoutMs: 20_000 }), events: [Deposited, Withdrawn] });

function startProjector(events: string, readModel: string): { child: ChildProcess; started: Promise<void> } {
  const child = spawn(process.execPath, [worker, events, readModel], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('started') && resolve());
    child.on('exit', (code, signal) => reject(new Error(`projector exited early (${code ?? signal})`)));
  });
  return { child, started };
}

describe('sqlProjection (SQLite read model)', () => {
  it('projector SIGKILLed 5 times while a writer appends: the read model equals a fold over readAll, 0 lost, 0 applied twice', async (t) => {
    const events = join(dir, 'events.db');
    const readModel = join(dir, 'read-model.db');
    const store = open(events);
    await store.streamVersion('account-0'); // creates the tables before the projector opens the file

    let writing = true;
    let appended = 0;
    const writer = (async () => {
      while (writing || appended < 600) {
        const account = `account-${appended % 10}`;
        await store.append(account, appended % 3 === 2 ? Withdrawn({ amount: 1 }) : Deposited({ amount: 1 + (appended % 7) }));
        appended++;
        await new Promise((r) => setTimeout(r, 1));
      }
    })();

    const kills: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { child, started } = startProjector(events, readModel);
      await started;
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
      child.kill('SIGKILL');
      await exited;
      const db = new DatabaseSync(readModel);
      kills.push(Number((db.prepare('SELECT count(*) AS n FROM applied').get() as { n: number }).n));
      db.close();
    }
    writing = false;
    await writer;
    t.diagnostic(`events applied at each kill: ${kills.join(', ')} (of ${appended} appended)`);

    const database = new DatabaseSync(readModel);
    const projection = balanceProjection(store, database);
    await projection.caughtUp();
    await projection.stop();

    const fold = new Map<string, { balance: number; version: number }>();
    const ids: string[] = [];
    for await (const e of store.readAll()) {
      const b = fold.get(e.streamId) ?? { balance: 0, version: 0 };
      fold.set(e.streamId, { balance: b.balance + (e.type === 'Deposited' ? e.data.amount : -e.data.amount), version: e.version });
      ids.push(e.id);
    }
    const balances = database.prepare('SELECT stream_id, balance, version FROM balances ORDER BY stream_id').all() as {
      stream_id: string;
      balance: number;
      version: number;
    }[];
    const applied = database.prepare('SELECT id, times FROM applied').all() as { id: string; times: number }[];
    database.close();
    await store.close();

    assert.equal(ids.length, appended);
    assert.ok(kills.some((n) => n > 0) && kills.some((n) => n < appended), 'the kills landed while there was work to do');
    assert.deepEqual(
      applied.filter((a) => a.times !== 1),
      [],
      'no event applied twice',
    );
    assert.deepEqual(new Set(applied.map((a) => a.id)), new Set(ids), 'no event lost');
    assert.deepEqual(
      balances.map((b) => [b.stream_id, b.balance, b.version]),
      [...fold.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([s, b]) => [s, b.balance, b.version]),
    );
  });

  it('upsertVersioned: an older or equal version changes nothing', async () => {
    const store = open(join(dir, 'versioned.db'));
    await store.append('account-v', [Deposited({ amount: 5 }), Deposited({ amount: 7 })]);
    const database = new DatabaseSync(':memory:');
    database.exec('CREATE TABLE t (k TEXT PRIMARY KEY, value INTEGER NOT NULL, version INTEGER NOT NULL)');
    const written: boolean[] = [];
    const projection = (await import('../../../src/backends/sqlite/index.ts')).sqlProjection(store, {
      database,
      name: 'versioned',
      handle: (e, tx) => {
        written.push(tx.upsertVersioned('t', { k: 'a', value: e.data.amount, version: e.version }, { key: ['k'] }));
        written.push(tx.upsertVersioned('t', { k: 'a', value: 999, version: e.version - 1 }, { key: ['k'] }));
        written.push(tx.upsertVersioned('t', { k: 'a', value: 998, version: e.version }, { key: ['k'] }));
      },
    });
    await projection.caughtUp();
    await projection.stop();
    assert.deepEqual(written, [true, false, false, true, false, false]);
    assert.deepEqual({ ...(database.prepare('SELECT value, version FROM t').get() as object) }, { value: 7, version: 2 });
    assert.deepEqual(
      (await projection.position()).map((p) => p.partition),
      [0],
    );
    await store.close();
  });

  it('refuses options without a database, name or handler', async () => {
    const store = open(join(dir, 'args.db'));
    const { sqlProjection } = await import('../../../src/backends/sqlite/index.ts');
    assert.throws(() => sqlProjection(store, { name: 'x', handle: () => {} } as never), InvalidArgumentError);
    assert.throws(() => sqlProjection(store, { database: new DatabaseSync(':memory:'), handle: () => {} } as never), InvalidArgumentError);
    assert.throws(() => sqlProjection(store, { database: new DatabaseSync(':memory:'), name: 'x' } as never), InvalidArgumentError);
    await store.close();
  });
});
