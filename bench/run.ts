// eventfold benchmark: eventfold on a backend vs a reference client of the same backend.
//
//   npm run bench                     # full run: sqlite, redis, kafka, pulsar, postgres, postgres-emmett, 3 interleaved rounds each
//   npm run bench -- --quick          # small sizes and 2 rounds, a smoke test of the harness
//   npm run bench -- --rounds 5       # rounds per suite (default 3, --quick 2)
//   npm run bench -- --suite kafka    # one suite: sqlite (vs Emmett), redis (vs raw node-redis), kafka (vs raw @platformatic/kafka) or pulsar (vs eventfold's Pulsar client used raw)
//   npm run bench -- --suite postgres,postgres-emmett   # several suites, comma-separated: postgres (vs raw node-postgres), postgres-emmett (vs Emmett)
//   npm run bench -- --suite scale    # 4 writer processes vs one (routed appends; --backend kafka|pulsar): bench/scale.ts
//   npm run bench -- --suite projection   # sqlProjection into SQLite vs into PostgreSQL: bench/projection-bench.ts
//   npm run bench -- --n 5000         # batch-1 appends (batch-100 calls scale with it)
//   npm run bench -- --json           # JSON on stdout (the tables go to stderr); an array when several suites ran
//   npm run bench -- --redis-url redis://host:6379   # default: $REDIS_URL, else redis://127.0.0.1:6379
//   npm run bench -- --kafka-brokers host:9092       # default: $EVENTFOLD_KAFKA_BROKERS, else 127.0.0.1:9092
//   npm run bench -- --postgres-url postgres://user@host:5432/db   # default: $EVENTFOLD_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/eventfold
//
// Each suite interleaves its targets: round 1 measures eventfold then the reference, round 2
// again, and so on, each target on fresh state every round (rounds.ts). The table gives each
// target's median (min–max) over the rounds and the ratio taken round by round, its median
// (min–max) (round-summary.ts); the JSON carries every round's raw figures too.
//
// The redis, kafka and postgres suites need their server (`scripts/services up redis kafka postgres`); each fails,
// before anything is measured, when its server cannot be reached. Their keys / topics and
// consumer groups live under a prefix made up per round and target, deleted after its round
// (and at the end, after a failure). The kafka suite also runs Kafka's own producer perf tool
// from the jars `scripts/services up kafka` installs in .services/kafka/lib, once after the
// rounds, as the limit of this machine. The pulsar suite needs the local broker (`scripts/services up
// pulsar`, or EVENTFOLD_PULSAR_SERVICE_URL / EVENTFOLD_PULSAR_URL) and, for its limit, Pulsar's
// Java client jars from .services/pulsar/lib and a JDK (bench/workloads/pulsar-perf.ts); without
// them the limit is reported as not measured, with the reason.
//
// Emmett's stores come from packages of their own under bench/comparisons/<name>/ (not in the
// root install): the first run of a suite that needs one runs `npm ci` there (comparisons.ts).
//
// Prints a markdown table per suite and writes bench/results/<suite>-<timestamp>.json.
import { parseArgs } from 'node:util';
import { jsonReport, toJson, writeJsonReport } from './json-report.ts';
import { markdownReport } from './markdown-report.ts';
import { runSuite } from './suite-run.ts';
import type { BenchConfig, Suite } from './target.ts';
import { suites } from './workloads/index.ts';

// `--suite scale` is a bench of its own (several OS processes): scale.ts.
if (process.argv.includes('scale') && process.argv[process.argv.indexOf('scale') - 1] === '--suite') {
  await import('./scale.ts');
  process.exit(0);
}
// `--suite projection` too (read-model writes, not the append/load/catch-up workload): projection-bench.ts.
if (process.argv.includes('projection') && process.argv[process.argv.indexOf('projection') - 1] === '--suite') {
  await import('./projection-bench.ts');
  process.exit(0);
}

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    n: { type: 'string' },
    json: { type: 'boolean', default: false },
    suite: { type: 'string', default: 'all' },
    'redis-url': { type: 'string' },
    'kafka-brokers': { type: 'string' },
    'postgres-url': { type: 'string' },
    rounds: { type: 'string' },
    'no-memory': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(
    `usage: npm run bench -- [--quick] [--rounds <n>] [--n <batch-1 appends>] [--json] [--suite all|${Object.keys(suites).join('|')}] [--redis-url <url>] [--kafka-brokers <host:port,…>] [--postgres-url <url>] [--no-memory]` +
      '\n  --suite takes one name or several, comma-separated; also --suite scale (bench/scale.ts) and --suite projection (bench/projection-bench.ts)',
  );
  process.exit(0);
}

const names = args.suite === 'all' ? Object.keys(suites) : args.suite.split(',').map((s) => s.trim());
const unknown = names.filter((name) => suites[name] === undefined);
if (unknown.length > 0 || names.length === 0) {
  console.error(`unknown suite "${unknown.join(', ') || args.suite}"; known: all, ${Object.keys(suites).join(', ')}, scale, projection`);
  process.exit(2);
}
const selected: Suite[] = names.map((name) => suites[name]!);
// The memory probe's child processes inherit it.
if (args['redis-url'] !== undefined) process.env.REDIS_URL = args['redis-url'];
if (args['kafka-brokers'] !== undefined) process.env.EVENTFOLD_KAFKA_BROKERS = args['kafka-brokers'];
if (args['postgres-url'] !== undefined) process.env.EVENTFOLD_POSTGRES_URL = args['postgres-url'];

const base: BenchConfig = args.quick
  ? { appends: 300, batchCalls: 20, aggregateEvents: 2_000, loadRepeats: 3, warmup: 50, streams: 100 }
  : { appends: 10_000, batchCalls: 300, aggregateEvents: 10_000, loadRepeats: 5, warmup: 300, streams: 100 };
const n = args.n === undefined ? undefined : Number(args.n);
if (n !== undefined && !(Number.isSafeInteger(n) && n > 0)) {
  console.error('--n needs a positive integer');
  process.exit(2);
}
const config: BenchConfig = n === undefined ? base : { ...base, appends: n, batchCalls: Math.max(5, Math.round(n / 20)) };
const rounds = args.rounds === undefined ? (args.quick ? 2 : 3) : Number(args.rounds);
if (!(Number.isSafeInteger(rounds) && rounds > 0)) {
  console.error('--rounds needs a positive integer');
  process.exit(2);
}

// Progress and the table go to stderr when stdout carries the JSON.
const out = (line: string): void => void (args.json ? process.stderr : process.stdout).write(`${line}\n`);
const log = (line: string): void => void process.stderr.write(`${line}\n`);

// Every selected suite's comparison is installed and its backend usable before anything is measured.
for (const suite of selected) {
  try {
    await suite.prepare?.(log);
    await suite.preflight?.();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
const reports: unknown[] = [];
for (const suite of selected) {
  const result = await runSuite(suite, { config, rounds, quick: args.quick, memory: !args['no-memory'], log });
  for (const line of markdownReport(result)) out(line);
  const report = jsonReport(result);
  log(`\nJSON written to ${writeJsonReport(result, report)}`);
  reports.push(report);
}
if (args.json) process.stdout.write(`${toJson(reports.length === 1 ? reports[0] : reports)}\n`);
