// The core's index of a log partition: versions and offsets per stream, the duplicate-id window,
// and checkpoints that restore it exactly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeIndexDelta } from '../../src/core/log/index-checkpoint.ts';
import { CHECKPOINT_IDS, ID_WINDOW, ID_WINDOW_SLACK, PartitionIndex } from '../../src/core/log/partition-index.ts';
import type { PartitionOwnerDriver, PartitionRange, StoredEvent } from '../../src/index.ts';

const event = (streamId: string, version: number, offset: number): Pick<StoredEvent, 'id' | 'streamId' | 'version' | 'position'> => ({
  id: `${streamId}/${version}`,
  streamId,
  version,
  position: { partition: 0, offset: BigInt(offset) },
});

/** A driver that serves a checkpoint and a tail of events, and counts what it was asked for. */
function logDriver(
  full: Uint8Array | undefined,
  tail: StoredEvent[],
  delta?: Uint8Array,
): PartitionOwnerDriver & { reads: PartitionRange[] } {
  const reads: PartitionRange[] = [];
  return {
    reads,
    name: 'test-log',
    partitions: 1,
    concurrency: 'partition-owner',
    capabilities: { timeIndex: false },
    appendLimits: { maxAppends: 1, maxBytes: 1 },
    open: async () => undefined,
    close: async () => undefined,
    readPartition: async (_partition, range) => {
      reads.push(range);
      return tail.filter((e) => range.after === undefined || e.position.offset > range.after).slice(0, range.limit);
    },
    partitionHead: async () => undefined,
    readSnapshot: async () => undefined,
    writeSnapshot: async () => undefined,
    readCheckpoint: async () => undefined,
    writeCheckpoint: async () => undefined,
    deleteCheckpoint: async () => undefined,
    claimPartition: async () => {
      throw new Error('not used');
    },
    readIndexCheckpoints: async () => ({ full, delta }),
  };
}

describe('partition index', () => {
  it('keeps the last ID_WINDOW event ids for the duplicate check, and every offset', () => {
    const index = new PartitionIndex(0);
    // Past the window and its slack: the oldest ids are dropped down to the window, in one pass.
    const total = ID_WINDOW + ID_WINDOW_SLACK + 1;
    for (let i = 0; i < total; i++) index.add(event(`s-${i % 7}`, Math.floor(i / 7) + 1, i * 2));
    const idOf = (i: number): string => `s-${i % 7}/${Math.floor(i / 7) + 1}`;
    assert.equal(index.size, total);
    assert.equal(index.idOffset('s-0/1'), undefined, 'the oldest id left the window');
    assert.equal(index.idOffset(idOf(total - ID_WINDOW - 1)), undefined, 'so did every id before the window');
    assert.equal(index.idOffset(idOf(total - ID_WINDOW)), BigInt((total - ID_WINDOW) * 2), 'the window starts right after');
    assert.equal(index.idOffset(idOf(total - 1)), BigInt((total - 1) * 2));
    assert.equal(index.offsetOf('s-0', 1), 0n, 'offsets are all kept');
    assert.equal(index.version('s-3'), Math.floor((total - 1 - 3) / 7) + 1);
    // Many more events: the window stays bounded.
    for (let i = total; i < total + 3 * ID_WINDOW; i++) index.add(event(`s-${i % 7}`, Math.floor(i / 7) + 1, i * 2));
    assert.equal(index.idOffset(idOf(total + ID_WINDOW)), undefined, 'old ids keep leaving');
    assert.equal(index.idOffset(idOf(total + 3 * ID_WINDOW - 1)), BigInt((total + 3 * ID_WINDOW - 1) * 2));
  });

  it('restores a checkpoint exactly and reads only the tail after it', async () => {
    const source = new PartitionIndex(0);
    for (let i = 0; i < 50_000; i++) source.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    const { bytes, through } = source.checkpoint();
    assert.equal(through, 49_999n);
    const tail = [50_000, 50_001].map((offset, i) => ({
      ...event('s-new', i + 1, offset),
      type: 't',
      schemaVersion: 1,
      codec: 'json',
      data: new Uint8Array(),
      metadata: '{}',
      time: 0,
    }));
    const driver = logDriver(bytes, tail);
    const cold = new PartitionIndex(0);
    await cold.catchUp(driver);
    assert.deepEqual(driver.reads[0], { after: 49_999n, limit: 1000 }, 'the scan starts after the checkpoint');
    assert.equal(cold.size, 50_002);
    assert.equal(cold.version('s-4'), 5000);
    assert.equal(cold.offsetOf('s-4', 1234), 12_334n);
    assert.equal(cold.version('s-new'), 2);
    assert.equal(cold.idOffset('s-9/5000'), 49_999n, 'a recent id is in the window');
    assert.equal(cold.idOffset(`s-0/${5000 - CHECKPOINT_IDS / 10}`), undefined, 'an id older than the checkpoint carries is not');
    assert.equal(cold.idOffset(`s-0/${5001 - CHECKPOINT_IDS / 10}`), BigInt(50_000 - CHECKPOINT_IDS), 'the oldest it carries');
  });

  it('restores a full checkpoint and the delta after it, and reads only the tail after the delta', async () => {
    const source = new PartitionIndex(0);
    for (let i = 0; i < 40_000; i++) source.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    const full = source.checkpoint('full');
    assert.equal(full.through, 39_999n);
    // After it: 5,000 more events of s-0..s-4 and a new stream, then a delta.
    for (let i = 0; i < 5_000; i++)
      source.add(event(i < 4_000 ? `s-${i % 5}` : 's-late', i < 4_000 ? 4001 + Math.floor(i / 5) : i - 3_999, 40_000 + i));
    const delta = source.checkpoint('delta');
    assert.equal(delta.through, 44_999n);
    const decoded = decodeIndexDelta(delta.bytes);
    assert.equal(decoded?.from, 39_999n);
    assert.deepEqual(
      [...decoded!.streams].map(([id, offsets]) => [id, offsets.length]),
      [
        ['s-0', 800],
        ['s-1', 800],
        ['s-2', 800],
        ['s-3', 800],
        ['s-4', 800],
        ['s-late', 1000],
      ],
      'a delta holds only what was added',
    );
    assert.equal(decoded!.ids.length, 5_000);
    const driver = logDriver(full.bytes, [], delta.bytes);
    const cold = new PartitionIndex(0);
    await cold.catchUp(driver);
    assert.deepEqual(driver.reads[0], { after: 44_999n, limit: 1000 }, 'the scan starts after the delta');
    assert.equal(cold.size, 45_000);
    assert.equal(cold.version('s-4'), 4800);
    assert.equal(cold.version('s-7'), 4000);
    assert.equal(cold.version('s-late'), 1000);
    assert.equal(cold.offsetOf('s-4', 4800), 43_999n);
    assert.equal(cold.offsetOf('s-4', 4000), 39_994n);
    assert.equal(cold.idOffset('s-late/1000'), 44_999n, "the delta's ids are in the window");
    assert.equal(cold.idOffset('s-9/4000'), 39_999n, "and the full checkpoint's");
    // The restored index checkpoints on as its writer would have: the next one is a delta from the same full one.
    for (let i = 0; i < 1_000; i++) cold.add(event('s-late', 1001 + i, 45_000 + i));
    assert.equal(cold.checkpointDue(1_000), 'delta');
    const next = cold.checkpoint('delta');
    const again = new PartitionIndex(0);
    await again.catchUp(logDriver(full.bytes, [], next.bytes));
    assert.equal(again.size, 46_000);
    assert.equal(again.version('s-4'), 4800, 'the second delta still holds what the first held');
    assert.equal(again.version('s-late'), 2000);
  });

  it('uses a delta only where it fits the full checkpoint', async () => {
    const source = new PartitionIndex(0);
    for (let i = 0; i < 1_000; i++) source.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    const first = source.checkpoint('full');
    for (let i = 1_000; i < 1_500; i++) source.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    const deltaOfFirst = source.checkpoint('delta');
    for (let i = 1_500; i < 2_000; i++) source.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    const deltaOfFirstLater = source.checkpoint('delta');
    const second = source.checkpoint('full'); // through 1,999
    const restore = async (full: Uint8Array, delta: Uint8Array) => {
      const driver = logDriver(full, [], delta);
      const cold = new PartitionIndex(0);
      await cold.catchUp(driver);
      return { after: driver.reads[0]!.after, size: cold.size, version: cold.version('s-3') };
    };
    assert.deepEqual(await restore(first.bytes, deltaOfFirst.bytes), { after: 1_499n, size: 1_500, version: 150 });
    assert.deepEqual(
      await restore(second.bytes, deltaOfFirst.bytes),
      { after: 1_999n, size: 2_000, version: 200 },
      'a delta the full one already covers is ignored',
    );
    const middle = new PartitionIndex(0);
    for (let i = 0; i < 1_200; i++) middle.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    const fullAt1200 = middle.checkpoint('full');
    assert.deepEqual(
      await restore(fullAt1200.bytes, deltaOfFirstLater.bytes),
      { after: 1_999n, size: 2_000, version: 200 },
      "a delta of an older full one applies past this one's end",
    );
    for (let i = 2_000; i < 2_100; i++) source.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    const deltaOfSecond = source.checkpoint('delta'); // from 1,999
    assert.deepEqual(
      await restore(first.bytes, deltaOfSecond.bytes),
      { after: 999n, size: 1_000, version: 100 },
      'a delta that leaves a gap is ignored',
    );
    assert.deepEqual(await restore(first.bytes, new TextEncoder().encode('EFD1garbage')), { after: 999n, size: 1_000, version: 100 });
  });

  it('a full checkpoint whose write failed is not the base of the next deltas: the next one is full again', () => {
    const index = new PartitionIndex(0);
    for (let i = 0; i < 1_000; i++) index.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    const stored = index.checkpoint('full'); // through 999
    for (let i = 1_000; i < 1_300; i++) index.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    index.checkpoint('full').failed(); // through 1,299, never stored
    for (let i = 1_300; i < 1_400; i++) index.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
    assert.equal(index.checkpointDue(100), 'full', 'a quarter past the stored full one (999): full again');
    const delta = decodeIndexDelta(index.checkpoint('delta').bytes);
    assert.equal(delta?.from, 999n, 'a delta is made against the stored full checkpoint');
    assert.ok(stored.through === 999n);
    // A failure of an older full checkpoint does not undo a newer one.
    const older = index.checkpoint('full');
    index.checkpoint('full');
    older.failed();
    assert.equal(decodeIndexDelta(index.checkpoint('delta').bytes)?.from, 1_399n);
  });

  it('spaces full checkpoints by a quarter of the index, with deltas every interval between', () => {
    const index = new PartitionIndex(0);
    const kinds: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      index.add(event(`s-${i % 10}`, Math.floor(i / 10) + 1, i));
      const kind = index.checkpointDue(1_000);
      if (kind) {
        kinds.push(`${i + 1}:${kind}`);
        index.checkpoint(kind);
      }
    }
    assert.deepEqual(kinds.slice(0, 6), ['1000:full', '2000:full', '3000:full', '4000:full', '5000:full', '6000:delta']);
    const fulls = kinds.filter((k) => k.endsWith(':full')).map((k) => Number(k.split(':')[0]));
    assert.equal(kinds.length, 20, 'one checkpoint per 1,000 events');
    for (let i = 1; i < fulls.length; i++)
      assert.ok(fulls[i]! - fulls[i - 1]! >= Math.min(1_000, fulls[i - 1]! / 4), `full checkpoints at ${fulls.join(', ')}`);
    assert.ok(fulls.length <= 10, `fewer full checkpoints than intervals (${fulls.join(', ')})`);
  });

  it('ignores a checkpoint it cannot read and scans from the start', async () => {
    const driver = logDriver(new TextEncoder().encode('garbage'), []);
    const cold = new PartitionIndex(0);
    await cold.catchUp(driver);
    assert.deepEqual(driver.reads[0], { after: undefined, limit: 1000 });
  });
});
