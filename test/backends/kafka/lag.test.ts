// Lag as Kafka's own tools see it (kafka-consumer-groups --describe, the Java ConsumerGroupCommand
// from the broker's jars), on a real broker: a caught-up subscription and a caught-up consumer
// group must show LAG 0 on every partition, although each partition ends in transaction markers
// and aborted records (the writers' ownership proofs of appendMany, transactions aborted on
// purpose) that no reader ever sees; and a transaction still open is never passed.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Admin, FetchIsolationLevels, ListOffsetTimestamps, Producer } from '@platformatic/kafka';
import { createEventStore, type EventOf, type EventStore } from '../../../src/index.ts';
import { kafka, type KafkaDriver, type KafkaDriverOptions } from '../../../src/backends/kafka/index.ts';
import { eventRecord } from '../../../src/backends/kafka/records.ts';
import { Deposited, accountEvents } from '../../conformance/fixtures.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';
import { describeGroup, kafkaLib, type GroupRow } from './kafka-tools.ts';

type Store = EventStore<EventOf<typeof accountEvents>>;
const stores: Store[] = [];
const drivers: KafkaDriver[] = [];
const closers: (() => Promise<unknown>)[] = [];

function open(prefix: string, options: KafkaDriverOptions): { store: Store; driver: KafkaDriver } {
  const driver = kafka({
    brokers: KAFKA_BROKERS,
    prefix,
    consumerGroups: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 300 },
    ...options,
  });
  const store = createEventStore({ driver, events: accountEvents });
  stores.push(store);
  drivers.push(driver);
  return { store, driver };
}

async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ clientId: 'lag-test', bootstrapBrokers: KAFKA_BROKERS });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

after(async () => {
  await Promise.allSettled(closers.map((c) => c()));
  await Promise.allSettled(stores.map((s) => s.close()));
  await withAdmin(async (admin) => {
    const existing = new Set(await admin.listTopics());
    const topics = drivers
      .flatMap((d) => [
        ...d.layout.topics.map((t) => t.topic),
        d.names.snapshots,
        ...d.layout.topics.map((t) => d.names.index(t.category)),
        d.names.deadLetters('lagc'),
        d.names.redrive('lagc'),
      ])
      .filter((t) => existing.has(t));
    if (topics.length > 0) await admin.deleteTopics({ topics: [...new Set(topics)] });
    const groups = drivers.flatMap((d) => [d.names.group('lag'), d.names.group('held'), d.names.consumerGroup('lagc')]);
    await admin.deleteGroups({ groups }).catch(() => undefined);
  });
});

/** A stream id of `base` that the driver places in store partition `partition`. */
function streamIn(driver: KafkaDriver, partition: number, base: string): string {
  for (let i = 0; ; i++) if (driver.partitionOf(`${base}-${i}`) === partition) return `${base}-${i}`;
}

/** A transactional producer of the test's own, writing eventfold-format records it then aborts (or holds open). */
function rawWriter(): Producer {
  const producer = new Producer({
    clientId: 'lag-test-raw',
    bootstrapBrokers: KAFKA_BROKERS,
    transactionalId: uniqueName('lag-test-tx'),
    idempotent: true,
    producerId: -1n,
    producerEpoch: -1,
  });
  closers.push(() => producer.close());
  return producer;
}

function rawEvent(driver: KafkaDriver, streamId: string, version: number) {
  const at = driver.layout.at(driver.partitionOf(streamId));
  const event = {
    id: randomUUID(),
    type: 'Deposited',
    schemaVersion: 1,
    codec: 'json',
    data: Buffer.from('{"amount":1}'),
    metadata: '{}',
    time: Date.now(),
  };
  return { id: event.id, record: eventRecord(at, streamId, event, version) };
}

/** Writes eventfold-format events of these streams in one transaction and aborts it: records no reader may see. */
async function abortedTransaction(producer: Producer, driver: KafkaDriver, streams: readonly string[]): Promise<void> {
  const tx = await producer.beginTransaction();
  await tx.send({ messages: streams.map((s) => rawEvent(driver, s, 1_000).record) as never });
  await tx.abort();
}

/** A record eventfold did not write (no envelope), committed at the end of a stream's partition. */
async function foreignRecord(driver: KafkaDriver, streamId: string): Promise<void> {
  const producer = new Producer({ clientId: 'lag-test-foreign', bootstrapBrokers: KAFKA_BROKERS });
  try {
    const at = driver.layout.at(driver.partitionOf(streamId));
    await producer.send({
      messages: [{ topic: at.topic, partition: at.partition, key: Buffer.from('not-eventfold'), value: Buffer.from('hello') }],
    });
  } finally {
    await producer.close();
  }
}

/** Per events topic partition: high watermark (what Kafka calls the log end) and last stable offset. */
async function logEnds(driver: KafkaDriver): Promise<Map<string, { end: bigint; stable: bigint }>> {
  return withAdmin(async (admin) => {
    const out = new Map<string, { end: bigint; stable: bigint }>();
    for (const isolationLevel of [FetchIsolationLevels.READ_UNCOMMITTED, FetchIsolationLevels.READ_COMMITTED]) {
      const listed = await admin.listOffsets({
        topics: driver.layout.topics.map((t) => ({
          name: t.topic,
          partitions: Array.from({ length: driver.layout.perTopic }, (_, partitionIndex) => ({
            partitionIndex,
            timestamp: ListOffsetTimestamps.LATEST,
          })),
        })),
        isolationLevel,
      });
      for (const t of listed) {
        for (const p of t.partitions) {
          const key = `${t.name}/${p.partitionIndex}`;
          const entry = out.get(key) ?? { end: -1n, stable: -1n };
          if (isolationLevel === FetchIsolationLevels.READ_UNCOMMITTED) entry.end = p.offset;
          else entry.stable = p.offset;
          out.set(key, entry);
        }
      }
    }
    return out;
  });
}

/** Waits until every transaction on the events topics is complete (markers written): the last stable offset is the log end. */
async function settled(driver: KafkaDriver): Promise<void> {
  await eventually(async () => [...(await logEnds(driver)).values()].every((p) => p.stable === p.end), 'every transaction to complete');
}

/** Polls `check` until it holds (true) or the time is up (false); `_what` names it at the call. */
async function eventually(check: () => Promise<boolean>, _what: string, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function assertNoLag(rows: readonly GroupRow[], expectedRows: number, what: string): void {
  const table = rows.map((r) => `${r.topic}/${r.partition} current=${r.current} end=${r.logEnd} lag=${r.lag}`).join('; ');
  assert.equal(rows.length, expectedRows, `${what}: one row per partition: ${table}`);
  for (const r of rows) {
    assert.equal(r.current, r.logEnd, `${what}: ${r.topic}/${r.partition} committed at the log end: ${table}`);
    assert.equal(r.lag, 0n, `${what}: LAG 0 on ${r.topic}/${r.partition}: ${table}`);
  }
}

describe("kafka: lag as Kafka's own tools show it", () => {
  it('finds the tool (fails, not skips, without it)', () => {
    assert.ok(kafkaLib().endsWith('lib'));
  });

  it('a caught-up subscription shows LAG 0 on every partition of every events topic, past markers, proofs and aborted transactions; its position stays the last event', async () => {
    const prefix = uniqueName('klag-sub');
    const { store, driver } = open(prefix, { partitions: 3, categories: ['order'] });
    // One stream in each of the 6 store partitions: 3 of the default topic, 3 of `order`'s.
    const streams = Array.from({ length: 6 }, (_, p) => streamIn(driver, p, p < 3 ? 'acct' : 'order'));
    const appended: string[] = [];
    const deposit = (amount: number) => {
      const e = Deposited({ amount });
      appended.push(e.id);
      return e;
    };
    const raw = rawWriter();
    for (let round = 1; round <= 3; round++) {
      // One transaction over all six partitions: five ownership proofs, aborted.
      await store.appendMany(streams.map((streamId) => ({ streamId, events: deposit(round) })));
      await store.append(streams[round]!, deposit(10 + round));
      if (round === 2) await abortedTransaction(raw, driver, [streams[0]!, streams[3]!, streams[5]!]);
    }
    // The tails: a proof round, then aborted records after the last event of partitions 0 and 4,
    // and a record eventfold did not write after the last event of partition 2.
    await store.appendMany([0, 1, 4].map((p) => ({ streamId: streams[p]!, events: deposit(99) })));
    await abortedTransaction(raw, driver, [streams[0]!, streams[4]!]);
    await foreignRecord(driver, streams[2]!);
    await settled(driver);

    const seen: string[] = [];
    const sub = store.subscribe({ group: 'lag', batchSize: 4, handler: (e) => void seen.push(e.id) });
    await sub.caughtUp();
    assert.deepEqual([...seen].sort(), [...appended].sort(), 'every event once, no aborted record');
    assertNoLag(await describeGroup(driver.names.group('lag')), 6, 'caught up');
    const positions = sub.positions().sort((a, b) => a.partition - b.partition);
    assert.deepEqual(
      await store.subscriptions.position('lag'),
      positions,
      'the saved position is the last event handled, not the offset past the markers',
    );
    const lastEvents = await Promise.all(streams.map((_, p) => driver.partitionHead(p)));
    assert.deepEqual(
      positions.map((p) => p.offset),
      lastEvents,
    );
    await sub.stop();

    // Resuming from the checkpoint skips nothing new and repeats nothing old.
    const again: string[] = [];
    const resumed = store.subscribe({ group: 'lag', handler: (e) => void again.push(e.id) });
    await resumed.caughtUp();
    assert.deepEqual(again, []);
    const late = [deposit(7), deposit(8)];
    await store.append(streams[2]!, late[0]!); // after the foreign record
    await store.append(streams[4]!, late[1]!); // after the aborted records
    await resumed.caughtUp();
    assert.deepEqual(again.sort(), late.map((e) => e.id).sort());
    assertNoLag(await describeGroup(driver.names.group('lag')), 6, 'caught up again');
    await resumed.stop();
  });

  it('a transaction still open is never passed: the committed offset stops at its first record, and its event is handled once it commits', async () => {
    const prefix = uniqueName('klag-held');
    const { store, driver } = open(prefix, { partitions: 1 });
    for (let i = 1; i <= 3; i++) await store.append('acct-1', Deposited({ amount: i }));
    const raw = rawWriter();
    await abortedTransaction(raw, driver, ['acct-2']);
    await settled(driver);
    const held = rawEvent(driver, 'acct-held', 1);
    const tx = await raw.beginTransaction();
    const sent = await tx.send({ messages: [held.record] as never });
    const heldAt = (sent.offsets as { offset: bigint }[] | undefined)?.[0]?.offset;
    assert.ok(typeof heldAt === 'bigint');

    const seen: string[] = [];
    const sub = store.subscribe({ group: 'held', handler: (e) => void seen.push(e.id) });
    await sub.caughtUp();
    assert.equal(seen.length, 3);
    const [row] = await describeGroup(driver.names.group('held'));
    assert.equal(row?.current, heldAt, 'past the aborted transaction and the markers, up to the open transaction, not into it');
    assert.ok(row!.lag! > 0n, 'the open transaction is lag');
    await sub.stop();

    await tx.commit();
    await settled(driver);
    const resumed = store.subscribe({ group: 'held', handler: (e) => void seen.push(e.id) });
    await resumed.caughtUp();
    assert.deepEqual(seen.slice(3), [held.id], 'the held event, once committed, is handled');
    assertNoLag(await describeGroup(driver.names.group('held')), 1, 'after the commit');
    await resumed.stop();
  });

  it('a caught-up consumer group (store.consume) shows LAG 0, also after aborted records land behind its last event', async () => {
    const prefix = uniqueName('klag-cg');
    const { store, driver } = open(prefix, { partitions: 2, categories: ['order'] });
    const streams = Array.from({ length: 4 }, (_, p) => streamIn(driver, p, p < 2 ? 'acct' : 'order'));
    const appended: string[] = [];
    const deposit = (amount: number) => {
      const e = Deposited({ amount });
      appended.push(e.id);
      return e;
    };
    const raw = rawWriter();
    for (let round = 1; round <= 3; round++) {
      await store.appendMany(streams.map((streamId) => ({ streamId, events: deposit(round) })));
      if (round === 2) await abortedTransaction(raw, driver, [streams[1]!, streams[2]!]);
    }
    await settled(driver);
    const seen = new Map<string, number>();
    const consumer = store.consume({
      group: 'lagc',
      consumer: 'c1',
      blockMs: 100,
      handler: (e) => void seen.set(e.id, (seen.get(e.id) ?? 0) + 1),
    });
    assert.ok(
      await eventually(async () => consumer.handled === appended.length, 'every event'),
      `handled ${consumer.handled} of ${appended.length}`,
    );

    // Nothing for the consumer to acknowledge lands behind its last events: aborted records and
    // their markers, and a record eventfold did not write.
    await abortedTransaction(raw, driver, [streams[0]!, streams[3]!]);
    await foreignRecord(driver, streams[1]!);
    await settled(driver);
    const ends = await logEnds(driver);
    const names = driver.names;
    await eventually(
      async () => {
        const [listed] = await withAdmin((admin) =>
          admin.listConsumerGroupOffsets({
            groups: [
              {
                groupId: names.consumerGroup('lagc'),
                topics: driver.layout.topics.map((t) => ({ name: t.topic, partitionIndexes: [0, 1] })),
              },
            ],
          }),
        );
        return (listed?.topics ?? []).every((t) =>
          t.partitions.every((p) => p.committedOffset === ends.get(`${t.name}/${p.partitionIndex}`)?.end),
        );
      },
      'the group to commit the log ends',
      10_000,
    );
    // Four events partitions and the group's redrive topic.
    assertNoLag(await describeGroup(names.consumerGroup('lagc')), 5, 'caught up');
    await consumer.stop();
    assert.deepEqual([...seen.keys()].sort(), [...appended].sort(), 'every event, no aborted or foreign record');
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      'each once',
    );
  });
});
