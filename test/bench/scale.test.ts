// The README's scale bench command must keep working: a quick run (one round, 4 s per run) of
// 4 Kafka writer processes against one, checked for figures that come from real work and for
// the behaviour it exists to show — no PartitionFencedError and no other error reaches a caller
// (not for speed: speed is claimed only from full runs, as ratios).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { KAFKA_BROKERS } from '../services/env.ts';

const run = promisify(execFile);

interface Figures {
  perSec: number;
  p50: number;
  p99: number;
  cpuMsPerOp: number;
  conflicts: number;
  fenced: number;
  failed: number;
  errors: string[];
  requestsPerOp: Record<string, number>;
}

interface Report {
  suite: string;
  backend: string;
  processes: number;
  rounds: number;
  results: Record<'appends' | 'transfers', { one: Figures[]; many: Figures[] }>;
}

it('npm run bench -- --suite scale --quick: both workloads on one and on 4 writer processes, no error reaches a caller', async () => {
  const main = new URL('../../bench/run.ts', import.meta.url).pathname;
  const { stdout } = await run(process.execPath, [main, '--suite', 'scale', '--quick', '--json'], {
    env: { ...process.env, EVENTFOLD_KAFKA_BROKERS: KAFKA_BROKERS.join(',') },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 240_000,
  });
  const report = JSON.parse(stdout) as Report;
  assert.equal(report.suite, 'scale');
  assert.equal(report.processes, 4);
  assert.equal(report.rounds, 1);
  for (const workload of ['appends', 'transfers'] as const) {
    for (const target of ['one', 'many'] as const) {
      const runs = report.results[workload][target];
      assert.equal(runs.length, 1, `${workload}/${target}: one round`);
      for (const f of runs) {
        const label = `${workload}/${target}`;
        assert.ok(f.perSec > 0, `${label}: ops completed (${f.perSec}/s)`);
        assert.ok(f.p50 > 0 && f.p50 <= f.p99, `${label}: p50 ${f.p50} <= p99 ${f.p99}`);
        assert.ok(f.cpuMsPerOp > 0, `${label}: CPU per op measured (${f.cpuMsPerOp} ms)`);
        // Appends go in transactions (several per one, by group commit): produces and EndTxns were counted.
        assert.ok(
          (f.requestsPerOp.Produce ?? 0) > 0 && (f.requestsPerOp.EndTxn ?? 0) > 0,
          `${label}: requests counted ${JSON.stringify(f.requestsPerOp)}`,
        );
        assert.equal(f.fenced, 0, `${label}: PartitionFencedErrors that reached a caller`);
        assert.equal(f.failed, 0, `${label}: other errors that reached a caller: ${f.errors.join(' | ')}`);
      }
    }
  }
  // 20 accounts and 16 transfers in flight: version conflicts are certain, and reach the caller typed.
  assert.ok(report.results.transfers.one[0]!.conflicts > 0, 'transfers race on versions');
  // A routed append costs requests a local one does not (the request, the owner's fetch, the reply and its fetch).
  const appends = report.results.appends;
  assert.ok(
    (appends.many[0]!.requestsPerOp.Fetch ?? 0) > (appends.one[0]!.requestsPerOp.Fetch ?? 0),
    `routed appends fetch more per op: ${appends.many[0]!.requestsPerOp.Fetch} vs ${appends.one[0]!.requestsPerOp.Fetch}`,
  );
});
