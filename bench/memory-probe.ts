// Child process for the memory figure: opens a target on an existing bench directory, loads the
// large aggregate once (no snapshot) and prints how much the process grew, as JSON. A fresh
// process per target keeps one target's heap and caches out of the other's numbers.
//   node --expose-gc bench/memory-probe.ts <suite> <subject|baseline> <dir>
import { AGGREGATE_STREAM, WARM_STREAM } from './measure.ts';
import { suites } from './workloads/index.ts';

export interface MemoryFigures {
  /** Peak resident set size during the load minus the RSS just before it. */
  readonly rssPeakGrowthBytes: number;
  /** V8 heap in use right after the load minus before it (garbage included, GC may run in between). */
  readonly heapGrowthBytes: number;
}

const [suiteName, role, dir] = process.argv.slice(2);
const suite = suites[suiteName ?? ''];
if (!suite || (role !== 'subject' && role !== 'baseline') || !dir) {
  console.error('usage: memory-probe.ts <suite> <subject|baseline> <dir>');
  process.exit(2);
}
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

await suite.prepare?.((line) => process.stderr.write(`${line}\n`)); // installed already: the parent prepared it
const target = suite[role]();
await target.open(dir);
await target.load(WARM_STREAM, { snapshot: false }); // connections, caches and code paths warm
gc();
gc();
const before = process.memoryUsage();
await target.load(AGGREGATE_STREAM, { snapshot: false });
const heapAfter = process.memoryUsage().heapUsed;
const peakRss = process.resourceUsage().maxRSS * 1024;
await target.close();
const figures: MemoryFigures = { rssPeakGrowthBytes: Math.max(0, peakRss - before.rss), heapGrowthBytes: heapAfter - before.heapUsed };
process.stdout.write(`${JSON.stringify(figures)}\n`);
