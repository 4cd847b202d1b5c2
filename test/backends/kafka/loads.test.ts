// Aggregate loads on Kafka: a process that has not read the partition yet loads from the
// snapshot (in the compacted snapshots topic) plus a scan of the partition tail from the offset
// the snapshot covers, filtered by key — not from the start of the partition.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Admin } from '@platformatic/kafka';
import { kafka, type KafkaDriver } from '../../../src/backends/kafka/index.ts';
import { KafkaNames } from '../../../src/backends/kafka/topics.ts';
import { createEventStore } from '../../../src/index.ts';
import { Deposited, accountAggregate, accountEvents } from '../../conformance/fixtures.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';

const closers: (() => Promise<void>)[] = [];
const prefix = uniqueName('kloads');

function open(): { store: ReturnType<typeof createStore>; driver: KafkaDriver } {
  const driver = kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 1 });
  const store = createStore(driver);
  closers.push(() => store.close());
  return { store, driver };
}

function createStore(driver: KafkaDriver) {
  return createEventStore({ driver, events: accountEvents });
}

after(async () => {
  await Promise.allSettled(closers.map((c) => c()));
  const admin = new Admin({ clientId: 'loads-test-cleanup', bootstrapBrokers: KAFKA_BROKERS });
  const topics = new Set(await admin.listTopics());
  const names = new KafkaNames(prefix);
  const mine = [names.events, names.snapshots, names.index()].filter((t) => topics.has(t));
  if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  await admin.close();
});

async function noise(store: ReturnType<typeof createStore>, batches: number, tag: string): Promise<void> {
  for (let b = 0; b < batches; b++) {
    await store.append(
      `noise-${tag}-${b}`,
      Array.from({ length: 100 }, () => Deposited({ amount: 1 })),
    );
  }
}

describe('kafka: aggregate loads', () => {
  it('load from a snapshot scans the partition tail from the snapshot offset, not the whole partition', async (t) => {
    const writer = open();
    const accounts = writer.store.aggregate(accountAggregate({ every: 5 }));
    await noise(writer.store, 20, 'before'); // 2000 events of other streams ahead of the account
    for (let i = 1; i <= 10; i++) await accounts.handle('x', { kind: 'deposit', amount: i });
    const snapshot = await writer.driver.readSnapshot('account-x', 'account');
    assert.equal(snapshot?.version, 10, 'a snapshot at version 10 (every 5 events)');
    await noise(writer.store, 3, 'after'); // 300 more after the snapshot
    await writer.store.append('account-x', [Deposited({ amount: 100 }), Deposited({ amount: 200 })], { expectedVersion: 10 });

    // A fresh process with a snapshot: the tail only.
    const reader = open();
    const loaded = await reader.store.aggregate(accountAggregate({ every: 1000 })).load('x');
    assert.deepEqual(loaded.state, { balance: 55 + 300, operations: 12 });
    assert.equal(loaded.version, 12);
    assert.equal(loaded.snapshotVersion, 10);
    assert.equal(loaded.eventsFolded, 2);
    const tail = reader.driver.recordsFetched;
    t.diagnostic(`records fetched: ${tail} with the snapshot`);
    assert.ok(
      tail < 600,
      `read ${tail} event records: the tail after the snapshot (302) and what one fetch brings, not the 2312 of the partition`,
    );
    assert.ok(tail >= 302, `read ${tail} records: at least the tail`);

    // The same load without a snapshot (another aggregate name has none) indexes the partition.
    const cold = open();
    const versions = await cold.store.streamVersion('account-x');
    assert.equal(versions, 12);
    assert.ok(
      cold.driver.recordsFetched >= 2312,
      `without a snapshot the partition is read from its start (${cold.driver.recordsFetched} records)`,
    );

    // Time travel below the snapshot still reads from the start, and a page boundary in a tail
    // scan keeps its place (batchSize 1 pages through the tail one event at a time).
    const at = await reader.store.aggregate(accountAggregate({ every: 5 })).loadAt('x', { version: 3 });
    assert.deepEqual(at.state, { balance: 6, operations: 3 });
    const pager = open();
    const paged = [];
    for await (const e of pager.store.readStream('account-x', { fromVersion: 11, batchSize: 1, after: snapshot!.position }))
      paged.push(e.data.amount);
    assert.deepEqual(paged, [100, 200]);
    assert.ok(pager.driver.recordsFetched < 600, `paging through the tail read ${pager.driver.recordsFetched} records`);
  });
});
