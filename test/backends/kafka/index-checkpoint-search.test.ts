// The backward search of index checkpoints over random histories of an index partition (full
// checkpoints and deltas committed, aborted, torn, left as strays by compaction, foreign
// records, a moved log start, an open transaction past the stable offset), against the
// simplest forward reader (index-checkpoint-reference.ts). A seeded generator: a failure names
// its seed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FIRST_WINDOW, type IndexPartition, searchIndexCheckpoints } from '../../../src/backends/kafka/index-checkpoint-read.ts';
import { CheckpointSearch, checkpointRecords } from '../../../src/backends/kafka/index-checkpoints.ts';
import type { LogRecord } from '../../../src/backends/kafka/log.ts';
import type { OutgoingRecord } from '../../../src/backends/kafka/records.ts';
import { referenceCheckpoints } from './index-checkpoint-reference.ts';

const HISTORIES = 300;

function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** One offset of the partition: a record readers see, or a marker / aborted record (no record). */
interface Entry {
  readonly record: LogRecord | undefined;
  readonly bytes: number;
}

interface History {
  readonly entries: readonly Entry[];
  readonly start: number;
  /** Last stable offset: entries at or past it belong to an open transaction. */
  readonly end: number;
}

/** Random bytes that checkpoints are views of (different offsets and lengths: different checkpoints). */
const SHARED = (() => {
  const rand = random(1);
  return Buffer.from(Array.from({ length: 1_700_000 }, () => Math.floor(rand() * 256)));
})();

const target = { topic: 't', partition: 0 };

function history(rand: () => number): History {
  const entries: Entry[] = [];
  const size = (r: OutgoingRecord) => 70 + r.key.length + r.value.length + [...r.headers].reduce((n, [k, v]) => n + k.length + v.length, 0);
  const write = (records: readonly OutgoingRecord[], visible: boolean) => {
    for (const r of records) {
      const record = { offset: BigInt(entries.length), key: r.key, value: r.value, headers: [...r.headers], timestamp: r.timestamp };
      entries.push({ record: visible ? record : undefined, bytes: size(r) });
    }
  };
  const marker = () => entries.push({ record: undefined, bytes: 80 });
  // Some histories hold long runs of deltas after their last full checkpoint: many windows back.
  const fullShare = [0.35, 0.05, 0.01][Math.floor(rand() * 3)]!;
  const bigShare = [0, 0.05, 0.25, 0.7][Math.floor(rand() * 4)]!;
  const checkpoint = () => {
    const big = rand() < bigShare;
    const length = big ? 512 * 1024 + Math.floor(rand() * 1_000_000) : 1 + Math.floor(rand() * 3000);
    const from = Math.floor(rand() * (SHARED.length - length));
    return checkpointRecords(target, SHARED.subarray(from, from + length), rand() < fullShare ? 'full' : 'delta');
  };
  const steps = Math.floor(rand() * 150);
  for (let step = 0; step < steps; step++) {
    const records = checkpoint();
    const what = rand();
    const cut = 1 + Math.floor(rand() * (records.length - 1 || 1));
    if (what < 0.55) {
      write(records, true); // committed
      marker();
    } else if (what < 0.65) {
      write(records, false); // aborted: its records are never returned
      marker();
    } else if (what < 0.75) {
      write(records.slice(0, records.length > 1 ? cut : 0), true); // torn: without its last chunk(s)
    } else if (what < 0.85) {
      write(records.slice(records.length > 1 ? cut : 1), true); // strays: what compaction left of an older one
    } else if (what < 0.92) {
      const record = { offset: BigInt(entries.length), key: Buffer.from('x'), value: Buffer.from('foreign'), headers: [], timestamp: 0n };
      entries.push({ record, bytes: 90 }); // a record eventfold did not write
    } else {
      write(records, true); // written without a transaction
    }
  }
  const end = entries.length;
  if (rand() < 0.2) write(checkpoint(), true); // an open transaction: past the stable offset
  const start = rand() < 0.3 ? Math.floor(rand() * (end + 1)) : 0;
  return { entries, start, end };
}

/**
 * The history as the broker serves it, counting what it was asked. Now and then a page comes
 * whole whatever was asked (as PartitionLog serves one from its page cache, uncounted), running
 * into the window above.
 */
function served(h: History, rand: () => number, removedBelow = h.start) {
  const stats = { fetches: 0, records: 0, lowest: h.end };
  let asked = false;
  const log: IndexPartition = {
    // The start as it was when first asked; retention has removed more since.
    bounds: async () => {
      const start = asked ? removedBelow : h.start;
      asked = true;
      return { start: BigInt(start), end: BigInt(h.end) };
    },
    fetch: async (fromOffset, asked) => {
      const from = Number(fromOffset);
      assert.ok(from >= h.start && from < h.end, `fetch at ${from} outside [${h.start}, ${h.end})`);
      // Retention removed it after the search had asked for the bounds: an empty answer.
      if (from < removedBelow) return { records: [], next: fromOffset };
      const cached = rand() < 0.2;
      const maxBytes = cached ? 256 * 1024 : asked;
      stats.lowest = Math.min(stats.lowest, from);
      const records: LogRecord[] = [];
      let at = from;
      // Whole batches up to maxBytes, at least one (a trailing partial batch is dropped).
      for (let bytes = 0; at < h.end; at++) {
        bytes += h.entries[at]!.bytes;
        if (bytes > maxBytes && at > from) break;
        const record = h.entries[at]!.record;
        if (record) records.push(record);
      }
      if (!cached) {
        stats.fetches++;
        stats.records += records.length;
      }
      return { records, next: BigInt(at) };
    },
  };
  return { log, stats };
}

const visible = (h: History, from = h.start): LogRecord[] => h.entries.slice(from, h.end).flatMap((e) => (e.record ? [e.record] : []));

const same = (actual: Uint8Array | undefined, expected: Uint8Array | undefined, what: string) =>
  assert.ok(
    actual === expected || (actual && expected && Buffer.from(actual).equals(Buffer.from(expected))),
    `${what}: ${actual?.byteLength} bytes, expected ${expected?.byteLength}`,
  );

describe('backward search of index checkpoints', () => {
  it(`finds what a full forward scan finds, reading back only about twice the offsets from the last full checkpoint (${HISTORIES} random histories)`, async () => {
    let fetched = 0;
    let all = 0;
    let withFull = 0;
    for (let seed = 1; seed <= HISTORIES; seed++) {
      const rand = random(seed);
      const h = history(rand);
      const expected = referenceCheckpoints(visible(h));
      const { log, stats } = served(h, rand);
      const actual = await searchIndexCheckpoints(log);
      const at = `seed ${seed} (${h.end - h.start} offsets from ${h.start})`;
      same(actual.full, expected.full, `${at}: full`);
      same(actual.delta, expected.delta, `${at}: delta`);
      if (expected.fullAt === undefined) {
        assert.equal(stats.lowest, h.start, `${at}: without a full checkpoint it reads down to the log start`);
      } else {
        withFull++;
        const back = h.end - Number(expected.fullAt);
        const floor = Math.max(h.start, h.end - 2 * back - Number(FIRST_WINDOW));
        assert.ok(stats.lowest >= floor, `${at}: read down to ${stats.lowest}, the full checkpoint starts at ${expected.fullAt}`);
        // What it read past its windows (a page running into the window above) stays small.
        const needed = visible(h, stats.lowest).length;
        // (Asking for the largest page every time reads about twice what the windows hold.)
        assert.ok(stats.records <= 1.5 * needed + 8, `${at}: ${stats.records} records fetched, ${needed} in the windows`);
        const windows = Math.ceil(Math.log2((h.end - stats.lowest) / Number(FIRST_WINDOW) + 1));
        const big = h.entries.slice(stats.lowest, h.end).filter((e) => e.bytes > 256 * 1024).length;
        // A fetch or two per window and per chunk larger than a page, a few more where bytes were underestimated.
        assert.ok(stats.fetches <= 2 * (windows + big) + 6, `${at}: ${stats.fetches} fetches for ${windows} windows`);
      }
      fetched += stats.records;
      all += visible(h).length;
    }
    assert.ok(withFull > HISTORIES / 2, `most histories have a complete full checkpoint (${withFull})`);
    console.log(`backward search: ${fetched} records fetched over ${HISTORIES} histories; a full scan: ${all}`);
  });

  it('retention moving the log start during the search: it goes on from the new start', async () => {
    for (let seed = 1; seed <= HISTORIES; seed++) {
      const rand = random(20_000 + seed);
      const h = history(rand);
      const removedBelow = h.start + Math.floor(rand() * (h.end - h.start + 1));
      // What is left after retention: the forward reader over the records from the new start.
      const expected = referenceCheckpoints(visible(h, removedBelow));
      const actual = await searchIndexCheckpoints(served(h, rand, removedBelow).log);
      same(actual.full, expected.full, `seed ${seed} (removed below ${removedBelow}): full`);
      same(actual.delta, expected.delta, `seed ${seed} (removed below ${removedBelow}): delta`);
    }
  });

  it('gives the same answer whatever the windows (a checkpoint straddling any two of them)', () => {
    for (let seed = 1; seed <= HISTORIES; seed++) {
      const rand = random(10_000 + seed);
      const h = history(rand);
      const expected = referenceCheckpoints(visible(h));
      const search = new CheckpointSearch();
      for (let hi = h.end; hi > h.start && !search.done; ) {
        const lo = Math.max(h.start, hi - 1 - Math.floor(rand() * 12));
        search.addWindow(visible({ ...h, end: hi }, lo));
        hi = lo;
      }
      same(search.result.full, expected.full, `seed ${seed}: full`);
      same(search.result.delta, expected.delta, `seed ${seed}: delta`);
    }
  });
});
