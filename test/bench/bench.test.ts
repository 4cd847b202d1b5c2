// The README's bench command must keep working: a quick run of both suites, checked for sane
// figures (not for speed: speed is claimed only from full runs, as ratios).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { REDIS_URL } from '../services/env.ts';

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

it('npm run bench -- --quick: both suites measure every figure for both sides', async () => {
  const main = new URL('../../bench/run.ts', import.meta.url).pathname;
  const { stdout } = await run(process.execPath, [main, '--quick', '--json', '--no-memory', '--redis-url', REDIS_URL], {
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const suites = JSON.parse(stdout) as { suite: string; config: { aggregateEvents: number }; targets: { name: string; figures: Figures }[] }[];
  assert.deepEqual(suites.map((s) => s.suite), ['sqlite', 'redis']);
  for (const suite of suites) {
    assert.equal(suite.targets.length, 2, `${suite.suite}: eventfold and its reference`);
    assert.equal(suite.targets[0]!.name, 'eventfold');
    for (const { name, figures } of suite.targets) {
      const label = `${suite.suite}/${name}`;
      for (const key of ['appendsPerSecBatch1', 'eventsPerSecBatch100', 'loadNoSnapshotMs', 'loadSnapshotMs', 'catchUpEventsPerSec'] as const) {
        assert.ok(Number.isFinite(figures[key]) && figures[key] > 0, `${label} ${key} = ${figures[key]}`);
      }
      assert.ok(figures.appendLatencyMs.p50 > 0 && figures.appendLatencyMs.p99 >= figures.appendLatencyMs.p50, `${label} latency`);
    }
    // eventfold's snapshot row really starts from a snapshot and folds nothing on top.
    const eventfold = suite.targets[0]!.figures.snapshotLoad;
    assert.equal(eventfold.snapshotVersion, suite.config.aggregateEvents);
    assert.equal(eventfold.eventsFolded, 0);
  }
});
