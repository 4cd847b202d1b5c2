// A topic per aggregate category on a real Kafka broker: where streams go, how store partitions
// map to topics, and what happens when the category list changes.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Admin, FetchIsolationLevels, ListOffsetTimestamps } from '@platformatic/kafka';
import { kafka } from '../../../src/backends/kafka/index.ts';
import { TopicLayout } from '../../../src/backends/kafka/layout.ts';
import { KafkaNames } from '../../../src/backends/kafka/topics.ts';
import { createEventStore, DriverError, InvalidArgumentError } from '../../../src/index.ts';
import { partitionOf } from '../../../src/core/partition.ts';
import { Deposited, accountAggregate, accountEvents } from '../../conformance/fixtures.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';
import { runtimeOf } from '../../support/runtime.ts';

const prefix = uniqueName('klayout');
const stores: { close(): Promise<void> }[] = [];

function open(categories: string[]) {
  const driver = kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 3, categories });
  const store = createEventStore({ driver, events: accountEvents });
  stores.push(store);
  return { driver, store };
}

after(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  const admin = new Admin({ clientId: 'layout-test-cleanup', bootstrapBrokers: KAFKA_BROKERS });
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
  if (topics.length > 0) await admin.deleteTopics({ topics });
  await admin.close();
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('kafka: topic per category', () => {
  it('maps streams to topics by the longest category and numbers partitions topic by topic', () => {
    const layout = new TopicLayout(new KafkaNames('shop'), 4, ['account', 'order', 'order-line']);
    assert.equal(layout.partitions, 16);
    assert.equal(layout.topicOf('order-7').topic, 'shop.events-order');
    assert.equal(layout.topicOf('order-line-7').topic, 'shop.events-order-line');
    assert.equal(layout.topicOf('orders-7').topic, 'shop.events', 'a category matches only up to its "-"');
    assert.equal(layout.topicOf('customer-1').topic, 'shop.events');
    assert.equal(layout.partitionOf('order-7'), 8 + partitionOf('order-7', 4));
    assert.deepEqual(layout.at(9), { topic: 'shop.events-order', partition: 1, category: 'order' });
    assert.equal(layout.partitionFor('shop.events-order-line', 3), 15);
    assert.equal(layout.partitionFor('shop.events-other', 0), undefined);
    assert.throws(() => layout.at(16), InvalidArgumentError);
    assert.throws(() => new TopicLayout(new KafkaNames('shop'), 4, ['a.b']), InvalidArgumentError);
    assert.throws(() => new TopicLayout(new KafkaNames('shop'), 4, ['-x']), InvalidArgumentError);
    assert.throws(() => new TopicLayout(new KafkaNames('shop'), 4, ['x', 'x']), InvalidArgumentError);
  });

  it('writes each category to its own topic, reads and checkpoints across all of them', async () => {
    const { driver, store } = open(['account', 'order']);
    await store.append('account-1', [Deposited({ amount: 1 }), Deposited({ amount: 2 })]);
    await store.append('order-1', Deposited({ amount: 3 }));
    await store.append('customer-1', Deposited({ amount: 4 }));
    assert.equal(store.partitions, 9);

    const admin = new Admin({ clientId: 'layout-test', bootstrapBrokers: KAFKA_BROKERS });
    try {
      const written = async (topic: string): Promise<number> => {
        const [t] = await admin.listOffsets({
          topics: [{ name: topic, partitions: [0, 1, 2].map((p) => ({ partitionIndex: p, timestamp: ListOffsetTimestamps.LATEST })) }],
          isolationLevel: FetchIsolationLevels.READ_COMMITTED,
        });
        return t!.partitions.reduce((n, p) => n + Number(p.offset), 0);
      };
      // Each append is one transaction: its events plus one commit marker.
      const names = new KafkaNames(prefix);
      assert.equal(await written(names.categoryEvents('account')), 3);
      assert.equal(await written(names.categoryEvents('order')), 2);
      assert.equal(await written(names.events), 2);

      const all = await collect(store.readAll());
      assert.deepEqual(all.map((e) => e.data.amount).sort(), [1, 2, 3, 4]);
      for (const e of all) assert.equal(e.position.partition, store.partitionOf(e.streamId));
      assert.ok(all.find((e) => e.streamId === 'account-1')!.position.partition >= 3);
      assert.ok(all.find((e) => e.streamId === 'order-1')!.position.partition >= 6);
      assert.ok(all.find((e) => e.streamId === 'customer-1')!.position.partition < 3);

      const sub = store.subscribe({ group: 'totals', handler: () => undefined });
      await sub.caughtUp();
      await sub.stop();
      const [offsets] = await admin.listConsumerGroupOffsets({
        groups: [{ groupId: names.group('totals'), topics: [{ name: names.categoryEvents('order'), partitionIndexes: [0, 1, 2] }] }],
      });
      const committed = offsets!.topics[0]!.partitions.reduce((n, p) => n + Number(p.committedOffset), 0);
      // One event and its commit marker: a caught-up group commits the topic's end (Kafka shows lag 0).
      assert.equal(
        committed,
        await written(names.categoryEvents('order')),
        'the group position of the order topic is a Kafka offset of that topic',
      );
      assert.deepEqual(
        await store.subscriptions.position('totals'),
        sub.positions().sort((a, b) => a.partition - b.partition),
      );
    } finally {
      await admin.close();
    }
    assert.equal(driver.layout.topics.length, 3);
    await store.close();
  });

  it('refuses to drop a category, and places snapshots after categories are added or reordered', async () => {
    const first = open(['account', 'order']);
    const accounts = first.store.aggregate(accountAggregate({ every: 2 }));
    await accounts.handle('snap', { kind: 'deposit', amount: 5 });
    await accounts.handle('snap', { kind: 'deposit', amount: 6 });
    const written = await first.driver.readSnapshot('account-snap', 'account');
    assert.equal(written?.position.partition, first.store.partitionOf('account-snap'));
    await first.store.close();

    const dropped = open(['account']);
    await assert.rejects(
      dropped.store.streamVersion('order-1'),
      (e: unknown) => e instanceof DriverError && e.message.includes(new KafkaNames(prefix).categoryEvents('order')),
    );

    // Reordered (and extended): the store numbers partitions differently, the snapshot follows.
    const reordered = open(['order', 'account', 'invoice']);
    const snapshot = await runtimeOf(reordered.store).use((d) => d.readSnapshot('account-snap', 'account'));
    assert.equal(snapshot?.position.partition, reordered.store.partitionOf('account-snap'));
    assert.notEqual(snapshot?.position.partition, written?.position.partition, 'the numbering did change');
    const loaded = await reordered.store.aggregate(accountAggregate({ every: 2 })).load('snap');
    assert.deepEqual(loaded.state, { balance: 11, operations: 2 });
    assert.equal(loaded.snapshotVersion, 2);
    assert.equal(await reordered.store.streamVersion('order-1'), 1, 'the events of every category are still there');
  });
});
