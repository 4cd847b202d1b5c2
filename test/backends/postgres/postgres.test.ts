// PostgreSQL behaviour beyond the conformance suites: two OS processes racing, schema names,
// options passed through to node-postgres, LISTEN/NOTIFY wake-ups, reads beside a transaction
// that is still running.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresNames, postgres } from '../../../src/backends/postgres/index.ts';
import { createEventStore, DriverError, InvalidArgumentError } from '../../../src/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { POSTGRES_URL, uniqueName } from '../../services/env.ts';
import { conflictsLine, raceTwoProcesses } from '../../support/race.ts';
import { dropSchemas } from './schemas.ts';

const schemas: string[] = [];
after(() => dropSchemas(schemas));

function fresh(label: string): string {
  const schema = uniqueName(label);
  schemas.push(schema);
  return schema;
}

const open = (schema: string, options: Omit<Parameters<typeof postgres>[0] & object, 'schema'> = {}) =>
  createEventStore({
    driver: postgres({ connectionString: POSTGRES_URL, schema, ...options }),
    events: [Deposited, Withdrawn],
  });

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('postgres: several processes', () => {
  it('two OS processes racing on one stream: every version won exactly once, no gaps, no duplicates', async (t) => {
    const schema = fresh('pg-race');
    const setup = open(schema);
    await setup.streamVersion('account-shared'); // creates the tables before the workers start
    await setup.close();
    const rounds = 100;
    const race = await raceTwoProcesses(['postgres', POSTGRES_URL, schema], rounds);
    t.diagnostic(conflictsLine(race));

    const store = open(schema);
    const events = await collect(store.readStream('account-shared'));
    await store.close();
    assert.deepEqual(
      events.map((e) => e.version),
      Array.from({ length: 2 * rounds }, (_, i) => i + 1),
    );
    const byWorker = new Map<string, number>();
    for (const e of events) byWorker.set(e.metadata.worker!, (byWorker.get(e.metadata.worker!) ?? 0) + 1);
    assert.deepEqual([...byWorker.entries()].sort(), [
      ['a', rounds],
      ['b', rounds],
    ]);
  });
});

describe('postgres: schema names', () => {
  const hostile = ['', 'a"b', 'x"; DROP SCHEMA public CASCADE; --', 'a.b', 'a b', "a'b", '1abc', 'naïve', 'a\u0000b', 'x'.repeat(61), '-x'];

  it('refuses every name that is not a plain identifier, before connecting', () => {
    for (const schema of hostile) {
      assert.throws(() => postgres({ connectionString: POSTGRES_URL, schema }), InvalidArgumentError, JSON.stringify(schema));
    }
    assert.throws(() => postgres({ schema: 42 as never }), InvalidArgumentError);
    assert.throws(() => new PostgresNames('a"b'), InvalidArgumentError);
    // PostgreSQL reserves pg_…: refused here with a reason, not by CREATE SCHEMA at open.
    for (const schema of ['pg_orders', 'PG_orders'])
      assert.throws(() => postgres({ connectionString: POSTGRES_URL, schema }), { name: 'InvalidArgumentError', message: /pg_.*reserves/ });
  });

  it('keeps a name with capitals and dashes exactly, in its own schema', async () => {
    const schema = fresh('Pg-Names_X');
    const store = open(schema);
    await store.append('account-n', Deposited({ amount: 1 }));
    await store.close();
    const tables = await withClient(async (c) => {
      const { rows } = await c.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema],
      );
      return rows.map((r) => r.table_name);
    });
    assert.deepEqual(tables, ['checkpoints', 'dead_letters', 'events', 'group_entries', 'groups', 'schema_info', 'snapshots']);
  });

  it('refuses a schema written by a newer eventfold', async () => {
    const schema = fresh('pg-newer');
    const store = open(schema);
    await store.streamVersion('account-v');
    await store.close();
    await withClient((c) => c.query(`UPDATE ${new PostgresNames(schema).info} SET version = 99`));
    const again = open(schema);
    await assert.rejects(again.streamVersion('account-v'), (error: unknown) => {
      assert.ok(error instanceof DriverError);
      assert.match(error.message, /table version 99, newer than this eventfold/);
      return true;
    });
    await again.close();
  });
});

describe('postgres: connection options reach node-postgres', () => {
  const { hostname, port, pathname } = new URL(POSTGRES_URL);
  const where = { host: hostname, port: Number(port || 5432), database: pathname.slice(1), connectionTimeoutMillis: 5000 };

  it('ssl: asking for TLS from a server without it fails loudly', async () => {
    const store = createEventStore({ driver: postgres({ pool: { ...where, ssl: true }, schema: fresh('pg-tls') }), events: [Deposited] });
    await assert.rejects(store.streamVersion('account-t'), (error: unknown) => {
      assert.ok(error instanceof DriverError);
      assert.match(error.message, /does not support SSL/);
      return true;
    });
    await store.close();
  });

  it('user: the role given is the one that connects', async () => {
    const role = `ef_nobody_${Date.now().toString(36)}`;
    const store = createEventStore({ driver: postgres({ pool: { ...where, user: role }, schema: fresh('pg-auth') }), events: [Deposited] });
    await assert.rejects(store.streamVersion('account-u'), new RegExp(`role "${role}" does not exist`));
    await store.close();
    const ok = createEventStore({
      driver: postgres({ pool: { ...where, user: 'postgres' }, schema: fresh('pg-auth') }),
      events: [Deposited],
    });
    assert.equal(await ok.streamVersion('account-u'), 0);
    await ok.close();
  });
});

describe('postgres: live subscriptions on LISTEN/NOTIFY', () => {
  it('wakes on an append from another store (its own connections), long before any poll, also after its LISTEN connection was killed', async () => {
    const schema = fresh('pg-notify');
    // Polls every 60 s: only a notification can deliver the event within the test's time.
    const reader = open(schema, { pollMs: 60_000 });
    const writer = open(schema);
    const seen: number[] = [];
    const subscription = reader.subscribe({ group: 'live', pollIntervalMs: 60_000, handler: (e) => void seen.push(e.data.amount) });
    await subscription.caughtUp();
    const listening = () =>
      withClient(async (c) => {
        const { rows } = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE query = $1', [
          `LISTEN "${new PostgresNames(schema).channel}"`,
        ]);
        return rows.map((r) => r.pid);
      });
    const until = async (check: () => Promise<boolean> | boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await until(async () => (await listening()).length === 1, 'the LISTEN connection');

    const started = Date.now();
    await writer.append('account-l', Deposited({ amount: 1 }));
    await until(() => seen.length === 1, 'the first event');
    const first = Date.now() - started;

    const [pid] = await listening();
    await withClient((c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
    await until(async () => {
      const now = await listening();
      return now.length === 1 && now[0] !== pid;
    }, 'a new LISTEN connection');
    await writer.append('account-l', Deposited({ amount: 2 }));
    await until(() => seen.length === 2, 'the second event');
    await subscription.stop();
    await Promise.all([reader.close(), writer.close()]);
    assert.deepEqual(seen, [1, 2]);
    assert.ok(first < 5000, `woken in ${first} ms`);
  });
});

describe('postgres: reads beside a transaction still running', () => {
  it('waits for an older transaction before showing later events; past stableReadWaitMs shows only the stable prefix', async () => {
    const schema = fresh('pg-hold');
    const store = open(schema, { stableReadWaitMs: 3000 });
    await store.append('account-h', Deposited({ amount: 1 }));
    const older = new pg.Client({ connectionString: POSTGRES_URL });
    await older.connect();
    try {
      await older.query('BEGIN');
      await older.query('SELECT pg_current_xact_id()'); // takes a transaction id older than the next append
      await store.append('account-h', Deposited({ amount: 2 }));
      setTimeout(() => void older.query('COMMIT'), 300);
      const started = Date.now();
      assert.equal((await collect(store.readAll())).length, 2, 'read-your-writes once the older transaction ends');
      assert.ok(Date.now() - started >= 250, 'the read waited for it');

      const impatient = open(schema, { stableReadWaitMs: 50 });
      await older.query('BEGIN');
      await older.query('SELECT pg_current_xact_id()');
      await store.append('account-h', Deposited({ amount: 3 }));
      assert.deepEqual(
        (await collect(impatient.readAll())).map((e) => e.data.amount),
        [1, 2],
        'an event behind a running transaction is not shown yet',
      );
      assert.equal(await impatient.streamVersion('account-h'), 3, 'a stream read by version is not held back');
      await older.query('COMMIT');
      assert.deepEqual(
        (await collect(impatient.readAll())).map((e) => e.data.amount),
        [1, 2, 3],
      );
      await impatient.close();
    } finally {
      await older.end();
      await store.close();
    }
  });
});
