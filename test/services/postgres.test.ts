import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { POSTGRES_URL, uniqueName } from './env.ts';

let client: pg.Client;
const table = uniqueName('smoke_events').replaceAll('-', '_');

before(async () => {
  client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  await client.query(
    `create table ${table} (stream text not null, version int not null, body jsonb not null, primary key (stream, version))`,
  );
});

after(async () => {
  await client?.query(`drop table if exists ${table}`).catch(() => undefined);
  await client?.end();
});

test('postgres: select 1', async () => {
  const r = await client.query<{ one: number }>('select 1 as one');
  assert.equal(r.rows[0]?.one, 1);
});

test('postgres: a committed transaction is visible, a rolled back one is not', async () => {
  await client.query('begin');
  await client.query(`insert into ${table} values ($1, 1, $2), ($1, 2, $3)`, ['order-1', { type: 'Placed' }, { type: 'Paid' }]);
  await client.query('commit');

  await client.query('begin');
  await client.query(`insert into ${table} values ($1, 3, $2)`, ['order-1', { type: 'Cancelled' }]);
  await client.query('rollback');

  const r = await client.query<{ version: number; type: string }>(
    `select version, body->>'type' as type from ${table} where stream = $1 order by version`,
    ['order-1'],
  );
  assert.deepEqual(r.rows, [
    { version: 1, type: 'Placed' },
    { version: 2, type: 'Paid' },
  ]);
});

test('postgres: a duplicate version aborts the transaction', async () => {
  await client.query('begin');
  await assert.rejects(client.query(`insert into ${table} values ('order-1', 2, '{}')`), /duplicate key/);
  await client.query('rollback');
  const r = await client.query<{ n: string }>(`select count(*) as n from ${table}`);
  assert.equal(r.rows[0]?.n, '2');
});
