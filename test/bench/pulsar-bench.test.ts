// The bench suite `pulsar` on the real broker: a quick run (small sizes) gives every row of the
// table for both targets, the limit (Pulsar's Java client configured like pulsar-perf produce)
// or why it could not run, and leaves no namespace behind. Not a speed test: speed is claimed
// only from full runs, as ratios (README).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { pulsarLib } from '../../bench/workloads/pulsar-perf.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL } from '../services/env.ts';

const run = promisify(execFile);
const main = new URL('../../bench/run.ts', import.meta.url).pathname;
const perf = new URL('../../bench/workloads/pulsar-perf.ts', import.meta.url).href;
const env = { ...process.env, EVENTFOLD_PULSAR_SERVICE_URL: PULSAR_SERVICE_URL, EVENTFOLD_PULSAR_URL: PULSAR_URL };

interface Series {
  values: (number | null)[];
}
interface LimitRow {
  label: string;
  records: number;
  recordsPerSec: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  summary: string;
}
interface Report {
  suite: string;
  rounds: number;
  runs: { round: number; subject: { name: string }; baseline: { name: string } }[];
  table: { figure: string; subject: Series & { name: string }; baseline: Series & { name: string }; ratio: Series }[];
  limit: LimitRow[] | { unavailable: string } | null;
}

// --quick's sizes: a 2,000-event aggregate; the store then holds 50 + 2 × 100 warm-up events, 300
// batch-1 and 20 × 100 batch-100 events, and the aggregate.
const CAUGHT_UP = (50 + 2 * 100 + 300 + 20 * 100 + 2000).toLocaleString('en-US');
const FIGURES = [
  'appends/s, batch 1',
  'events/s, batch 100',
  'append latency p50, batch 1',
  'append latency p99, batch 1',
  'load 2,000-event aggregate, no snapshot',
  'load 2,000-event aggregate, with snapshot*',
  'load (no snapshot): peak RSS growth',
  'load (no snapshot): JS heap growth',
  `catch-up from the start (${CAUGHT_UP} events)`,
  // raw's variant: one message holding all of an append's events
  'appends/s, batch 1, raw, one message per append',
  'events/s, batch 100, raw, one message per append',
  'append latency p50, batch 1, raw, one message per append',
  'append latency p99, batch 1, raw, one message per append',
];

async function benchNamespaces(): Promise<string[]> {
  const res = await fetch(`${PULSAR_URL}/admin/v2/namespaces/public`, { signal: AbortSignal.timeout(10_000) });
  assert.ok(res.ok, `listing namespaces answered ${res.status}`);
  return ((await res.json()) as string[]).filter((ns) => ns.startsWith('public/efbench-'));
}

it('npm run bench -- --suite pulsar --quick: every row for eventfold and raw, the limit, no namespace left', async () => {
  const before = new Set(await benchNamespaces());
  const { stdout, stderr } = await run(process.execPath, [main, '--suite', 'pulsar', '--quick', '--rounds', '1', '--json', '--no-memory'], {
    env,
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const report = JSON.parse(stdout) as Report;
  assert.equal(report.suite, 'pulsar');
  assert.deepEqual(
    report.runs.map((r) => [r.round, r.subject.name, r.baseline.name]),
    [[1, 'eventfold', 'raw']],
  );
  assert.deepEqual(
    report.table.map((r) => r.figure),
    FIGURES,
  );
  for (const row of report.table) {
    assert.equal(row.subject.name, 'eventfold');
    assert.equal(row.baseline.name, 'raw');
    const memory = row.figure.startsWith('load (no snapshot):');
    for (const value of [row.subject.values[0], row.baseline.values[0], row.ratio.values[0]]) {
      if (memory) assert.equal(value, null, `${row.figure}: --no-memory`);
      else assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${row.figure}: ${value}`);
    }
  }

  // The limit ran when the broker's client jars are here, else the report says why not.
  const lib = pulsarLib();
  const limit = report.limit;
  assert.ok(limit !== null, 'the pulsar suite has a limit');
  if ('unavailable' in lib) {
    assert.deepEqual(limit, { unavailable: lib.unavailable });
  } else {
    assert.ok(Array.isArray(limit) && limit.length === 2, `two PulsarProducePerf runs, got ${JSON.stringify(limit)}`);
    assert.deepEqual(
      limit.map((row) => row.label.split(' ').slice(0, 2).join(' ')),
      ['batching on', 'batching off'],
    );
    for (const row of limit) {
      assert.ok(row.records >= 100_000 && row.recordsPerSec > 0, `${row.label}: ${row.records} records at ${row.recordsPerSec}/s`);
      assert.ok(row.p99LatencyMs >= row.p50LatencyMs && row.p50LatencyMs > 0, `${row.label}: latency`);
      assert.match(row.summary, /^PulsarProducePerf: 100000 records sent, /);
    }
  }
  // The markdown (on stderr with --json) says plainly what the limit is.
  assert.match(stderr, /#### Pulsar's own Java client configured like `pulsar-perf produce` \(pulsar-perf itself is not served here\)/);
  assert.match(stderr, /\n\| events\/s, batch 100, raw, one message per append \| [\d,]+ events\/s \| [\d,]+ events\/s \|/);

  // Every namespace the run made (each target's round, the limit's) was dropped.
  const left = (await benchNamespaces()).filter((ns) => !before.has(ns));
  assert.deepEqual(left, [], 'namespaces left behind');
});

it('the pulsar limit without the client jars: reported as unavailable, with the reason', async () => {
  const script = `const m = await import(${JSON.stringify(perf)}); console.log(JSON.stringify(await m.pulsarProducePerf({ appends: 1, batchCalls: 1, aggregateEvents: 1, loadRepeats: 1, warmup: 1, streams: 1 }, () => {})));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...env, EVENTFOLD_SERVICES_DIR: '/nonexistent/eventfold-services' },
    timeout: 30_000,
  });
  const result = JSON.parse(stdout) as { unavailable?: string };
  assert.match(result.unavailable ?? '', /no pulsar-client-original-\*\.jar in \/nonexistent\/eventfold-services\/pulsar\/lib/);
});
