// Rebuilding a PostgreSQL projection without downtime, on a PostgreSQL event store: version 2 is
// built from the start into its own tables while version 1 serves (and keeps up with a writer);
// when version 2 has caught up, one transaction points the view at it, and version 1 stops by
// itself. Readers on another connection always see a whole read model: the old view or the
// new one, never neither and never a half-built one.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { postgres, sqlProjection } from '../../../src/backends/postgres/index.ts';
import { createEventStore, type EventOf } from '../../../src/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { POSTGRES_URL, uniqueName } from '../../services/env.ts';
import { dropSchemas } from './schemas.ts';

type AccountEvent = EventOf<typeof Deposited | typeof Withdrawn>;
// Plain identifiers (no quoting needed in the handler's SQL): the read model's schema.
const schema = uniqueName('rebuild').replaceAll('-', '_');
const storeSchema = `${schema}_events`;
after(() => dropSchemas([schema, storeSchema]));

const until = async (check: () => Promise<boolean>, what: string): Promise<void> => {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('sqlProjection (PostgreSQL): rebuild into new tables, then switch', () => {
  it('v2 builds while v1 serves; readers see a whole model throughout; the view switches once v2 caught up; v1 stops', async () => {
    const store = createEventStore({
      driver: postgres({ connectionString: POSTGRES_URL, schema: storeSchema }),
      events: [Deposited, Withdrawn],
    });
    for (let i = 0; i < 300; i++) await store.append(`account-${i % 5}`, Deposited({ amount: 1 }));
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 4 });
    await pool.query(`CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}.balances_v1 (stream_id text PRIMARY KEY, balance integer NOT NULL, version integer NOT NULL);
      CREATE TABLE ${schema}.balances_v2 (stream_id text PRIMARY KEY, balance integer NOT NULL, deposits integer NOT NULL, version integer NOT NULL)`);
    const modes: Record<number, string[]> = { 1: [], 2: [] };
    const projection = (version: 1 | 2) =>
      sqlProjection<AccountEvent>(store, {
        pool,
        schema,
        name: 'balances',
        version,
        tables: [`${schema}.balances`],
        batchSize: 25,
        pollMs: 5,
        handle: async (e, tx, ctx) => {
          if (modes[version]!.at(-1) !== ctx.mode) modes[version]!.push(ctx.mode);
          const table = ctx.table(`${schema}.balances`);
          const [row] = await tx.query<{ balance: number; deposits?: number }>(`SELECT * FROM ${table} WHERE stream_id = $1`, [e.streamId]);
          const delta = e.type === 'Deposited' ? e.data.amount : -e.data.amount;
          const next = { stream_id: e.streamId, balance: (row?.balance ?? 0) + delta, version: e.version };
          await tx.upsertVersioned(table, version === 1 ? next : { ...next, deposits: (row?.deposits ?? 0) + (delta > 0 ? 1 : 0) }, {
            key: ['stream_id'],
          });
          if (version === 2) await new Promise((r) => setTimeout(r, 1)); // v2's build takes a while
        },
      });
    // A reader on its own connection, as an application would read the model.
    const total = async () =>
      Number((await pool.query<{ s: string }>(`SELECT coalesce(sum(balance), 0) AS s FROM ${schema}.balances`)).rows[0]!.s);

    const v1 = projection(1);
    await v1.caughtUp();
    assert.equal(await total(), 300);
    assert.deepEqual(modes[1], ['rebuild'], 'v1 built from nothing, then switched');
    assert.equal(v1.mode, 'live');

    const v2 = projection(2);
    let appended = 300;
    const readsDuringBuild: number[] = [];
    for (let i = 0; i < 100; i++) {
      await store.append(`account-${i % 5}`, Deposited({ amount: 1 }));
      appended++;
      if (v2.mode === 'rebuild') readsDuringBuild.push(await total());
    }
    await until(async () => v2.mode === 'live', 'v2 to switch');
    await v2.caughtUp();
    await v1.done; // stopped by itself: a newer version is active
    for (let i = 0; i < 5; i++) await store.append(`account-${i}`, Deposited({ amount: 1 }));
    appended += 5;
    await until(async () => (await total()) === appended, 'v2 to handle events live');
    assert.ok(readsDuringBuild.length > 0, 'some reads happened while v2 was building');
    // v1 keeps up with the writer meanwhile: a read never shows less than the 300 events v1 had.
    assert.ok(
      readsDuringBuild.every((s) => s >= 300),
      `readers were served by a whole v1 during the build: ${readsDuringBuild.slice(0, 10).join(', ')}…`,
    );
    assert.deepEqual(modes[2], ['rebuild', 'live']);
    const { rows } = await pool.query<{ deposits: string }>(`SELECT sum(deposits) AS deposits FROM ${schema}.balances`);
    assert.equal(Number(rows[0]!.deposits), appended, 'the view is v2 (it has the deposits column), caught up');
    const active = await pool.query<{ version: number }>(`SELECT version FROM ${schema}.ef_projection_active WHERE name = 'balances'`);
    assert.equal(active.rows[0]?.version, 2, 'v2 is recorded as the active version');
    await v2.stop();
    await pool.end();
    await store.close();
  });
});
