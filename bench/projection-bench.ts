// Projection throughput: `sqlProjection` building a read model from the start, into SQLite
// (eventfold/sqlite) and into PostgreSQL (eventfold/postgres), from the same source store.
//
//   npm run bench -- --suite projection               # 3 interleaved rounds of 20,000 events
//   npm run bench -- --suite projection --quick       # 2 rounds of 2,000 events
//   npm run bench -- --suite projection --n 50000 --rounds 5 --json --postgres-url <url>
//
// Every round writes N events over 100 streams (fewer below 10,000 events) into a new SQLite event store (a file, untimed),
// then projects all of it once into SQLite, then once into PostgreSQL, each into a fresh read
// model (a new file / a new schema, deleted after its round): one versioned upsert per event
// (`upsertVersioned('balances', { account, version, amount }, { key: ['account'] })`), 100
// events per transaction (the default). Timed: from starting the projection until `caughtUp()`
// resolved. Checked after each: the handler ran N times and every account's row holds its
// stream's last version. The ratio is PostgreSQL over SQLite, round by round.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { sqlProjection as pgProjection } from '../src/backends/postgres/index.ts';
import { sqlite, sqlProjection as sqliteProjection } from '../src/backends/sqlite/index.ts';
import { createEventStore, defineEvent, type EventOf, type EventStore } from '../src/index.ts';
import { formatNumber, now, type Spread, spread } from './stats.ts';
import { benchEvent } from './target.ts';
import { describePostgres, dropSchema, postgresUrl, preflightPostgres, schemaFor, withClient } from './workloads/postgres-common.ts';

const { values: args } = parseArgs({
  options: {
    suite: { type: 'string' },
    quick: { type: 'boolean', default: false },
    n: { type: 'string' },
    rounds: { type: 'string' },
    json: { type: 'boolean', default: false },
    'postgres-url': { type: 'string' },
    'no-memory': { type: 'boolean', default: false }, // accepted like the other suites; nothing here measures memory
  },
});
if (args['postgres-url'] !== undefined) process.env.EVENTFOLD_POSTGRES_URL = args['postgres-url'];
const positive = (value: string | undefined, fallback: number, flag: string): number => {
  const n = value === undefined ? fallback : Number(value);
  if (!(Number.isSafeInteger(n) && n > 0)) {
    console.error(`${flag} needs a positive integer`);
    process.exit(2);
  }
  return n;
};
const events = positive(args.n, args.quick ? 2_000 : 20_000, '--n');
const rounds = positive(args.rounds, args.quick ? 2 : 3, '--rounds');
const STREAMS = 100;
/** Streams the source really has: appends of 100 events rotate over STREAMS, fewer when N < 100 × STREAMS. */
const streams = Math.min(STREAMS, Math.ceil(events / 100));
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const out = (line: string): void => void (args.json ? process.stderr : process.stdout).write(`${line}\n`);

const Deposited = defineEvent({ type: 'Deposited', schema: z.object({ amount: z.number(), note: z.string() }) });
type Store = EventStore<EventOf<readonly [typeof Deposited]>>;

interface Run {
  readonly eventsPerSec: number;
  readonly ms: number;
}
type Target = 'sqlite' | 'postgres';
const TARGETS: readonly Target[] = ['sqlite', 'postgres'];

/** Fails unless the handler ran `events` times and each account's row is at its stream's last version. */
function check(target: Target, handled: number, rows: readonly { account: string; version: number }[], last: Map<string, number>): void {
  const wrong = rows.filter((r) => last.get(r.account) !== Number(r.version));
  if (handled !== events || rows.length !== last.size || wrong.length > 0) {
    throw new Error(
      `${target} read model: handled ${handled}/${events}, ${rows.length}/${last.size} rows, ${wrong.length} at a wrong version`,
    );
  }
}

async function projectSqlite(store: Store, dir: string, last: Map<string, number>): Promise<Run> {
  const db = new DatabaseSync(join(dir, 'read-model.db'));
  try {
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL');
    db.exec('CREATE TABLE balances (account TEXT PRIMARY KEY, version INTEGER NOT NULL, amount INTEGER NOT NULL)');
    let handled = 0;
    const start = now();
    const projection = sqliteProjection(store, {
      database: db,
      name: 'balances',
      handle: (event, tx) => {
        handled++;
        tx.upsertVersioned(
          'balances',
          { account: event.streamId, version: event.version, amount: event.data.amount },
          { key: ['account'] },
        );
      },
    });
    await projection.caughtUp();
    const ms = now() - start;
    await projection.stop();
    check('sqlite', handled, db.prepare('SELECT account, version FROM balances').all() as { account: string; version: number }[], last);
    return { ms, eventsPerSec: events / (ms / 1000) };
  } finally {
    db.close();
  }
}

async function projectPostgres(store: Store, dir: string, last: Map<string, number>): Promise<Run> {
  const schema = schemaFor(dir, 'proj');
  const table = `${schema}.balances`;
  await withClient((c) =>
    c.query(
      `CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".balances (account text PRIMARY KEY, version integer NOT NULL, amount integer NOT NULL)`,
    ),
  );
  let handled = 0;
  const start = now();
  const projection = pgProjection(store, {
    connectionString: postgresUrl(),
    schema,
    name: 'balances',
    handle: async (event, tx) => {
      handled++;
      await tx.upsertVersioned(table, { account: event.streamId, version: event.version, amount: event.data.amount }, { key: ['account'] });
    },
  });
  await projection.caughtUp();
  const ms = now() - start;
  await projection.stop();
  const rows = await withClient(
    async (c) => (await c.query<{ account: string; version: number }>(`SELECT account, version FROM "${schema}".balances`)).rows,
  );
  check('postgres', handled, rows, last);
  return { ms, eventsPerSec: events / (ms / 1000) };
}

await preflightPostgres().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
const setup = await describePostgres();
const startedAt = new Date();
const root = mkdtempSync(join(tmpdir(), 'eventfold-bench-projection-'));
log(
  `eventfold bench, suite projection${args.quick ? ' (quick)' : ''}, ${rounds} interleaved round(s) of ${events} events; data in ${root}`,
);
const runs: Record<Target, Run>[] = [];
try {
  for (let round = 1; round <= rounds; round++) {
    const dir = join(root, `round-${round}`);
    mkdirSync(dir);
    // The source: N events over STREAMS streams, appended 100 at a time (untimed).
    const store: Store = createEventStore({ driver: sqlite({ path: join(dir, 'events.db') }), events: [Deposited] });
    const last = new Map<string, number>();
    for (let i = 0; i < events; i += 100) {
      const stream = `account-${(i / 100) % STREAMS}`;
      const count = Math.min(100, events - i);
      const outcome = await store.append(
        stream,
        Array.from({ length: count }, (_, k) => Deposited(benchEvent(i + k))),
        { expectedVersion: last.get(stream) ?? 0 },
      );
      last.set(stream, outcome.nextExpectedVersion);
    }
    const pair: Partial<Record<Target, Run>> = {};
    for (const target of TARGETS) {
      const targetDir = join(dir, target);
      mkdirSync(targetDir);
      try {
        pair[target] = target === 'sqlite' ? await projectSqlite(store, targetDir, last) : await projectPostgres(store, targetDir, last);
      } finally {
        if (target === 'postgres') await dropSchema(targetDir);
      }
      log(
        `round ${round}/${rounds}, ${target}: ${formatNumber(pair[target]!.eventsPerSec)} events/s (${(pair[target]!.ms / 1000).toFixed(2)} s)`,
      );
    }
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    runs.push(pair as Record<Target, Run>);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

const series = (values: number[]): { values: number[] } & Spread => ({ values, ...spread(values) });
const report = {
  suite: 'projection',
  startedAt: startedAt.toISOString(),
  setup,
  quick: args.quick,
  rounds,
  order: TARGETS,
  config: { events, streams, batchSize: 100 },
  machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model },
  runs: runs.map((r, i) => ({ round: i + 1, ...r })),
  table: {
    sqlite: series(runs.map((r) => r.sqlite.eventsPerSec)),
    postgres: series(runs.map((r) => r.postgres.eventsPerSec)),
    ratio: series(runs.map((r) => r.postgres.eventsPerSec / r.sqlite.eventsPerSec)),
  },
};
const cell = (s: Spread, unit: string, f = formatNumber): string =>
  `${f(s.median)}${unit}${rounds > 1 ? ` (${f(s.min)}–${f(s.max)})` : ''}`;
out('');
out(`### projection: sqlProjection into SQLite vs into PostgreSQL, ${rounds} interleaved round(s)`);
out('');
out('| figure | SQLite read model | PostgreSQL read model | ratio PostgreSQL/SQLite per round | better |');
out('|---|---:|---:|---:|---|');
out(
  `| projection from the start, ${formatNumber(events)} events, one versioned upsert each | ${cell(report.table.sqlite, '')} events/s | ` +
    `${cell(report.table.postgres, '')} events/s | ${cell(report.table.ratio, '×', (v) => v.toFixed(2))} | higher is better |`,
);
out('');
out(
  `Run: ${startedAt.toISOString()}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}. Source: an SQLite event store (file, WAL, synchronous=FULL) of ` +
    `${events} events over ${streams} streams, new every round, read by both projections the same way (readAll, pages of 100). ` +
    "SQLite read model: a new file, WAL, synchronous=FULL, one `BEGIN IMMEDIATE` transaction per 100 events. PostgreSQL read model: a new schema, the projection's own pool, one transaction per 100 events.",
);
out(`- ${setup}`);
const file = join(dirname(fileURLToPath(import.meta.url)), 'results', `projection-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
log(`\nJSON written to ${file}`);
if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
