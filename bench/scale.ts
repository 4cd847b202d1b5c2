// Several writer processes of one store against one process with the same number of appends
// in flight: what stable ownership with routed appends (core/log/append-router.ts) buys, on
// Kafka or on Pulsar (`routing: true`).
//
//   npm run bench -- --suite scale [--backend kafka|pulsar] [--rounds R] [--seconds S] [--processes P] [--in-flight F] [--json]
//
// Per round and workload (plain appends to random streams, and transfers: an appendMany of a
// debit and a credit between two of 20 accounts at the versions just read), two targets,
// interleaved (A B A B …), each on a fresh store of 8 partitions:
//   one process   1 writer process with P×F appends in flight
//   P processes   P writer processes (default 4) with F in flight each (default 4)
// Each runs S seconds (default 10) after every process has joined the writer group. Reported:
// completed appends (or transfers) per second, p50/p99 latency, CPU time per op of the writer
// processes and of the local broker (what a 2-core machine runs out of), version conflicts, and
// PartitionFencedErrors and other errors that reached a caller (the target: 0); the median
// (min–max) of each over the rounds and of the ratio P processes / one process, round by round.
// Needs the local broker (`scripts/services up kafka` or `pulsar`), or EVENTFOLD_KAFKA_BROKERS /
// EVENTFOLD_PULSAR_SERVICE_URL and EVENTFOLD_PULSAR_URL. Requests per op are counted on Kafka only.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, percentile } from './stats.ts';
import { deleteNamed, kafkaBrokers, PARTITIONS } from './workloads/kafka-common.ts';
import { dropPulsarNamespace, pulsarUrls } from './workloads/pulsar-common.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    processes: { type: 'string', default: '4' },
    'in-flight': { type: 'string', default: '4' },
    backend: { type: 'string', default: 'kafka' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    suite: { type: 'string' },
  },
});
const positive = (value: string | undefined, name: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`--${name} needs a positive integer`);
    process.exit(2);
  }
  return n;
};
const rounds = args.quick ? 1 : positive(args.rounds, 'rounds');
const seconds = args.quick ? 4 : positive(args.seconds, 'seconds');
const processes = positive(args.processes, 'processes');
const inFlight = positive(args['in-flight'], 'in-flight');
if (args.backend !== 'kafka' && args.backend !== 'pulsar') {
  console.error(`--backend is kafka or pulsar, not ${JSON.stringify(args.backend)}`);
  process.exit(2);
}
const backend: 'kafka' | 'pulsar' = args.backend;
const BACKEND_NAME = backend === 'kafka' ? 'Kafka' : 'Pulsar';
// Pulsar: one namespace for the whole run, a store prefix per measured run; dropped at the end.
const pulsarNamespace = `bench-scale-${randomBytes(4).toString('hex')}`;
const worker = fileURLToPath(new URL('./scale-worker.ts', import.meta.url));
const log = (line: string): void => void process.stderr.write(`${line}\n`);

type Workload = 'appends' | 'transfers';
interface Figures {
  readonly perSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly conflicts: number;
  readonly fenced: number;
  readonly failed: number;
  readonly errors: string[];
  /** CPU time of the writer processes per completed op. */
  readonly cpuMsPerOp: number;
  /** CPU time of the local broker per completed op (when its pid is known), else NaN. */
  readonly brokerCpuMsPerOp: number;
  /** Kafka requests the writers sent per completed op, by API name (what the broker works through). */
  readonly requestsPerOp: Record<string, number>;
}

interface WorkerSummary {
  cpuMs: number;
  latencies: number[];
  conflicts: number;
  fenced: number;
  failed: number;
  errors: string[];
  requests: Record<string, number>;
}

/** Kafka API keys the writers use, by name (the rest are counted as `other`). */
const API_NAMES: Record<string, string> = {
  0: 'Produce',
  1: 'Fetch',
  2: 'ListOffsets',
  3: 'Metadata',
  8: 'OffsetCommit',
  12: 'Heartbeat',
  22: 'InitProducerId',
  24: 'AddPartitionsToTxn',
  26: 'EndTxn',
};

function requestsPerOp(summaries: readonly WorkerSummary[], ops: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of summaries)
    for (const [key, n] of Object.entries(s.requests)) {
      const name = API_NAMES[key] ?? 'other';
      out[name] = (out[name] ?? 0) + n / ops;
    }
  return out;
}

function runWorker(config: Record<string, unknown>, ready: () => void): Promise<WorkerSummary> {
  const child = spawn(process.execPath, [worker, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('"ready":true')) ready();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.includes('"done":true'));
      if (code !== 0 || !line) reject(new Error(`scale worker exited ${code}: ${err.slice(-2000)}`));
      else resolve(JSON.parse(line) as WorkerSummary);
    });
  });
}

async function measure(workload: Workload, writers: number, perWriter: number): Promise<Figures> {
  const prefix = `bench-scale-${randomBytes(4).toString('hex')}`;
  try {
    let joined = 0;
    let allReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      allReady = resolve;
    });
    // Start and stop are set once every writer has joined: passed through a shared clock.
    const startAt = { value: 0 };
    const driver =
      backend === 'kafka'
        ? { backend, options: { brokers: kafkaBrokers(), prefix, partitions: PARTITIONS } }
        : { backend, options: { ...pulsarUrls(), namespace: pulsarNamespace, prefix, partitions: PARTITIONS, routing: true } };
    const configs = Array.from({ length: writers }, () => ({
      driver,
      workload,
      streams: workload === 'transfers' ? 20 : 200,
      inFlight: perWriter,
      // Generous: joins of 4 processes and their rebalances take a few seconds.
      startAt: Date.now() + 8000 + writers * 1500,
      stopAt: 0,
    }));
    startAt.value = configs[0]!.startAt;
    for (const c of configs) c.stopAt = c.startAt + seconds * 1000;
    const runs = configs.map((c) =>
      runWorker(c, () => {
        if (++joined === writers) allReady();
      }),
    );
    await Promise.race([ready, Promise.all(runs)]);
    if (Date.now() > startAt.value) log(`  (warning: writers joined ${Date.now() - startAt.value} ms after the start time)`);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt.value - Date.now())));
    const brokerAtStart = brokerCpuMs();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, configs[0]!.stopAt - Date.now())));
    const brokerMs = brokerCpuMs() - brokerAtStart;
    const summaries = await Promise.all(runs);
    const latencies = summaries.flatMap((s) => s.latencies).sort((a, b) => a - b);
    return {
      perSec: latencies.length / seconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      conflicts: summaries.reduce((n, s) => n + s.conflicts, 0),
      fenced: summaries.reduce((n, s) => n + s.fenced, 0),
      failed: summaries.reduce((n, s) => n + s.failed, 0),
      errors: summaries.flatMap((s) => s.errors),
      cpuMsPerOp: summaries.reduce((n, s) => n + s.cpuMs, 0) / latencies.length,
      brokerCpuMsPerOp: brokerMs / latencies.length,
      requestsPerOp: requestsPerOp(summaries, latencies.length),
    };
  } finally {
    if (backend === 'kafka') await deleteNamed(prefix).catch(() => undefined);
  }
}

/**
 * CPU time (user + system) of the broker started by `scripts/services up <backend>`, from /proc;
 * NaN when that pid file is not there (a remote broker). The broker's work per op is part of the cost.
 */
function brokerCpuMs(): number {
  try {
    const pid = readFileSync(new URL(`../.services/${backend}/pid`, import.meta.url), 'utf8').trim();
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, at 100 ticks/s
  } catch {
    return Number.NaN;
  }
}

const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

const fmt = (values: readonly number[], digits = 1): string => {
  const sorted = [...values].sort((a, b) => a - b);
  return `${median(sorted).toFixed(digits)} (${sorted[0]!.toFixed(digits)}–${sorted[sorted.length - 1]!.toFixed(digits)})`;
};

const results: Record<Workload, { one: Figures[]; many: Figures[] }> = {
  appends: { one: [], many: [] },
  transfers: { one: [], many: [] },
};
try {
  for (let round = 1; round <= rounds; round++) {
    for (const workload of ['appends', 'transfers'] as const) {
      log(`round ${round}/${rounds} ${workload}: one process × ${processes * inFlight} in flight`);
      results[workload].one.push(await measure(workload, 1, processes * inFlight));
      log(`round ${round}/${rounds} ${workload}: ${processes} processes × ${inFlight} in flight`);
      results[workload].many.push(await measure(workload, processes, inFlight));
    }
  }
} finally {
  if (backend === 'pulsar')
    await dropPulsarNamespace(pulsarNamespace).catch((e: unknown) => log(`  (could not drop ${pulsarNamespace}: ${e})`));
}

const lines: string[] = [
  `## ${BACKEND_NAME} scale: ${processes} writer processes vs one, ${processes * inFlight} appends in flight in total, ${PARTITIONS} partitions, ${seconds} s per run, ${rounds} interleaved round(s)`,
  '',
  `| workload | target | ops/s | p50 ms | p99 ms | CPU ms/op (writers) | CPU ms/op (broker) | ${backend === 'kafka' ? 'Kafka requests/op' : 'requests/op (Kafka only)'} | conflicts | fenced errors to callers | other errors |`,
  '|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const workload of ['appends', 'transfers'] as const) {
  for (const [label, figures] of [
    ['one process', results[workload].one],
    [`${processes} processes`, results[workload].many],
  ] as const) {
    lines.push(
      `| ${workload} | ${label} | ${fmt(figures.map((f) => f.perSec))} | ${fmt(figures.map((f) => f.p50))} | ${fmt(figures.map((f) => f.p99))} | ${fmt(
        figures.map((f) => f.cpuMsPerOp),
        2,
      )} | ${fmt(
        figures.map((f) => f.brokerCpuMsPerOp),
        2,
      )} | ${fmt(
        figures.map((f) => total(f.requestsPerOp)),
        2,
      )} | ${fmt(
        figures.map((f) => f.conflicts),
        0,
      )} | ${figures.reduce((n, f) => n + f.fenced, 0)} | ${figures.reduce((n, f) => n + f.failed, 0)} |`,
    );
  }
  const ratios = results[workload].many.map((m, i) => m.perSec / results[workload].one[i]!.perSec);
  lines.push(`| ${workload} | ratio ${processes} processes / one | ${fmt(ratios, 2)}× | | | | | | | | |`);
}
if (backend === 'kafka') lines.push('', 'Kafka requests per op by API (medians over the rounds):', '');
for (const workload of backend === 'kafka' ? (['appends', 'transfers'] as const) : []) {
  for (const [label, figures] of [
    ['one process', results[workload].one],
    [`${processes} processes`, results[workload].many],
  ] as const) {
    const names = [...new Set(figures.flatMap((f) => Object.keys(f.requestsPerOp)))].sort();
    const parts = names.map((name) => `${name} ${median(figures.map((f) => f.requestsPerOp[name] ?? 0).sort((a, b) => a - b)).toFixed(2)}`);
    lines.push(`- ${workload}, ${label}: ${parts.join(', ')}`);
  }
}
lines.push(
  '',
  'ops: appends completed (transfers: appendMany of two streams completed), conflicts excluded. Ratios are taken round by round; median (min–max).',
  'CPU ms/op: user + system time over the measured seconds, of all writer processes together and of the local broker (NaN: broker pid unknown), per completed op.',
  'Kafka requests/op: requests the writer processes sent while measured (every API, heartbeats included), per completed op.',
);
const errors = [...results.appends.many, ...results.transfers.many, ...results.appends.one, ...results.transfers.one].flatMap(
  (f) => f.errors,
);
if (errors.length > 0) lines.push('', `errors seen: ${[...new Set(errors)].slice(0, 5).join(' | ')}`);
if (args.json)
  process.stdout.write(`${JSON.stringify({ suite: 'scale', backend, processes, inFlight, seconds, rounds, results }, null, 2)}\n`);
else for (const line of lines) console.log(line);
