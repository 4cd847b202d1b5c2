// Atomic appends across streams in different partitions on a real Kafka broker: one
// transaction through one lease, every other lease proving it is still current before the commit.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Admin, FetchIsolationLevels, ListOffsetTimestamps, Producer } from '@platformatic/kafka';
import { kafka, type KafkaDriver } from '../../../src/backends/kafka/index.ts';
import { eventRecord } from '../../../src/backends/kafka/records.ts';
import { AppendTooLargeError, createEventStore, ExpectedVersionConflictError, type EventStore } from '../../../src/index.ts';
import { partitionOf } from '../../../src/core/partition.ts';
import { Deposited, Withdrawn, accountEvents } from '../../conformance/fixtures.ts';
import { deleteStoreTopics } from './cleanup.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';
import { runtimeOf } from '../../support/runtime.ts';

type Store = EventStore<ReturnType<typeof Deposited> | ReturnType<typeof Withdrawn>>;
const stores: Store[] = [];
const prefixes: string[] = [];

async function openStore(prefix: string, partitions = 4, routing?: false): Promise<{ store: Store; driver: KafkaDriver }> {
  if (!prefixes.includes(prefix)) prefixes.push(prefix);
  const driver = kafka({ brokers: KAFKA_BROKERS, prefix, partitions, ...(routing === false ? { routing } : {}) });
  const store = createEventStore({ driver, events: accountEvents });
  stores.push(store);
  await runtimeOf(store).use(async () => undefined); // opens the driver
  return { store, driver };
}

after(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await deleteStoreTopics(prefixes, 'multi-test-cleanup');
});

/** A stream id that lands in `partition`. */
function streamIn(partitions: number, partition: number, base: string): string {
  for (let i = 0; ; i++) if (partitionOf(`${base}-${i}`, partitions) === partition) return `${base}-${i}`;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Every record written to the partitions (committed, aborted and markers' neighbours alike). */
async function highWatermarks(admin: Admin, topic: string, partitions: number): Promise<bigint[]> {
  const [t] = await admin.listOffsets({
    topics: [
      {
        name: topic,
        partitions: Array.from({ length: partitions }, (_, p) => ({ partitionIndex: p, timestamp: ListOffsetTimestamps.LATEST })),
      },
    ],
    isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
  });
  return Array.from({ length: partitions }, (_, p) => t!.partitions.find((x) => x.partitionIndex === p)!.offset);
}

describe('kafka: atomic append across partitions', () => {
  it('appends to streams of three partitions in one transaction, or to none', async () => {
    const { store } = await openStore(uniqueName('kmulti'));
    const [a, b, c] = [0, 1, 3].map((p) => streamIn(4, p, 'account'));
    await store.append(b!, Deposited({ amount: 1 }));

    const ok = await store.appendMany([
      { streamId: a!, events: [Deposited({ amount: 10 }), Deposited({ amount: 11 })], expectedVersion: 'no_stream' },
      { streamId: b!, events: Withdrawn({ amount: 1 }), expectedVersion: 1 },
      { streamId: c!, events: Deposited({ amount: 30 }) },
    ]);
    assert.deepEqual(
      ok.map((o) => o.nextExpectedVersion),
      [2, 2, 1],
    );
    assert.deepEqual(
      ok.map((o) => o.events.map((e) => e.position.partition)),
      [[0, 0], [1], [3]],
    );
    assert.deepEqual(
      (await collect(store.readStream(a!))).map((e) => e.data),
      [{ amount: 10 }, { amount: 11 }],
    );
    assert.deepEqual(
      (await collect(store.readStream(b!))).map((e) => e.type),
      ['Deposited', 'Withdrawn'],
    );

    // One stale expectation: nothing of the batch becomes visible, in any partition.
    await assert.rejects(
      store.appendMany([
        { streamId: a!, events: Deposited({ amount: 99 }), expectedVersion: 2 },
        { streamId: c!, events: Deposited({ amount: 99 }), expectedVersion: 0 },
      ]),
      ExpectedVersionConflictError,
    );
    const all = await collect(store.readAll());
    assert.equal(all.length, 5);
    assert.ok(all.every((e) => e.data.amount !== 99));
    assert.equal(await store.streamVersion(a!), 2);
    assert.equal(await store.streamVersion(c!), 1);
  });

  it('a writer that lost one partition meanwhile commits nothing and then sees the conflict', async () => {
    const prefix = uniqueName('kmulti-stale');
    // Takeover on demand (no writer group), so `two` can take partition 2 from `one`, as a
    // borrowed partition's owner does under routing.
    const one = await openStore(prefix, 4, false);
    const two = await openStore(prefix, 4, false);
    const a = streamIn(4, 0, 'account');
    const b = streamIn(4, 2, 'account');
    // `one` owns partitions 0 and 2 and believes both streams are at version 1.
    await one.store.appendMany([
      { streamId: a, events: Deposited({ amount: 1 }) },
      { streamId: b, events: Deposited({ amount: 1 }) },
    ]);
    const admin = new Admin({ clientId: 'multi-test', bootstrapBrokers: KAFKA_BROKERS });
    try {
      // `two` takes partition 2 over and appends.
      await two.store.append(b, Deposited({ amount: 2 }), { expectedVersion: 1 });
      const before = await highWatermarks(admin, one.driver.names.events, 4);

      // `one`'s in-memory view of b is stale (version 1). Its transaction writes to both
      // partitions, the proof for partition 2 fails, the transaction is aborted; the core claims
      // both again, catches up, and reports a plain conflict.
      await assert.rejects(
        one.store.appendMany([
          { streamId: a, events: Deposited({ amount: 77 }), expectedVersion: 1 },
          { streamId: b, events: Deposited({ amount: 77 }), expectedVersion: 1 },
        ]),
        (error: unknown) => error instanceof ExpectedVersionConflictError && error.actualVersion === 2,
      );
      const afterwards = await highWatermarks(admin, one.driver.names.events, 4);
      assert.ok(afterwards[0]! > before[0]!, 'the aborted transaction did write to partition 0 (so the test saw the race)');

      for (const reader of [one.store, two.store]) {
        assert.equal(await reader.streamVersion(a), 1, 'nothing of the aborted batch is visible in partition 0');
        assert.deepEqual(
          (await collect(reader.readStream(b))).map((e) => e.data.amount),
          [1, 2],
        );
      }
      // Both writers go on from the truth.
      await one.store.appendMany([
        { streamId: a, events: Deposited({ amount: 3 }), expectedVersion: 1 },
        { streamId: b, events: Deposited({ amount: 3 }), expectedVersion: 2 },
      ]);
      await assert.rejects(two.store.append(b, Deposited({ amount: 4 }), { expectedVersion: 2 }), ExpectedVersionConflictError);
      assert.deepEqual(
        (await collect(two.store.readStream(b))).map((e) => e.version),
        [1, 2, 3],
      );
    } finally {
      await admin.close();
    }
  });

  it("a claim waits for another writer's open transaction on its partition before it catches up", async () => {
    const prefix = uniqueName('kmulti-claim');
    const { driver } = await openStore(prefix, 2);
    const streamId = streamIn(2, 1, 'account');
    // Another transactional id (as another partition's writer doing appendWith) holds an open
    // transaction with an event on partition 1.
    const other = new Producer({
      clientId: 'other-writer',
      bootstrapBrokers: KAFKA_BROKERS,
      transactionalId: driver.names.writer(0),
      idempotent: true,
      producerId: -1n,
      producerEpoch: -1,
    });
    try {
      const tx = await other.beginTransaction();
      const record = eventRecord(
        { topic: driver.names.events, partition: 1 },
        streamId,
        {
          id: '00000000-0000-4000-8000-00000000c1a1',
          type: 'Deposited',
          schemaVersion: 1,
          codec: 'json',
          data: new TextEncoder().encode('{"amount":5}'),
          metadata: '{}',
          time: Date.now(),
        },
        1,
      );
      const sent = await tx.send({ messages: [record as never] });
      const offset = sent.offsets!.find((o) => o.partition === 1)!.offset;
      let claimed = false;
      const claim = driver.claimPartition(1).then((lease) => {
        claimed = true;
        return lease;
      });
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(claimed, false, 'the claim is still waiting for the open transaction');
      await tx.commit();
      const lease = await claim;
      assert.equal(lease.caughtUpTo, offset, 'the claim caught up to the event that committed while it waited');
      await lease.release();
      assert.equal((await driver.readPartition(lease.partition, { after: undefined, limit: 10, streamId })).length, 1);
    } finally {
      await other.close().catch(() => undefined);
    }
  });
});

describe('kafka: group commit', () => {
  it('appends that queue up for one partition share a transaction, each checked on its own', async (t) => {
    const prefix = uniqueName('kgroup');
    const { store, driver } = await openStore(prefix, 1);
    await store.append('account-g0', Deposited({ amount: 1 })); // the claim happens here
    const admin = new Admin({ clientId: 'group-commit-test', bootstrapBrokers: KAFKA_BROKERS });
    try {
      const [before] = await highWatermarks(admin, driver.names.events, 1);
      const outcomes = await Promise.allSettled([
        ...Array.from({ length: 60 }, (_, i) =>
          store.append(`account-g${i + 1}`, Deposited({ amount: i + 1 }), { expectedVersion: 'no_stream' }),
        ),
        // Same stream twice with the same expectation: exactly one wins, the other conflicts.
        store.append('account-g0', Withdrawn({ amount: 1 }), { expectedVersion: 1 }),
        store.append('account-g0', Withdrawn({ amount: 2 }), { expectedVersion: 1 }),
      ]);
      const [afterwards] = await highWatermarks(admin, driver.names.events, 1);
      const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
      const conflicts = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof ExpectedVersionConflictError).length;
      assert.equal(ok, 61);
      assert.equal(conflicts, 1);
      // Every transaction ends with one commit marker: offsets used = events + transactions.
      const transactions = Number(afterwards! - before!) - 61;
      t.diagnostic(`61 appends in ${transactions} transactions`);
      assert.ok(transactions >= 1 && transactions <= 5, `61 appends took ${transactions} transactions`);
      assert.equal((await collect(store.readAll())).length, 62);
      assert.equal(await store.streamVersion('account-g0'), 2);
    } finally {
      await admin.close();
    }
  });
});

describe('kafka: an append larger than the broker takes', () => {
  it('fails alone with AppendTooLargeError, stores nothing, and appends queued with it still succeed', async () => {
    const { store } = await openStore(uniqueName('ktoobig'), 1);
    await store.append('account-small-0', Deposited({ amount: 1 }));
    const note = 'x'.repeat(15_000);
    // 100 events of ~15 KB: one append of ~1.5 MB, over the broker's default message.max.bytes (1 MiB).
    const outcomes = await Promise.allSettled([
      store.append(
        'account-big',
        Array.from({ length: 100 }, () => Deposited({ amount: 1, note })),
      ),
      store.append('account-small-1', Deposited({ amount: 2 })),
      store.append('account-small-2', Deposited({ amount: 3 })),
    ]);
    assert.equal(outcomes[0]!.status, 'rejected');
    const error = (outcomes[0] as PromiseRejectedResult).reason as unknown;
    assert.ok(error instanceof AppendTooLargeError, `got ${String(error)}`);
    assert.equal(error.events, 100);
    assert.deepEqual(error.streamIds, ['account-big']);
    assert.deepEqual(
      outcomes.slice(1).map((o) => o.status),
      ['fulfilled', 'fulfilled'],
      'the appends queued with it were not failed by it',
    );
    assert.equal(await store.streamVersion('account-big'), 0, 'nothing of it stored');
    await store.append(
      'account-big',
      Array.from({ length: 10 }, () => Deposited({ amount: 1, note })),
    );
    assert.equal(await store.streamVersion('account-big'), 10, 'split, it fits');
    assert.equal((await collect(store.readAll())).length, 13);
  });
});
