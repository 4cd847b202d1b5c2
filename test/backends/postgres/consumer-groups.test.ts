// Consumer groups on a real PostgreSQL: the consumer-group suite (competing consumers, reset,
// a consumer killed mid-batch, dead letters and redrive, poison, undecodable payloads).
import assert from 'node:assert/strict';
import pg from 'pg';
import { PostgresDriver, postgres, type PostgresNames } from '../../../src/backends/postgres/index.ts';
import type { EventStore } from '../../../src/index.ts';
import { type GroupEvent, runConsumerGroupSuite, until } from '../../conformance/consumer-groups.ts';
import { POSTGRES_URL } from '../../services/env.ts';
import { runtimeOf } from '../../support/runtime.ts';
import { dropSchemas } from './schemas.ts';

/** The table names of the store's own driver. */
function namesOf(store: EventStore<GroupEvent>): PostgresNames {
  const driver = runtimeOf(store).driver;
  assert.ok(driver instanceof PostgresDriver, 'a postgres store');
  return driver.names;
}

async function one<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R | undefined> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows[0];
  } finally {
    await client.end();
  }
}

/**
 * Entries of the group not acknowledged: handed out (or redriven) and not yet acknowledged,
 * plus the events after its cursor. The group must exist, so a wrong table fails here, loudly.
 */
async function unacknowledged(store: EventStore<GroupEvent>, group: string): Promise<number> {
  const n = namesOf(store);
  const row = await one<{ cursor: string; pending: string; undelivered: string }>(
    `SELECT g.cursor,
            (SELECT count(*) FROM ${n.entries} x WHERE x.group_name = g.group_name) AS pending,
            (SELECT count(*) FROM ${n.events} e WHERE e.off > g.cursor) AS undelivered
       FROM ${n.groups} g WHERE g.group_name = $1`,
    [group],
  );
  assert.ok(row, `group ${group} exists`);
  return Number(row.pending) + Number(row.undelivered);
}

runConsumerGroupSuite({
  name: 'postgres',
  driver: (prefix) => postgres({ connectionString: POSTGRES_URL, schema: prefix }),
  cleanup: dropSchemas,
  worker: `postgres:${POSTGRES_URL}`,
  takeoverMs: 150,
  unacknowledged: (store, _prefix, group) => unacknowledged(store, group),
  // A consumer reads through the group's row, which exists once the first consumer started.
  ready: (store, _prefix, group) =>
    until(
      async () => (await one(`SELECT 1 FROM ${namesOf(store).groups} WHERE group_name = $1`, [group]).catch(() => undefined)) !== undefined,
      `group ${group} to exist`,
    ),
});
