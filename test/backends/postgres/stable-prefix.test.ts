// Gap-free reads under concurrent appends. An offset is handed out when a row is inserted, not
// when its transaction commits, so a reader that takes every committed row can pass the event
// of a slow transaction and never see it. Here 16 writers on connections of their own commit
// after random delays (a deferred trigger sleeps at commit) while a subscription runs: it must
// see every event exactly once, in offset order.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresNames, postgres } from '../../../src/backends/postgres/index.ts';
import { createEventStore } from '../../../src/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { POSTGRES_URL, uniqueName } from '../../services/env.ts';
import { dropSchemas } from './schemas.ts';

const WRITERS = 16;
const APPENDS = 20;
const schemas: string[] = [];
after(() => dropSchemas(schemas));

const open = (schema: string, options: { pollMs?: number } = {}) =>
  createEventStore({ driver: postgres({ connectionString: POSTGRES_URL, schema, ...options }), events: [Deposited, Withdrawn] });

/** Makes every commit that inserted events sleep 0-40 ms first: the row and its offset exist, the commit is late. */
async function slowCommits(n: PostgresNames): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`CREATE FUNCTION ${n.quotedSchema}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(random() * 0.04); RETURN NULL; END $$`);
    await client.query(`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ${n.events} DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION ${n.quotedSchema}.slow_commit()`);
  } finally {
    await client.end();
  }
}

describe('postgres: a stable prefix under concurrent appends', () => {
  it('16 writers committing out of order: a live subscription sees every event exactly once, in offset order', async () => {
    const schema = uniqueName('pg-gaps');
    schemas.push(schema);
    const reader = open(schema);
    await reader.streamVersion('account-setup'); // creates the tables
    await slowCommits(new PostgresNames(schema));

    const seen = new Map<string, number>();
    const offsets: bigint[] = [];
    const subscription = reader.subscribe({
      group: 'gaps',
      pollIntervalMs: 2,
      batchSize: 7,
      handler: (e) => {
        seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
        offsets.push(e.position.offset);
      },
    });
    const writers = Array.from({ length: WRITERS }, () => open(schema));
    const appended: string[] = [];
    await Promise.all(
      writers.map(async (store, w) => {
        for (let i = 0; i < APPENDS; i++) {
          const event = Deposited({ amount: i + 1 });
          appended.push(event.id);
          await store.append(`account-w${w}`, event);
        }
      }),
    );
    await subscription.caughtUp();
    await subscription.stop();
    await Promise.all([...writers, reader].map((s) => s.close()));

    assert.equal(appended.length, WRITERS * APPENDS);
    const missed = appended.filter((id) => !seen.has(id));
    assert.deepEqual(missed, [], `the subscription missed ${missed.length} of ${appended.length} events`);
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      'no event seen twice',
    );
    assert.equal(seen.size, appended.length);
    for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i]! > offsets[i - 1]!, 'offsets grow');
  });
});
