// A cold read of index checkpoints: backwards from the end of the index partition, in growing
// windows, so it costs the checkpoints written since the last full one, not every checkpoint
// the log cleaner has not removed yet (segment.ms and the dirty ratio leave many of them in a
// long-running writer's partition).
import type { IndexCheckpoints } from '../../core/driver.ts';
import { hasApiError } from './errors.ts';
import { CheckpointSearch } from './index-checkpoints.ts';
import type { LogRecord, PartitionLog } from './log.ts';

/** One index partition, as the search reads it (read_committed). */
export interface IndexPartition {
  /** Log start offset and last stable offset: the offsets a read_committed reader may ask for are [start, end). */
  bounds(): Promise<{ readonly start: bigint; readonly end: bigint }>;
  /** Records from `from` on, about `maxBytes` of them (a first batch larger than that comes whole). */
  fetch(from: bigint, maxBytes: number): Promise<{ readonly records: readonly LogRecord[]; readonly next: bigint }>;
}

/** A Kafka partition read through the driver's read_committed reader. */
export function indexPartition(log: PartitionLog, topic: string, partition: number): IndexPartition {
  return {
    bounds: async () => {
      const [start, end] = await Promise.all([log.logStart(topic, partition), log.lastStable(topic, partition)]);
      return { start, end };
    },
    // Below the log start (retention moved it after `bounds`) the broker refuses the fetch: an
    // empty page, so the search asks for the bounds again.
    fetch: (from, maxBytes) =>
      log.fetch(topic, partition, from, 0, maxBytes).catch((error: unknown) => {
        if (hasApiError(error, 'OFFSET_OUT_OF_RANGE')) return { records: [], next: from };
        throw error;
      }),
  };
}

/** Offsets of the first window; each next one is twice as wide. */
export const FIRST_WINDOW = 16n;
/** Largest fetch asked for (PartitionLog's page). */
const MAX_BYTES = 256 * 1024;
/** Smallest: the broker returns at least one whole batch whatever it is asked. */
const MIN_BYTES = 512;
/** A transaction marker, or an aborted record whose size is unknown: a batch header and a small record. */
const MARKER_BYTES = 80;

/**
 * The last complete full checkpoint and the last complete delta after it. Windows of 16, 32,
 * 64, … offsets going down from the last stable offset, never below the log start; it stops at
 * the first complete full checkpoint (what lies below it is older), so it reads at most about
 * twice the offsets from that checkpoint to the end, plus 16. A fetch asks for about the
 * window's bytes (estimated from what was read so far), so a page does not run far into the
 * window above, already read.
 */
export async function searchIndexCheckpoints(log: IndexPartition): Promise<IndexCheckpoints> {
  let { start, end } = await log.bounds();
  const search = new CheckpointSearch();
  const size = new SizeEstimate();
  let hi = end;
  for (let width = FIRST_WINDOW; hi > start && !search.done; width *= 2n) {
    const lo = hi - start > width ? hi - width : start;
    const records: LogRecord[] = [];
    for (let at = lo; at < hi; ) {
      const page = await log.fetch(at, size.bytesFor(hi - at));
      if (page.next <= at) {
        // Nothing readable from `at`: retention removed it meanwhile, so go on from the new
        // start. Otherwise what was found above stands (a missing checkpoint only costs the
        // tail scan it would have saved).
        start = (await log.bounds()).start;
        if (start <= at) return search.result;
        at = start;
        continue;
      }
      const mine = page.records.filter((r) => r.offset >= at && r.offset < hi);
      const past = page.next > hi ? page.next - hi : 0n; // the page ran into the window above
      size.add(mine, page.next - at - past);
      records.push(...mine);
      at = page.next;
    }
    search.addWindow(records);
    hi = lo;
  }
  return search.result;
}

/**
 * Bytes per offset of the index partition, from what was read so far: the median record (a few
 * chunks of 512 KiB among small deltas would make a mean ask for pages running far into the
 * window above; they come whole whatever is asked) and the markers between them.
 */
class SizeEstimate {
  readonly #sizes: number[] = [];
  #offsets = 0n;

  add(records: readonly LogRecord[], offsets: bigint): void {
    if (offsets <= 0n) return;
    for (const r of records) {
      let bytes = MARKER_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
      for (const [k, v] of r.headers) bytes += 2 + (k?.length ?? 0) + (v?.length ?? 0);
      this.#sizes.push(bytes);
    }
    this.#offsets += offsets;
  }

  /** What `offsets` offsets should take; the largest page before anything was read. */
  bytesFor(offsets: bigint): number {
    if (this.#offsets === 0n) return MAX_BYTES;
    const sorted = [...this.#sizes].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? MARKER_BYTES;
    const share = sorted.length / Number(this.#offsets);
    const bytes = Math.ceil((median * share + MARKER_BYTES * (1 - share)) * Number(offsets));
    return Math.min(MAX_BYTES, Math.max(MIN_BYTES, bytes));
  }
}
