// The core's index of a log partition: versions and offsets per stream, the duplicate-id window,
// and checkpoints that restore it exactly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHECKPOINT_IDS, ID_WINDOW, ID_WINDOW_SLACK, PartitionIndex } from '../../src/core/log/partition-index.ts';
import type { PartitionOwnerDriver, PartitionRange, StoredEvent } from '../../src/index.ts';

const event = (streamId: string, version: number, offset: number): Pick<StoredEvent, 'id' | 'streamId' | 'version' | 'position'> => ({
  id: `${streamId}/${version}`,
  streamId,
  version,
  position: { partition: 0, offset: BigInt(offset) },
});

/** A driver that serves a checkpoint and a tail of events, and counts what it was asked for. */
function logDriver(checkpoint: Uint8Array | undefined, tail: StoredEvent[]): PartitionOwnerDriver & { reads: PartitionRange[] } {
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
    readIndexCheckpoint: async () => checkpoint,
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

  it('ignores a checkpoint it cannot read and scans from the start', async () => {
    const driver = logDriver(new TextEncoder().encode('garbage'), []);
    const cold = new PartitionIndex(0);
    await cold.catchUp(driver);
    assert.deepEqual(driver.reads[0], { after: undefined, limit: 1000 });
  });
});
