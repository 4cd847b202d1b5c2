// SQL projections into PostgreSQL, fed here by an SQLite event store (any backend will do):
// the handler's rows and the projection's position commit in one transaction. The projector
// process is SIGKILLed 5 times at random moments while a writer appends; the read model then
// equals a fold over readAll, each event applied exactly once.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { sqlProjection } from '../../../src/backends/postgres/index.ts';
import { sqlite } from '../../../src/backends/sqlite/index.ts';
import { createEventStore, InvalidArgumentError } from '../../../src/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { POSTGRES_URL, uniqueName } from '../../services/env.ts';
import { PG_BALANCE_TABLES, pgBalanceProjection } from '../../support/balance-projection.ts';
import { dropSchemas } from './schemas.ts';

const dir = mkdtempSync(join(tmpdir(), 'ef-pg-projection-'));
const schemas: string[] = [];
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await dropSchemas(schemas);
});
const worker = new URL('../../support/projector-worker.ts', import.meta.url).pathname;
const open = (path: string) => createEventStore({ driver: sqlite({ path, busyTimeoutMs: 20_000 }), events: [Deposited, Withdrawn] });

async function sql<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

function startProjector(events: string, schema: string): { child: ChildProcess; started: Promise<void> } {
  const child = spawn(process.execPath, [worker, events, 'postgres', POSTGRES_URL, schema], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('started') && resolve());
    child.on('exit', (code, signal) => reject(new Error(`projector exited early (${code ?? signal})`)));
  });
  return { child, started };
}

describe('sqlProjection (PostgreSQL read model)', () => {
  it('projector SIGKILLed 5 times while a writer appends: the read model equals a fold over readAll, 0 lost, 0 applied twice', async (t) => {
    const schema = uniqueName('pg-proj');
    schemas.push(schema);
    await sql(PG_BALANCE_TABLES(schema));
    const events = join(dir, 'events.db');
    const store = open(events);
    await store.streamVersion('account-0');

    let writing = true;
    let appended = 0;
    const writer = (async () => {
      while (writing || appended < 600) {
        await store.append(
          `account-${appended % 10}`,
          appended % 3 === 2 ? Withdrawn({ amount: 1 }) : Deposited({ amount: 1 + (appended % 7) }),
        );
        appended++;
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    const count = async () => Number((await sql<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".applied`))[0]!.n);
    const kills: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { child, started } = startProjector(events, schema);
      await started;
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 400));
      child.kill('SIGKILL');
      await exited;
      kills.push(await count());
    }
    writing = false;
    await writer;
    t.diagnostic(`events applied at each kill: ${kills.join(', ')} (of ${appended} appended)`);

    const projection = pgBalanceProjection(store, POSTGRES_URL, schema);
    await projection.caughtUp();
    await projection.stop();

    const fold = new Map<string, { balance: number; version: number }>();
    const ids: string[] = [];
    for await (const e of store.readAll()) {
      const b = fold.get(e.streamId) ?? { balance: 0, version: 0 };
      fold.set(e.streamId, { balance: b.balance + (e.type === 'Deposited' ? e.data.amount : -e.data.amount), version: e.version });
      ids.push(e.id);
    }
    await store.close();
    const balances = await sql<{ stream_id: string; balance: number; version: number }>(
      `SELECT stream_id, balance, version FROM "${schema}".balances ORDER BY stream_id COLLATE "C"`,
    );
    const applied = await sql<{ id: string; times: number }>(`SELECT id, times FROM "${schema}".applied`);

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

  it('upsertVersioned: an older or equal version changes nothing; options are checked', async () => {
    const schema = uniqueName('pg-proj-v');
    schemas.push(schema);
    await sql(
      `CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".t (k text PRIMARY KEY, value integer NOT NULL, version integer NOT NULL)`,
    );
    const store = open(join(dir, 'versioned.db'));
    await store.append('account-v', [Deposited({ amount: 5 }), Deposited({ amount: 7 })]);
    const written: boolean[] = [];
    const projection = sqlProjection(store, {
      connectionString: POSTGRES_URL,
      schema,
      name: 'versioned',
      handle: async (e, tx) => {
        written.push(await tx.upsertVersioned(`${schema}.t`, { k: 'a', value: e.data.amount, version: e.version }, { key: ['k'] }));
        written.push(await tx.upsertVersioned(`${schema}.t`, { k: 'a', value: 999, version: e.version - 1 }, { key: ['k'] }));
        written.push(await tx.upsertVersioned(`${schema}.t`, { k: 'a', value: 998, version: e.version }, { key: ['k'] }));
      },
    });
    await projection.caughtUp();
    assert.deepEqual(
      (await projection.position()).map((p) => p.partition),
      [0],
    );
    await projection.stop();
    assert.deepEqual(written, [true, false, false, true, false, false]);
    assert.deepEqual(await sql(`SELECT value, version FROM "${schema}".t`), [{ value: 7, version: 2 }]);
    assert.throws(() => sqlProjection(store, { name: 'x', handle: () => {} }), InvalidArgumentError);
    assert.throws(
      () => sqlProjection(store, { connectionString: POSTGRES_URL, schema: 'a"b', name: 'x', handle: () => {} }),
      InvalidArgumentError,
    );
    await store.close();
  });
});
