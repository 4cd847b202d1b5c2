// eventfold benchmark: eventfold on a backend vs a reference client of the same backend.
//
//   npm run bench                     # full run: sqlite, redis, then kafka (about three minutes on 2 cores)
//   npm run bench -- --quick          # small sizes, a smoke test of the harness
//   npm run bench -- --suite kafka    # one suite: sqlite (vs Emmett), redis (vs raw node-redis) or kafka (vs raw @platformatic/kafka)
//   npm run bench -- --n 5000         # batch-1 appends (batch-100 calls scale with it)
//   npm run bench -- --json           # JSON on stdout (the tables go to stderr); an array when several suites ran
//   npm run bench -- --redis-url redis://host:6379   # default: $REDIS_URL, else redis://127.0.0.1:6379
//   npm run bench -- --kafka-brokers host:9092       # default: $EVENTFOLD_KAFKA_BROKERS, else 127.0.0.1:9092
//
// The redis and kafka suites need their server (`scripts/services up redis kafka`); each fails,
// before anything is measured, when its server cannot be reached. Their keys / topics and
// consumer groups live under a prefix made up for the run and are deleted at the end. The kafka
// suite also runs Kafka's own producer perf tool from the jars `scripts/services up kafka`
// installs in .services/kafka/lib, as the limit of this machine.
//
// Prints a markdown table per suite and writes bench/results/<suite>-<timestamp>.json.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { measure, type Figures } from './measure.ts';
import type { MemoryFigures } from './memory-probe.ts';
import { formatBytes, formatNumber } from './stats.ts';
import type { BenchConfig, BenchTarget, LimitRow, Suite } from './target.ts';
import { suites } from './workloads/index.ts';

const here = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    n: { type: 'string' },
    json: { type: 'boolean', default: false },
    suite: { type: 'string', default: 'all' },
    'redis-url': { type: 'string' },
    'kafka-brokers': { type: 'string' },
    'no-memory': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(
    `usage: npm run bench -- [--quick] [--n <batch-1 appends>] [--json] [--suite all|${Object.keys(suites).join('|')}] [--redis-url <url>] [--kafka-brokers <host:port,…>] [--no-memory]`,
  );
  process.exit(0);
}

const selected: Suite[] = args.suite === 'all' ? Object.values(suites) : [suites[args.suite]].filter((s) => s !== undefined);
if (selected.length === 0) {
  console.error(`unknown suite "${args.suite}"; known: all, ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
// The memory probe's child processes inherit it.
if (args['redis-url'] !== undefined) process.env.REDIS_URL = args['redis-url'];
if (args['kafka-brokers'] !== undefined) process.env.EVENTFOLD_KAFKA_BROKERS = args['kafka-brokers'];

const base: BenchConfig = args.quick
  ? { appends: 300, batchCalls: 20, aggregateEvents: 2_000, loadRepeats: 3, warmup: 50, streams: 100 }
  : { appends: 10_000, batchCalls: 300, aggregateEvents: 10_000, loadRepeats: 5, warmup: 300, streams: 100 };
const n = args.n === undefined ? undefined : Number(args.n);
if (n !== undefined && !(Number.isSafeInteger(n) && n > 0)) {
  console.error('--n needs a positive integer');
  process.exit(2);
}
const config: BenchConfig = n === undefined ? base : { ...base, appends: n, batchCalls: Math.max(5, Math.round(n / 20)) };

// Progress and the table go to stderr when stdout carries the JSON.
const out = (line: string): void => void (args.json ? process.stderr : process.stdout).write(`${line}\n`);
const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function probeMemory(suite: Suite, role: 'subject' | 'baseline', dir: string): Promise<MemoryFigures | null> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', join(here, 'memory-probe.ts'), suite.name, role, dir]);
    return JSON.parse(stdout) as MemoryFigures;
  } catch (error) {
    log(`  memory probe of ${role} failed: ${error instanceof Error ? error.message : String(error)}`);
    return null;
  }
}

interface Row {
  readonly figure: string;
  readonly better: 'higher' | 'lower';
  readonly unit: string;
  readonly subject: number | null;
  readonly baseline: number | null;
  readonly format?: (value: number) => string;
}

/** Runs one suite: both targets, the table, the JSON file. Returns the JSON report. */
async function runSuite(suite: Suite): Promise<unknown> {
  const started = new Date();
  const root = mkdtempSync(join(tmpdir(), `eventfold-bench-${suite.name}-`));
  const opened: { target: BenchTarget; dir: string }[] = [];
  try {
    log(`eventfold bench, suite ${suite.name}${args.quick ? ' (quick)' : ''}: ${JSON.stringify(config)}`);
    log(`data in ${root}`);
    const setup = suite.describe ? await suite.describe() : undefined;
    const results: { name: string; figures: Figures; memory: MemoryFigures | null; notes: readonly string[] }[] = [];
    for (const [role, make] of [
      ['subject', suite.subject],
      ['baseline', suite.baseline],
    ] as const) {
      const target = make();
      const dir = join(root, role);
      mkdirSync(dir);
      opened.push({ target, dir });
      log(`${target.name}:`);
      const figures = await measure(target, dir, config, log);
      const memory = args['no-memory'] ? null : await probeMemory(suite, role, dir);
      results.push({ name: target.name, figures, memory, notes: target.notes });
    }
    const [subject, baseline] = results as [(typeof results)[0], (typeof results)[0]];
    let limit: LimitRow[] | null = null;
    if (suite.limit) {
      log(`${suite.name} limit:`);
      limit = await suite.limit.run(config, log);
    }

    const agg = config.aggregateEvents.toLocaleString('en-US');
    const rows: Row[] = [
      {
        figure: 'appends/s, batch 1',
        better: 'higher',
        unit: 'appends/s',
        subject: subject.figures.appendsPerSecBatch1,
        baseline: baseline.figures.appendsPerSecBatch1,
      },
      {
        figure: 'events/s, batch 100',
        better: 'higher',
        unit: 'events/s',
        subject: subject.figures.eventsPerSecBatch100,
        baseline: baseline.figures.eventsPerSecBatch100,
      },
      {
        figure: 'append latency p50, batch 1',
        better: 'lower',
        unit: 'ms',
        subject: subject.figures.appendLatencyMs.p50,
        baseline: baseline.figures.appendLatencyMs.p50,
      },
      {
        figure: 'append latency p99, batch 1',
        better: 'lower',
        unit: 'ms',
        subject: subject.figures.appendLatencyMs.p99,
        baseline: baseline.figures.appendLatencyMs.p99,
      },
      {
        figure: `load ${agg}-event aggregate, no snapshot`,
        better: 'lower',
        unit: 'ms',
        subject: subject.figures.loadNoSnapshotMs,
        baseline: baseline.figures.loadNoSnapshotMs,
      },
      {
        figure: `load ${agg}-event aggregate, with snapshot*`,
        better: 'lower',
        unit: 'ms',
        subject: subject.figures.loadSnapshotMs,
        baseline: baseline.figures.loadSnapshotMs,
      },
      {
        figure: 'load (no snapshot): peak RSS growth',
        better: 'lower',
        unit: 'MiB',
        subject: subject.memory?.rssPeakGrowthBytes ?? null,
        baseline: baseline.memory?.rssPeakGrowthBytes ?? null,
        format: formatBytes,
      },
      {
        figure: 'load (no snapshot): JS heap growth',
        better: 'lower',
        unit: 'MiB',
        subject: subject.memory?.heapGrowthBytes ?? null,
        baseline: baseline.memory?.heapGrowthBytes ?? null,
        format: formatBytes,
      },
      {
        figure: `catch-up from the start (${formatNumber(subject.figures.catchUpEvents)} events)`,
        better: 'higher',
        unit: 'events/s',
        subject: subject.figures.catchUpEventsPerSec,
        baseline: baseline.figures.catchUpEventsPerSec,
      },
    ];
    // The baseline's other ways to append, each against the subject's one append figure.
    for (const v of baseline.figures.variants) {
      rows.push(
        {
          figure: `appends/s, batch 1, ${v.label}`,
          better: 'higher',
          unit: 'appends/s',
          subject: subject.figures.appendsPerSecBatch1,
          baseline: v.appendsPerSecBatch1,
        },
        {
          figure: `events/s, batch 100, ${v.label}`,
          better: 'higher',
          unit: 'events/s',
          subject: subject.figures.eventsPerSecBatch100,
          baseline: v.eventsPerSecBatch100,
        },
        {
          figure: `append latency p50, batch 1, ${v.label}`,
          better: 'lower',
          unit: 'ms',
          subject: subject.figures.appendLatencyMs.p50,
          baseline: v.appendLatencyMs.p50,
        },
        {
          figure: `append latency p99, batch 1, ${v.label}`,
          better: 'lower',
          unit: 'ms',
          subject: subject.figures.appendLatencyMs.p99,
          baseline: v.appendLatencyMs.p99,
        },
      );
    }
    const cell = (row: Row, value: number | null): string =>
      value === null ? 'n/a' : row.format ? row.format(value) : `${formatNumber(value)} ${row.unit}`;
    const ratio = (row: Row): number | null =>
      row.subject === null || row.baseline === null || row.baseline === 0 ? null : row.subject / row.baseline;

    const snap = subject.figures.snapshotLoad;
    out('');
    out(`### ${suite.name}: ${subject.name} vs ${baseline.name}`);
    out('');
    out(`| figure | ${subject.name} | ${baseline.name} | ratio ${subject.name}/${baseline.name} | better |`);
    out('|---|---:|---:|---:|---|');
    for (const row of rows) {
      const r = ratio(row);
      out(
        `| ${row.figure} | ${cell(row, row.subject)} | ${cell(row, row.baseline)} | ${r === null ? 'n/a' : `${r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`} | ${row.better} is better |`,
      );
    }
    out('');
    out(
      `\\* ${baseline.name} has no snapshots: its "with snapshot" row is the same full fold as the row above, timed again. ` +
        `${subject.name}'s snapshot load started from the snapshot at version ${snap.snapshotVersion} and folded ${snap.eventsFolded} events.`,
    );
    out('');
    out(
      `Run: ${started.toISOString()}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${formatBytes(totalmem())} RAM, ` +
        `data in ${tmpdir()}. Sizes: ${config.appends} batch-1 appends over ${config.streams} streams (after ${config.warmup} warm-up appends), ` +
        `${config.batchCalls} × 100-event appends, loads = median of ${config.loadRepeats} after one warm-up load, catch-up = second of two runs (the first warms up). ` +
        `Targets run one after the other in one process; memory is measured in a fresh child process per target.`,
    );
    if (setup) out(`- ${setup}`);
    for (const note of [...subject.notes, ...baseline.notes]) out(`- ${note}`);
    if (suite.limit && limit) {
      const ef = subject.figures;
      const share = (of: number, limitRate: number): string => `${((100 * of) / limitRate).toFixed(1)}%`;
      out('');
      out(`#### ${suite.limit.title}`);
      out('');
      out(
        `| tool run | records | records/s | latency avg / p50 / p99 / max | ${subject.name} batch-100 events/s as share | ${baseline.name} batch-100 events/s as share |`,
      );
      out('|---|---:|---:|---:|---:|---:|');
      for (const row of limit) {
        out(
          `| ${row.label} | ${formatNumber(row.records)} | ${formatNumber(row.recordsPerSec)} | ${row.avgLatencyMs} / ${row.p50LatencyMs} / ${row.p99LatencyMs} / ${row.maxLatencyMs} ms | ` +
            `${share(ef.eventsPerSecBatch100, row.recordsPerSec)} | ${share(baseline.figures.eventsPerSecBatch100, row.recordsPerSec)} |`,
        );
      }
      out('');
      for (const row of limit) out(`- tool summary (${row.label.split(',')[0]}): \`${row.summary}\``);
      for (const note of suite.limit.notes) out(`- ${note}`);
    }

    const report = {
      suite: suite.name,
      startedAt: started.toISOString(),
      setup: setup ?? null,
      quick: args.quick,
      config,
      machine: {
        node: process.version,
        platform: process.platform,
        arch: process.arch,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        totalMemBytes: totalmem(),
      },
      targets: results.map((r) => ({ name: r.name, figures: r.figures, memory: r.memory, notes: r.notes })),
      limit,
      table: rows.map((row) => ({
        figure: row.figure,
        unit: row.unit,
        better: row.better,
        [subject.name]: row.subject,
        [baseline.name]: row.baseline,
        ratio: ratio(row),
      })),
    };
    const resultsDir = join(here, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, `${suite.name}-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    const json = JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2);
    writeFileSync(file, `${json}\n`);
    log(`\nJSON written to ${file}`);
    return report;
  } finally {
    for (const { target, dir } of opened) {
      try {
        await target.close(); // a no-op after a finished run; releases connections after a failure
        await target.cleanup?.(dir);
      } catch (error) {
        log(`  clean-up of ${target.name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    rmSync(root, { recursive: true, force: true });
  }
}

// Every selected suite's backend must be usable before anything is measured.
for (const suite of selected) {
  try {
    await suite.preflight?.();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
const reports: unknown[] = [];
for (const suite of selected) reports.push(await runSuite(suite));
if (args.json) {
  const json = JSON.stringify(
    reports.length === 1 ? reports[0] : reports,
    (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value),
    2,
  );
  process.stdout.write(`${json}\n`);
}
