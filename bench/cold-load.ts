// What a cold process pays to index a partition's whole history on Kafka or Pulsar: time and memory.
//
//   node bench/cold-load.ts [--backend kafka|pulsar] [--events N] [--streams S] [--rounds R] [--compare DIR] [--heap-snapshot DIR]
//
// Seeds N events (default 100,000) in one partition (`kafka({ partitions: 1 })` under a prefix
// made up for the run; with --backend pulsar, `pulsar({ partitions: 1 })` in a namespace of that
// name under the same prefix), as appends of 100 events spread over S streams (default 1000), then
// measures, each in a FRESH child process (node --expose-gc), the first operation that must
// index the whole partition:
//   reader  the first `store.streamVersion(id)` (the driver's stream index: stream -> offsets)
//   writer  the first append to a new stream of the partition (claim, then the core's catch-up
//           through `driver.readPartition`: every stream's version and every event id)
//   load    the first `readStream` of 300 events of one stream (s-0: its first three appends,
//           spread over the first third of the partition)
// For each: wall time, peak RSS growth (maxRSS after minus RSS before, and the largest RSS seen
// by a 20 ms sampler, which a long synchronous decode can starve), heapUsed / external /
// arrayBuffers growth right after the operation and after a forced gc() (what the process keeps:
// the index, caches), and both per event.
//
// --rounds R      repeats the pair of children R times (default 1) and prints every round.
// --compare DIR   also runs the children against another source tree (a copy of src/, e.g. the
//                 code before a fix, kept under .scratch/ so it resolves node_modules), rounds
//                 interleaved: this tree, then DIR, then this tree...
// --heap-snapshot DIR  each child writes a heap snapshot after its gc (DIR/<label>-<kind>.heapsnapshot).
// --json          the figures as JSON on stdout.
// --keep          keeps the topics (prints the prefix); --prefix P measures an earlier --keep
//                 run's topics instead of seeding (pass its --events for the per-event figures).
//
// "fetched" is what the driver read from the broker over the child's life: Kafka's
// `recordsFetched` (records), Pulsar's `messagesReceived` (messages: one per commit, which
// groups the appends in flight, and one per index checkpoint chunk). Index checkpoints keep
// their default (`indexCheckpointEvents` 20,000) on both.
//
// The topics (Pulsar: the namespace) are deleted at the end. Needs the local broker
// (`scripts/services up kafka|pulsar`) or EVENTFOLD_KAFKA_BROKERS / EVENTFOLD_PULSAR_SERVICE_URL
// and EVENTFOLD_PULSAR_URL.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { z } from 'zod';
import type { EventStoreDriver } from '../src/index.ts';
import { benchEvent } from './target.ts';
import { deleteNamed, kafkaBrokers } from './workloads/kafka-common.ts';
import { dropPulsarNamespace, pulsarUrls } from './workloads/pulsar-common.ts';

const here = dirname(fileURLToPath(import.meta.url));
const ownSrc = join(here, '..', 'src');
type Kind = 'reader' | 'writer' | 'load';
type Backend = 'kafka' | 'pulsar';

interface ChildFigures {
  readonly kind: Kind;
  readonly label: string;
  readonly events: number;
  readonly result: number;
  readonly wallMs: number;
  /** maxRSS (peak of the process) after the operation minus RSS just before it. */
  readonly peakRssGrowth: number;
  /** Largest RSS the 20 ms sampler saw during the operation minus RSS before it. */
  readonly sampledPeakRssGrowth: number;
  /** Largest V8 heapTotal (committed heap) the sampler saw minus heapTotal before. */
  readonly peakHeapTotalGrowth: number;
  readonly rssAfter: number;
  readonly heapAfter: number;
  readonly externalAfter: number;
  readonly arrayBuffersAfter: number;
  readonly rssAfterGc: number;
  readonly heapAfterGc: number;
  readonly externalAfterGc: number;
  readonly arrayBuffersAfterGc: number;
  /** Kafka: records fetched; Pulsar: messages received (see the header). */
  readonly recordsFetched: number;
}

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'kafka' },
    events: { type: 'string', default: '100000' },
    streams: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '1' },
    compare: { type: 'string' },
    'heap-snapshot': { type: 'string' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    // Internal: the child's side.
    child: { type: 'string' },
    prefix: { type: 'string' },
    src: { type: 'string' },
    label: { type: 'string' },
  },
});

if (args.backend !== 'kafka' && args.backend !== 'pulsar') throw new Error('--backend must be kafka or pulsar');
const backend: Backend = args.backend;

/** The backend's driver from a source tree (this one or --compare's), opened on one partition under `prefix`. */
async function openDriver(src: string, prefix: string): Promise<{ driver: EventStoreDriver; fetched: () => number }> {
  const module = (path: string): string => pathToFileURL(join(src, 'backends', backend, path)).href;
  if (backend === 'kafka') {
    const { kafka } = (await import(module('index.ts'))) as typeof import('../src/backends/kafka/index.ts');
    const driver = kafka({ brokers: kafkaBrokers(), prefix, partitions: 1 });
    return { driver, fetched: () => driver.recordsFetched };
  }
  const { pulsar } = (await import(module('index.ts'))) as typeof import('../src/backends/pulsar/index.ts');
  // A namespace of the prefix's name (made by the driver), so the clean-up drops all of it.
  const driver = pulsar({ ...pulsarUrls(), namespace: prefix, prefix, partitions: 1 });
  return { driver, fetched: () => driver.messagesReceived };
}

/** Deletes what a run made under `prefix`; says what. */
async function dropAll(prefix: string): Promise<string> {
  if (backend === 'pulsar') {
    await dropPulsarNamespace(prefix);
    return `deleted the namespace public/${prefix}`;
  }
  const deleted = await deleteNamed(prefix).catch(() => undefined);
  return `deleted ${deleted?.topics ?? '?'} topics under ${prefix}`;
}

async function load(src: string) {
  const { createEventStore, defineEvent } = (await import(pathToFileURL(join(src, 'index.ts')).href)) as typeof import('../src/index.ts');
  const Deposited = defineEvent({ type: 'Deposited', schema: z.object({ amount: z.number(), note: z.string() }) });
  const open = async (prefix: string) => {
    const { driver, fetched } = await openDriver(src, prefix);
    return { fetched, store: createEventStore({ driver, events: [Deposited] as const }) };
  };
  return { open, Deposited };
}

const n = (value: string | undefined, name: string): number => {
  const x = Number(value);
  if (!Number.isInteger(x) || x < 1) throw new Error(`--${name} must be a positive integer`);
  return x;
};

if (args.child) await child(args.child as Kind);
else await main();

async function child(kind: Kind): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the child with --expose-gc');
  const { open, Deposited } = await load(args.src ?? ownSrc);
  const { store, fetched } = await open(args.prefix!);
  // Connected and metadata loaded without touching the partition's history: a checkpoint read
  // (Kafka: OffsetFetch of a group that does not exist; Pulsar: the checkpoints table, outside
  // the partition) opens the driver and reads no events.
  await store.subscriptions.position('warm-up');
  gc();
  gc();
  const before = process.memoryUsage();
  let sampled = before.rss;
  let heapTotalPeak = before.heapTotal;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    sampled = Math.max(sampled, m.rss);
    heapTotalPeak = Math.max(heapTotalPeak, m.heapTotal);
  }, 20);
  const started = performance.now();
  let result: number;
  if (kind === 'reader') {
    result = await store.streamVersion('s-0');
  } else if (kind === 'load') {
    result = 0;
    for await (const _ of store.readStream('s-0', { toVersion: 300 })) result++;
  } else {
    const outcome = await store.append(`new-${randomBytes(4).toString('hex')}`, Deposited(benchEvent(0)), { expectedVersion: 0 });
    result = outcome.nextExpectedVersion;
  }
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  const after = process.memoryUsage();
  sampled = Math.max(sampled, after.rss);
  heapTotalPeak = Math.max(heapTotalPeak, after.heapTotal);
  const peak = process.resourceUsage().maxRSS * 1024;
  gc();
  gc();
  const afterGc = process.memoryUsage();
  if (args['heap-snapshot']) writeHeapSnapshot(join(args['heap-snapshot'], `${args.label}-${kind}.heapsnapshot`));
  const figures: ChildFigures = {
    kind,
    label: args.label ?? 'this',
    events: n(args.events, 'events'),
    result,
    wallMs,
    peakRssGrowth: peak - before.rss,
    sampledPeakRssGrowth: sampled - before.rss,
    peakHeapTotalGrowth: heapTotalPeak - before.heapTotal,
    rssAfter: after.rss - before.rss,
    heapAfter: after.heapUsed - before.heapUsed,
    externalAfter: after.external - before.external,
    arrayBuffersAfter: after.arrayBuffers - before.arrayBuffers,
    rssAfterGc: afterGc.rss - before.rss,
    heapAfterGc: afterGc.heapUsed - before.heapUsed,
    externalAfterGc: afterGc.external - before.external,
    arrayBuffersAfterGc: afterGc.arrayBuffers - before.arrayBuffers,
    recordsFetched: fetched(),
  };
  // Keep the store (and so its index) alive up to the measurement above.
  await store.close();
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

async function main(): Promise<void> {
  const events = n(args.events, 'events');
  const streams = n(args.streams, 'streams');
  const rounds = n(args.rounds, 'rounds');
  const trees: { label: string; src: string }[] = [{ label: 'this', src: ownSrc }];
  if (args.compare) trees.push({ label: 'compare', src: resolve(args.compare) });
  if (args['heap-snapshot']) mkdirSync(args['heap-snapshot'], { recursive: true });
  const reuse = args.prefix;
  const prefix = reuse ?? `efbench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}-cold`;
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const all: ChildFigures[] = [];
  try {
    if (!reuse) await seed(prefix, events, streams, log);
    for (let round = 1; round <= rounds; round++) {
      for (const tree of trees) {
        for (const kind of ['reader', 'writer', 'load'] as const) {
          const f = await runChild(kind, prefix, tree, events);
          all.push(f);
          log(`round ${round} ${line(f)}`);
        }
      }
    }
  } finally {
    if (args.keep || reuse) log(`kept the topics under ${prefix}`);
    else log(await dropAll(prefix).catch((error: unknown) => `clean-up under ${prefix} failed: ${String(error)}`));
  }
  if (args.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
}

async function seed(prefix: string, events: number, streams: number, log: (line: string) => void): Promise<void> {
  const { open, Deposited } = await load(ownSrc);
  const { store } = await open(prefix);
  const seedStart = performance.now();
  const batches = Math.ceil(events / 100);
  let next = 0;
  // A few appends in flight: the writer's group commit puts them in one transaction.
  const worker = async (): Promise<void> => {
    for (let b = next++; b < batches; b = next++) {
      const size = Math.min(100, events - b * 100);
      await store.append(
        `s-${b % streams}`,
        Array.from({ length: size }, (_, i) => Deposited(benchEvent(b * 100 + i))),
      );
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await store.close();
  log(
    `seeded ${events} events over ${Math.min(streams, batches)} streams in one partition in ${((performance.now() - seedStart) / 1000).toFixed(1)} s (${prefix})`,
  );
}

async function runChild(kind: Kind, prefix: string, tree: { label: string; src: string }, events: number): Promise<ChildFigures> {
  const childArgs = ['--expose-gc', fileURLToPath(import.meta.url), '--backend', backend, '--child', kind, '--prefix', prefix];
  childArgs.push('--src', tree.src);
  childArgs.push('--label', tree.label, '--events', String(events));
  if (args['heap-snapshot']) childArgs.push('--heap-snapshot', args['heap-snapshot']);
  const { stdout } = await promisify(execFile)(process.execPath, childArgs, { maxBuffer: 1 << 20, timeout: 600_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildFigures;
}

function line(f: ChildFigures): string {
  const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const per = (b: number): string => `${Math.round(b / f.events)} B/ev`;
  return (
    `${f.label.padEnd(7)} ${f.kind.padEnd(6)} ${(f.wallMs / 1000).toFixed(2)} s, ` +
    `peak RSS +${mib(f.peakRssGrowth)} (${per(f.peakRssGrowth)}; sampled +${mib(f.sampledPeakRssGrowth)}; heapTotal +${mib(f.peakHeapTotalGrowth)}), ` +
    `after: heap +${mib(f.heapAfter)} ext +${mib(f.externalAfter)} (ab +${mib(f.arrayBuffersAfter)}) rss +${mib(f.rssAfter)}; ` +
    `after gc: heap +${mib(f.heapAfterGc)} (${per(f.heapAfterGc)}) ext +${mib(f.externalAfterGc)} (ab +${mib(f.arrayBuffersAfterGc)}) rss +${mib(f.rssAfterGc)}; ` +
    `fetched ${f.recordsFetched}, result ${f.result}`
  );
}
