// The state topic (snapshots and subscription checkpoints, read as a table) is compacted by the
// broker: open() sets its compaction threshold, and reads are compacted, so a cold process reads
// the newest value per key plus what came after the last compaction, not every write.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL, uniqueName } from '../../services/env.ts';
import { admin, dropNamespace } from './support.ts';

const namespace = uniqueName('state');
after(() => dropNamespace('public', namespace));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('pulsar state topic', () => {
  it('is compacted: a cold read after a compaction gets each key newest value and the tail, receiving a few messages, not every write', {
    timeout: 120_000,
  }, async () => {
    const prefix = uniqueName('st');
    const driver = () => pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace, prefix, partitions: 1 });
    const writer = driver();
    await writer.open();
    const topicPath = `persistent/${writer.names.state.slice('persistent://'.length)}`;
    const WRITES = 200;
    try {
      for (let i = 1; i <= WRITES; i++) {
        await writer.writeCheckpoint('kept', [{ partition: 0, offset: BigInt(i) }]);
        await writer.writeCheckpoint('dropped', [{ partition: 0, offset: BigInt(i) }]);
      }
      await writer.deleteCheckpoint('dropped');
    } finally {
      await writer.close();
    }
    const threshold = await admin('GET', `${topicPath}/compactionThreshold`);
    assert.equal(Number(await threshold.text()), 4 * 1024 * 1024, 'open() set the compaction threshold');

    // Compact now (the threshold would start it after 4 MiB), and wait for it to finish.
    const started = await admin('PUT', `${topicPath}/compaction`);
    assert.ok(started.ok || started.status === 409, `compaction answered ${started.status}`);
    for (let status = ''; status !== 'SUCCESS'; ) {
      await sleep(200);
      const res = await admin('GET', `${topicPath}/compaction`);
      status = ((await res.json()) as { status: string }).status;
      assert.notEqual(status, 'ERROR', 'compaction failed');
    }

    const cold = driver();
    await cold.open();
    try {
      const before = cold.messagesReceived;
      assert.deepEqual(await cold.readCheckpoint('kept'), [{ partition: 0, offset: BigInt(WRITES) }]);
      assert.equal(await cold.readCheckpoint('dropped'), undefined, 'a deleted key stays deleted after compaction');
      const received = cold.messagesReceived - before;
      assert.ok(received <= 5, `a cold read received ${received} messages for ${2 * WRITES + 1} writes`);
      // Writes after the compaction are read on top of it.
      await cold.writeCheckpoint('kept', [{ partition: 0, offset: 9999n }]);
    } finally {
      await cold.close();
    }
    const later = driver();
    await later.open();
    try {
      assert.deepEqual(await later.readCheckpoint('kept'), [{ partition: 0, offset: 9999n }]);
    } finally {
      await later.close();
    }
  });
});
