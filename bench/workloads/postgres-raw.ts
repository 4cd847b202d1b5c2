// The raw baseline on PostgreSQL: the plain node-postgres client on one connection, a table with
// the same unique constraints as eventfold's (stream + version, event id), and the fewest
// statements a hand-written store would use: one INSERT per append, no read before it.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { evolveBench, initialBenchState, type BenchEventData, type BenchTarget, type CatchUp, type LoadResult } from '../target.ts';
import { dropSchema, postgresUrl, schemaFor } from './postgres-common.ts';

const TYPE = 'Deposited';

export function rawPostgres(): BenchTarget {
  let client: pg.Client | undefined;
  let table = '';
  const c = (): pg.Client => {
    if (!client) throw new Error('raw PostgreSQL target is not open');
    return client;
  };

  return {
    name: 'raw',
    snapshots: false,
    notes: [
      'raw: the plain node-postgres client (`new pg.Client({ connectionString })`, parameterized queries), one connection',
      'raw: table `events (pos bigint identity PRIMARY KEY, id uuid UNIQUE, stream_id text, version integer, type text, data text, UNIQUE (stream_id, version))`; ' +
        'a batch-1 append is one `INSERT … VALUES ($1…$5)`, a 100-event append one `INSERT … SELECT FROM unnest($1::uuid[], …)` (one statement, atomic). ' +
        'Versions are expected + 1…n: the unique constraint turns a stale expected version into an error, but nothing reads the stream first (a version gap would pass), and it stores no metadata or time',
      'raw: loads are one `SELECT data FROM events WHERE stream_id = $1 ORDER BY version` + JSON.parse + fold (eventfold reads pages of 500); raw has no snapshots, so both load rows are the same full fold',
      'raw: catch-up is `SELECT … WHERE pos > $1 ORDER BY pos LIMIT 100` until every event was read, JSON.parse of each payload, no checkpoint; identity order is not commit order with concurrent writers (eventfold reads a stable prefix instead)',
    ],
    async open(dir) {
      const schema = schemaFor(dir, 'raw');
      table = `"${schema}".events`;
      client = new pg.Client({ connectionString: postgresUrl(), connectionTimeoutMillis: 10_000 });
      client.on('error', () => undefined);
      await client.connect();
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}";
        CREATE TABLE IF NOT EXISTS ${table} (
          pos       bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          id        uuid    NOT NULL UNIQUE,
          stream_id text    NOT NULL,
          version   integer NOT NULL,
          type      text    NOT NULL,
          data      text    NOT NULL,
          UNIQUE (stream_id, version)
        )`);
    },
    async append(streamId, events: readonly BenchEventData[], expectedVersion) {
      if (events.length === 1) {
        await c().query(`INSERT INTO ${table} (id, stream_id, version, type, data) VALUES ($1, $2, $3, $4, $5)`, [
          randomUUID(),
          streamId,
          expectedVersion + 1,
          TYPE,
          JSON.stringify(events[0]),
        ]);
      } else {
        await c().query(
          `INSERT INTO ${table} (id, stream_id, version, type, data)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::text[], $5::text[])`,
          [
            events.map(() => randomUUID()),
            events.map(() => streamId),
            events.map((_, i) => expectedVersion + i + 1),
            events.map(() => TYPE),
            events.map((data) => JSON.stringify(data)),
          ],
        );
      }
      return expectedVersion + events.length;
    },
    async load(streamId): Promise<LoadResult> {
      const { rows } = await c().query<{ data: string }>(`SELECT data FROM ${table} WHERE stream_id = $1 ORDER BY version`, [streamId]);
      let state = initialBenchState();
      for (const row of rows) state = evolveBench(state, JSON.parse(row.data) as BenchEventData);
      return { version: rows.length, state, eventsFolded: rows.length };
    },
    async catchUp(_group, total): Promise<CatchUp> {
      let after = '0';
      let handled = 0;
      let sum = 0;
      while (handled < total) {
        const { rows } = await c().query<{ pos: string; stream_id: string; version: number; type: string; data: string }>(
          `SELECT pos, stream_id, version, type, data FROM ${table} WHERE pos > $1 ORDER BY pos LIMIT 100`,
          [after],
        );
        if (rows.length === 0) break;
        for (const row of rows) {
          sum += (JSON.parse(row.data) as BenchEventData).amount;
          handled++;
        }
        after = rows[rows.length - 1]!.pos;
      }
      if (handled !== total || sum <= 0) throw new Error(`raw catch-up read ${handled} events, expected ${total}`);
      return { handled, stop: async () => undefined };
    },
    async close() {
      await client?.end();
      client = undefined;
    },
    cleanup: async (dir) => void (await dropSchema(dir)),
  };
}
