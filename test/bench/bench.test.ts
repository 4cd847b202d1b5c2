// The README's bench command must keep working: a quick run of every suite (2 interleaved
// rounds), checked for sane figures in every round and for summaries that really come from the
// rounds (not for speed: speed is claimed only from full runs, as ratios).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { KAFKA_BROKERS, POSTGRES_URL, REDIS_URL } from '../services/env.ts';

const run = promisify(execFile);

interface Figures {
  appendsPerSecBatch1: number;
  eventsPerSecBatch100: number;
  appendLatencyMs: { p50: number; p99: number; count: number };
  loadNoSnapshotMs: number;
  loadSnapshotMs: number;
  snapshotLoad: { snapshotVersion: number | null; eventsFolded: number };
  catchUpEventsPerSec: number;
}

interface TargetRun {
  name: string;
  figures: Figures;
  memory: unknown;
}

interface Series {
  values: (number | null)[];
  min: number | null;
  median: number | null;
  max: number | null;
}

interface Report {
  suite: string;
  rounds: number;
  order: string[];
  config: { aggregateEvents: number };
  runs: { round: number; subject: TargetRun; baseline: TargetRun }[];
  table: { figure: string; subject: Series & { name: string }; baseline: Series & { name: string }; ratio: Series }[];
  limit: { label: string; records: number; recordsPerSec: number; p50LatencyMs: number; p99LatencyMs: number }[] | null;
}

const ROUNDS = 2; // --quick's default

/** min <= median <= max over the values that are there, and those three are the values' own. */
function assertSpread(series: Series, label: string): void {
  const known = series.values.filter((v): v is number => v !== null);
  assert.equal(series.min, Math.min(...known), `${label} min`);
  assert.equal(series.max, Math.max(...known), `${label} max`);
  assert.ok(series.median !== null && series.min! <= series.median && series.median <= series.max!, `${label} median ${series.median}`);
}

// The pulsar suite has a test of its own (pulsar-bench.test.ts): the suites are named here so it
// does not run twice.
const SUITES = ['sqlite', 'redis', 'kafka', 'postgres', 'postgres-emmett'];

it('npm run bench -- --quick: every suite measures every figure for both sides in interleaved rounds', async () => {
  const main = new URL('../../bench/run.ts', import.meta.url).pathname;
  const { stdout } = await run(
    process.execPath,
    [
      main,
      '--quick',
      '--json',
      '--no-memory',
      '--suite',
      SUITES.join(','),
      '--redis-url',
      REDIS_URL,
      '--kafka-brokers',
      KAFKA_BROKERS.join(','),
      '--postgres-url',
      POSTGRES_URL,
    ],
    {
      timeout: 600_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const suites = JSON.parse(stdout) as Report[];
  assert.deepEqual(
    suites.map((s) => s.suite),
    SUITES,
  );
  assert.deepEqual(
    suites.map((s) => s.runs[0]?.baseline.name),
    ['Emmett', 'raw', 'raw', 'raw', 'Emmett'],
  );
  for (const suite of suites) {
    assert.equal(suite.rounds, ROUNDS, `${suite.suite}: rounds`);
    assert.deepEqual(
      suite.runs.map((r) => r.round),
      [1, 2],
    );
    assert.equal(suite.order[0], 'eventfold');
    for (const round of suite.runs) {
      assert.equal(round.subject.name, 'eventfold');
      assert.notEqual(round.baseline.name, 'eventfold');
      for (const { name, figures, memory } of [round.subject, round.baseline]) {
        const label = `${suite.suite}/round ${round.round}/${name}`;
        for (const key of [
          'appendsPerSecBatch1',
          'eventsPerSecBatch100',
          'loadNoSnapshotMs',
          'loadSnapshotMs',
          'catchUpEventsPerSec',
        ] as const) {
          assert.ok(Number.isFinite(figures[key]) && figures[key] > 0, `${label} ${key} = ${figures[key]}`);
        }
        assert.ok(figures.appendLatencyMs.p50 > 0 && figures.appendLatencyMs.p99 >= figures.appendLatencyMs.p50, `${label} latency`);
        assert.equal(memory, null, `${label}: --no-memory`);
      }
      // eventfold's snapshot row really starts from a snapshot and folds nothing on top, every round.
      const snapshot = round.subject.figures.snapshotLoad;
      assert.equal(snapshot.snapshotVersion, suite.config.aggregateEvents);
      assert.equal(snapshot.eventsFolded, 0);
    }

    // The table's rows summarize the rounds: per-target values are the rounds' figures, and the
    // ratio is taken pair by pair, round i's eventfold over round i's reference.
    const row = (figure: string) => {
      const found = suite.table.find((r) => r.figure === figure);
      assert.ok(found, `${suite.suite}: row "${figure}"`);
      return found;
    };
    assert.deepEqual(
      row('appends/s, batch 1').subject.values,
      suite.runs.map((r) => r.subject.figures.appendsPerSecBatch1),
    );
    assert.deepEqual(
      row('events/s, batch 100').baseline.values,
      suite.runs.map((r) => r.baseline.figures.eventsPerSecBatch100),
    );
    for (const r of suite.table) {
      const label = `${suite.suite}: ${r.figure}`;
      assert.equal(r.subject.name, 'eventfold');
      assert.equal(r.ratio.values.length, ROUNDS, label);
      if (r.figure.startsWith('load (no snapshot):')) {
        // memory rows: not measured with --no-memory
        assert.deepEqual(r.ratio.values, [null, null], label);
        assert.equal(r.ratio.median, null, label);
        continue;
      }
      r.ratio.values.forEach((ratio, i) => {
        assert.ok(
          ratio !== null && Math.abs(ratio - r.subject.values[i]! / r.baseline.values[i]!) < 1e-12,
          `${label}: round ${i + 1} ratio`,
        );
      });
      assertSpread(r.subject, `${label} (eventfold)`);
      assertSpread(r.baseline, `${label} (${r.baseline.name})`);
      assertSpread(r.ratio, `${label} (ratio)`);
    }
  }
  // Kafka's own producer perf tool ran and its summary line was parsed.
  const limit = suites.find((s) => s.suite === 'kafka')!.limit;
  assert.ok(limit && limit.length === 2, 'kafka: two kafka-producer-perf-test runs');
  for (const row of limit) {
    assert.ok(row.records >= 50_000 && row.recordsPerSec > 0, `${row.label}: ${row.records} records at ${row.recordsPerSec}/s`);
    assert.ok(row.p99LatencyMs >= row.p50LatencyMs, `${row.label}: latency`);
  }
});

interface ProjectionSeries {
  values: number[];
  min: number;
  median: number;
  max: number;
}

it('npm run bench -- --suite projection --quick: both read models project every event in every round', async () => {
  const main = new URL('../../bench/run.ts', import.meta.url).pathname;
  const { stdout } = await run(process.execPath, [main, '--suite', 'projection', '--quick', '--json', '--postgres-url', POSTGRES_URL], {
    timeout: 300_000,
    maxBuffer: 4 * 1024 * 1024,
  });
  const report = JSON.parse(stdout) as {
    suite: string;
    rounds: number;
    config: { events: number };
    runs: { round: number; sqlite: { eventsPerSec: number; ms: number }; postgres: { eventsPerSec: number; ms: number } }[];
    table: { sqlite: ProjectionSeries; postgres: ProjectionSeries; ratio: ProjectionSeries };
  };
  assert.equal(report.suite, 'projection');
  assert.equal(report.rounds, ROUNDS);
  assert.deepEqual(
    report.runs.map((r) => r.round),
    [1, 2],
  );
  for (const round of report.runs) {
    for (const target of ['sqlite', 'postgres'] as const) {
      const { eventsPerSec, ms } = round[target];
      assert.ok(ms > 0 && Number.isFinite(eventsPerSec) && eventsPerSec > 0, `round ${round.round} ${target}: ${eventsPerSec} events/s`);
      // events/s is the projected events over the timed span, not a figure of its own
      assert.ok(Math.abs(eventsPerSec - report.config.events / (ms / 1000)) < 1e-6, `round ${round.round} ${target}: events/s from ms`);
    }
  }
  const bySeries = {
    sqlite: (r: (typeof report.runs)[number]) => r.sqlite.eventsPerSec,
    postgres: (r: (typeof report.runs)[number]) => r.postgres.eventsPerSec,
  };
  for (const [name, pick] of Object.entries(bySeries)) {
    assert.deepEqual(report.table[name as 'sqlite' | 'postgres'].values, report.runs.map(pick), `${name} values`);
  }
  report.table.ratio.values.forEach((ratio, i) => {
    const r = report.runs[i]!;
    assert.ok(Math.abs(ratio - r.postgres.eventsPerSec / r.sqlite.eventsPerSec) < 1e-12, `ratio round ${i + 1}`);
  });
  for (const series of Object.values(report.table)) {
    assert.equal(series.min, Math.min(...series.values));
    assert.equal(series.max, Math.max(...series.values));
    assert.ok(series.min <= series.median && series.median <= series.max);
  }
});

// The comparison packages (bench/comparisons/<name>) are outside the root type check: their
// dependencies are only there once the bench installed them, which the run above did.
it('bench/comparisons/*: each comparison type-checks against the packages it installed', async () => {
  const root = new URL('../../bench/comparisons/', import.meta.url).pathname;
  const tsc = new URL('../../node_modules/typescript/bin/tsc', import.meta.url).pathname;
  const names = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  assert.deepEqual(names.sort(), ['emmett-postgresql', 'emmett-sqlite']);
  for (const name of names) {
    await run(process.execPath, [tsc, '--noEmit', '-p', `${root}${name}/tsconfig.json`], { timeout: 120_000 });
  }
});
