// The README's bench command must keep working: a quick run of every suite, checked for sane
// figures (not for speed: speed is claimed only from full runs, as ratios).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { KAFKA_BROKERS, REDIS_URL } from '../services/env.ts';

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

it('npm run bench -- --quick: every suite measures every figure for both sides', async () => {
  const main = new URL('../../bench/run.ts', import.meta.url).pathname;
  const { stdout } = await run(
    process.execPath,
    [main, '--quick', '--json', '--no-memory', '--redis-url', REDIS_URL, '--kafka-brokers', KAFKA_BROKERS.join(',')],
    {
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const suites = JSON.parse(stdout) as {
    suite: string;
    config: { aggregateEvents: number };
    targets: { name: string; figures: Figures }[];
    limit: { label: string; records: number; recordsPerSec: number; p50LatencyMs: number; p99LatencyMs: number }[] | null;
  }[];
  assert.deepEqual(
    suites.map((s) => s.suite),
    ['sqlite', 'redis', 'kafka'],
  );
  for (const suite of suites) {
    assert.equal(suite.targets.length, 2, `${suite.suite}: eventfold and its reference`);
    assert.equal(suite.targets[0]!.name, 'eventfold');
    for (const { name, figures } of suite.targets) {
      const label = `${suite.suite}/${name}`;
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
    }
    // eventfold's snapshot row really starts from a snapshot and folds nothing on top.
    const eventfold = suite.targets[0]!.figures.snapshotLoad;
    assert.equal(eventfold.snapshotVersion, suite.config.aggregateEvents);
    assert.equal(eventfold.eventsFolded, 0);
  }
  // Kafka's own producer perf tool ran and its summary line was parsed.
  const limit = suites.find((s) => s.suite === 'kafka')!.limit;
  assert.ok(limit && limit.length === 2, 'kafka: two kafka-producer-perf-test runs');
  for (const row of limit) {
    assert.ok(row.records >= 50_000 && row.recordsPerSec > 0, `${row.label}: ${row.records} records at ${row.recordsPerSec}/s`);
    assert.ok(row.p99LatencyMs >= row.p50LatencyMs, `${row.label}: latency`);
  }
});
