// What telemetry costs on the append path of the in-memory SQLite store.
//
//   node bench/telemetry-cost.ts                 # or: npm run bench:telemetry
//   node bench/telemetry-cost.ts --rounds 9 --n 20000
//
// Three set-ups, each in a fresh child process (so each has exactly its own OpenTelemetry
// globals), in interleaved rounds (off, no SDK, SDK, off, …):
//   off     createEventStore({ telemetry: false }): @opentelemetry/api is never loaded;
//   no-sdk  the default, with @opentelemetry/api installed and no SDK registered (the api's no-ops);
//   sdk     an SDK as an application sets one up: AsyncLocalStorage context manager, a tracer
//           provider with a BatchSpanProcessor (its exporter drops the spans), and a meter
//           provider whose reader is never collected (metrics recorded, not exported).
// Each child warms up, then times `--n` batch-1 appends; the parent prints µs per append per
// round and each set-up's ratio to `off` in the same round. Claims only ratios from one run.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { sqlite } from '../src/backends/sqlite/index.ts';
import { createEventStore, defineEvent, type TelemetrySetting } from '../src/index.ts';
import { median, now } from './stats.ts';

const MODES = ['off', 'no-sdk', 'sdk'] as const;
type Mode = (typeof MODES)[number];

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '7' }, n: { type: 'string', default: '20000' }, child: { type: 'string' } },
});
const n = Number(values.n);

if (values.child !== undefined) {
  process.stdout.write(`${await child(values.child as Mode)}\n`);
} else {
  const rounds = Number(values.rounds);
  const results: Record<Mode, number[]> = { off: [], 'no-sdk': [], sdk: [] };
  const self = fileURLToPath(import.meta.url);
  for (let r = 0; r < rounds; r++) {
    for (const mode of MODES) {
      const out = execFileSync(process.execPath, [self, '--child', mode, '--n', String(n)], { encoding: 'utf8' });
      results[mode].push(Number(out.trim()));
    }
    console.error(`round ${r + 1}: ${MODES.map((m) => `${m} ${results[m][r]!.toFixed(1)} µs`).join(', ')}`);
  }
  const ratios = (mode: Mode) => results[mode].map((v, i) => v / results.off[i]!);
  console.log(`| set-up | µs per append (median of ${rounds} rounds) | ratio to off (median) | ratio range |`);
  console.log('|---|---|---|---|');
  for (const mode of MODES) {
    const rs = ratios(mode);
    console.log(
      `| ${mode} | ${median(results[mode]).toFixed(1)} | ${median(rs).toFixed(3)} | ${Math.min(...rs).toFixed(3)}–${Math.max(...rs).toFixed(3)} |`,
    );
  }
  console.log(`\n${n} batch-1 appends per round and set-up, in-memory SQLite, node ${process.version}`);
}

/** µs per append in this process, set up as `mode` says. */
async function child(mode: Mode): Promise<number> {
  let telemetry: TelemetrySetting | undefined = mode === 'off' ? false : undefined;
  if (mode === 'sdk') {
    const { context, metrics, trace } = await import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    const { BatchSpanProcessor, TracerProvider } = await import('@opentelemetry/sdk-trace');
    const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics');
    class Idle extends MetricReader {
      protected override async onShutdown(): Promise<void> {}
      protected override async onForceFlush(): Promise<void> {}
    }
    const exporter = { export: (_spans: unknown[], done: (r: { code: 0 }) => void) => done({ code: 0 }), shutdown: async () => {} };
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter })] }));
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new Idle()] }));
    telemetry = true;
  }
  const Order = defineEvent({ type: 'Order', schema: z.object({ orderId: z.string(), total: z.number() }) });
  const store = createEventStore({ driver: sqlite(), events: [Order], ...(telemetry === undefined ? {} : { telemetry }) });
  const append = (i: number) => store.append(`order-${i % 100}`, Order({ orderId: `order-${i % 100}`, total: i }));
  for (let i = 0; i < Math.min(n, 5000); i++) await append(i); // warm-up
  const start = now();
  for (let i = 0; i < n; i++) await append(i);
  const us = ((now() - start) * 1000) / n;
  await store.close();
  return us;
}
