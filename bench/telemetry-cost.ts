// What telemetry costs on the append path of the in-memory SQLite store.
//
//   node bench/telemetry-cost.ts                 # or: npm run bench:telemetry
//   node bench/telemetry-cost.ts --rounds 51 --n 2000
//
// Three set-ups of a store:
//   off     createEventStore({ telemetry: false }): @opentelemetry/api is never loaded;
//   no-sdk  the default, with @opentelemetry/api installed and no SDK registered (the api's no-ops);
//   sdk     an SDK as an application sets one up: AsyncLocalStorage context manager, a tracer
//           provider with a BatchSpanProcessor (its exporter drops the spans), and a meter
//           provider whose reader is never collected (metrics recorded, not exported).
// One child process per set-up, so each has exactly its own OpenTelemetry globals; each compares
// its set-up with off (the `off` row compares off with off: the noise floor of the machine). Each holds both stores and runs interleaved rounds (A B,
// then B A, …) of `--n` batch-1 appends per store, so the machine's drift hits both alike; the
// figure is the ratio of the two in each round. Claims only ratios from one run.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { sqlite } from '../src/backends/sqlite/index.ts';
import { createEventStore, defineEvent, type TelemetrySetting } from '../src/index.ts';
import { median, now } from './stats.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '31' }, n: { type: 'string', default: '2000' }, child: { type: 'string' } },
});
const n = Number(values.n);

const rounds = Number(values.rounds);

if (values.child !== undefined) {
  process.stdout.write(`${JSON.stringify(await child(values.child as 'off' | 'no-sdk' | 'sdk'))}\n`);
} else {
  const self = fileURLToPath(import.meta.url);
  console.log(`| set-up | µs per append (median of ${rounds} rounds) | off, same rounds | ratio to off (median) | ratio range |`);
  console.log('|---|---|---|---|---|');
  for (const mode of ['off', 'no-sdk', 'sdk'] as const) {
    const out = execFileSync(process.execPath, [self, '--child', mode, '--n', String(n), '--rounds', String(rounds)], { encoding: 'utf8' });
    const { on, off } = JSON.parse(out) as { on: number[]; off: number[] };
    const ratios = on.map((v, i) => v / off[i]!);
    console.log(
      `| ${mode} | ${median(on).toFixed(1)} | ${median(off).toFixed(1)} | ${median(ratios).toFixed(3)} | ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)} |`,
    );
  }
  console.log(`\n${rounds} rounds of ${n} batch-1 appends per store, in-memory SQLite, node ${process.version}`);
}

/** µs per append, per round, of a store set up as `mode` says and of a store with telemetry off. */
async function child(mode: 'off' | 'no-sdk' | 'sdk'): Promise<{ on: number[]; off: number[] }> {
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
  const stores = {
    on: createEventStore({ driver: sqlite(), events: [Order], ...(telemetry === undefined ? {} : { telemetry }) }),
    off: createEventStore({ driver: sqlite(), events: [Order], telemetry: false }),
  };
  const block = async (which: 'on' | 'off', count: number): Promise<number> => {
    const store = stores[which];
    const start = now();
    for (let i = 0; i < count; i++) await store.append(`order-${i % 100}`, Order({ orderId: `order-${i % 100}`, total: i }));
    return ((now() - start) * 1000) / count;
  };
  await block('on', Math.min(n, 5000)); // warm-up
  await block('off', Math.min(n, 5000));
  const out = { on: [] as number[], off: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    for (const which of order) out[which].push(await block(which, n));
  }
  await stores.on.close();
  await stores.off.close();
  return out;
}
