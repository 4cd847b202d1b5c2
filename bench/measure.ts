// The workload, identical for every target: warm-up, single-event appends, 100-event
// appends, loading a large aggregate with and without a snapshot, and a consumer catching
// up on the whole store. Only the `BenchTarget` interface is used, so every target is timed
// by the same code.
import { benchEvent, type BenchTarget } from './target.ts';
import { median, now, summarize, timed, type LatencySummary } from './stats.ts';

export interface BenchConfig {
  /** Single-event appends (batch 1), each awaited before the next. */
  readonly appends: number;
  /** Appends of 100 events each. */
  readonly batchCalls: number;
  /** Events in the aggregate that is loaded. */
  readonly aggregateEvents: number;
  /** Timed loads per load figure (the median is reported). */
  readonly loadRepeats: number;
  /** Single-event appends before anything is timed. */
  readonly warmup: number;
  /** Streams the batch-1 appends rotate over. */
  readonly streams: number;
}

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
  readonly phaseSeconds: Readonly<Record<string, number>>;
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
  let eventNo = 0;
  const versions = new Map<string, number>();
  const append = async (stream: string, count: number): Promise<void> => {
    const events = Array.from({ length: count }, () => benchEvent(eventNo++));
    const expected = versions.get(stream) ?? 0;
    const next = await target.append(stream, events, expected);
    if (next !== expected + count) throw new Error(`${target.name}: ${stream} at version ${next} after appending ${count} to ${expected}`);
    versions.set(stream, next);
    stored += count;
  };

  await target.open(dir);

  await phase('warm-up', async () => {
    for (let i = 0; i < config.warmup; i++) await append(`account-warm-${i % 10}`, 1);
    for (let i = 0; i < Math.max(2, config.warmup / 50); i++) await append('account-warm-batch', BATCH);
    await target.load(WARM_STREAM, { snapshot: false });
  });

  const latencies: number[] = [];
  const batch1Ms = await phase('append batch 1', async () => {
    const start = now();
    for (let i = 0; i < config.appends; i++) {
      const t0 = now();
      await append(`account-s${i % config.streams}`, 1);
      latencies.push(now() - t0);
    }
    return now() - start;
  });

  const batch100Ms = await phase('append batch 100', async () => {
    const start = now();
    for (let i = 0; i < config.batchCalls; i++) await append(`account-b${i % 10}`, BATCH);
    return now() - start;
  });

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
    appendsPerSecBatch1: config.appends / (batch1Ms / 1000),
    eventsPerSecBatch100: (config.batchCalls * BATCH) / (batch100Ms / 1000),
    appendLatencyMs: summarize(latencies),
    loadNoSnapshotMs: plain.ms,
    loadSnapshotMs: snap.ms,
    snapshotLoad: { snapshotVersion: snap.last.snapshotVersion ?? null, eventsFolded: snap.last.eventsFolded },
    catchUpEventsPerSec: catchUp.handled / (catchUp.ms / 1000),
    catchUpEvents: catchUp.handled,
    phaseSeconds: phases,
  };
}
