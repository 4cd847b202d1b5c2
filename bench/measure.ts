// The workload, identical for every target: warm-up, single-event appends, 100-event
// appends, loading a large aggregate with and without a snapshot, and a consumer catching
// up on the whole store. Only the `BenchTarget` interface is used, so every target is timed
// by the same code.
import { type BenchConfig, benchEvent, type BenchEventData, type BenchTarget } from './target.ts';
import { median, now, summarize, timed, type LatencySummary } from './stats.ts';

export interface Figures {
  readonly appendsPerSecBatch1: number;
  readonly eventsPerSecBatch100: number;
  readonly appendLatencyMs: LatencySummary;
  readonly loadNoSnapshotMs: number;
  readonly loadSnapshotMs: number;
  /** What the snapshot load did: the snapshot version it started from and the events it folded. */
  readonly snapshotLoad: { readonly snapshotVersion: number | null; readonly eventsFolded: number };
  readonly catchUpEventsPerSec: number;
  readonly catchUpEvents: number;
  /** The target's other ways to append (`BenchTarget.appendVariants`), timed the same way. */
  readonly variants: readonly VariantFigures[];
  readonly phaseSeconds: Readonly<Record<string, number>>;
}

export interface VariantFigures {
  readonly label: string;
  readonly appendsPerSecBatch1: number;
  readonly eventsPerSecBatch100: number;
  readonly appendLatencyMs: LatencySummary;
}

export const BATCH = 100;
export const AGGREGATE_STREAM = 'account-big';
export const WARM_STREAM = 'account-warm-0';

export async function measure(target: BenchTarget, dir: string, config: BenchConfig, log: (line: string) => void): Promise<Figures> {
  const phases: Record<string, number> = {};
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const { ms, value } = await timed(fn);
    phases[name] = Math.round(ms) / 1000;
    log(`  ${target.name}: ${name} ${(ms / 1000).toFixed(1)} s`);
    return value;
  };
  let stored = 0;
  type AppendFn = (stream: string, events: readonly BenchEventData[], expected: number) => Promise<number>;
  // Every append function numbers its events from 0, so each one writes the same payloads.
  const appender = (fn: AppendFn, counted: boolean) => {
    let eventNo = 0;
    const versions = new Map<string, number>();
    return async (stream: string, count: number): Promise<void> => {
      const events = Array.from({ length: count }, () => benchEvent(eventNo++));
      const expected = versions.get(stream) ?? 0;
      const next = await fn(stream, events, expected);
      if (next !== expected + count)
        throw new Error(`${target.name}: ${stream} at version ${next} after appending ${count} to ${expected}`);
      versions.set(stream, next);
      if (counted) stored += count;
    };
  };
  const append = appender((stream, events, expected) => target.append(stream, events, expected), true);

  /** Batch-1 appends (each awaited, latency per call), then batch-100 appends. */
  const appendPhases = async (label: string, write: (stream: string, count: number) => Promise<void>) => {
    const suffix = label ? ` (${label})` : '';
    const latencies: number[] = [];
    const batch1Ms = await phase(`append batch 1${suffix}`, async () => {
      const start = now();
      for (let i = 0; i < config.appends; i++) {
        const t0 = now();
        await write(`account-s${i % config.streams}`, 1);
        latencies.push(now() - t0);
      }
      return now() - start;
    });
    const batch100Ms = await phase(`append batch 100${suffix}`, async () => {
      const start = now();
      for (let i = 0; i < config.batchCalls; i++) await write(`account-b${i % 10}`, BATCH);
      return now() - start;
    });
    return {
      appendsPerSecBatch1: config.appends / (batch1Ms / 1000),
      eventsPerSecBatch100: (config.batchCalls * BATCH) / (batch100Ms / 1000),
      appendLatencyMs: summarize(latencies),
    };
  };

  await target.open(dir);

  const warmUpAppends = async (write: (stream: string, count: number) => Promise<void>): Promise<void> => {
    for (let i = 0; i < config.warmup; i++) await write(`account-warm-${i % 10}`, 1);
    for (let i = 0; i < Math.max(2, config.warmup / 50); i++) await write('account-warm-batch', BATCH);
  };
  await phase('warm-up', async () => {
    await warmUpAppends(append);
    await target.load(WARM_STREAM, { snapshot: false });
  });

  const appends = await appendPhases('', append);

  // The same appends through each variant (its own streams, the same payloads), e.g. raw Redis
  // writing both the stream and the partition log.
  const variants: VariantFigures[] = [];
  for (const variant of target.appendVariants ?? []) {
    const write = appender((stream, events, expected) => variant.append(stream, events, expected), false);
    await warmUpAppends(write); // so the timed appends also write the same payloads as above
    variants.push({ label: variant.label, ...(await appendPhases(variant.label, write)) });
  }

  // The aggregate is written in 500-event appends; building it is not timed.
  await phase('build aggregate', async () => {
    for (let left = config.aggregateEvents; left > 0; left -= 500) await append(AGGREGATE_STREAM, Math.min(500, left));
  });

  const load = async (snapshot: boolean) => {
    const warm = await target.load(AGGREGATE_STREAM, { snapshot }); // warm-up (and, with snapshots, writes one)
    if (warm.state.count !== config.aggregateEvents) throw new Error(`${target.name}: loaded ${warm.state.count} events`);
    const times: number[] = [];
    let last = warm;
    for (let i = 0; i < config.loadRepeats; i++) {
      const { ms, value } = await timed(() => target.load(AGGREGATE_STREAM, { snapshot }));
      if (value.version !== config.aggregateEvents || value.state.count !== config.aggregateEvents) {
        throw new Error(`${target.name}: load returned version ${value.version}, ${value.state.count} events`);
      }
      times.push(ms);
      last = value;
    }
    return { ms: median(times), last };
  };
  const plain = await phase('load, no snapshot', () => load(false));
  const snap = await phase('load, snapshot', () => load(true));

  if (target.prepareCatchUp) await phase('prepare catch-up (untimed)', () => target.prepareCatchUp!());

  // A consumer reading the whole store from the beginning: once to warm up, once timed.
  const catchUp = await phase('catch-up', async () => {
    let result = { ms: 0, handled: 0 };
    for (const run of ['warm', 'timed']) {
      const start = now();
      const { handled, stop } = await target.catchUp(`bench-${run}-${Date.now()}`, stored);
      result = { ms: now() - start, handled };
      await stop();
    }
    return result;
  });

  await target.close();
  return {
    ...appends,
    loadNoSnapshotMs: plain.ms,
    loadSnapshotMs: snap.ms,
    snapshotLoad: { snapshotVersion: snap.last.snapshotVersion ?? null, eventsFolded: snap.last.eventsFolded },
    catchUpEventsPerSec: catchUp.handled / (catchUp.ms / 1000),
    catchUpEvents: catchUp.handled,
    variants,
    phaseSeconds: phases,
  };
}
