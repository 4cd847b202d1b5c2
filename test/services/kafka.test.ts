import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Admin, Consumer, FetchIsolationLevels, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { KAFKA_BROKERS, uniqueName } from './env.ts';

const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

/** Reads values from the start of `topic` until `last` arrives (or the time runs out). */
async function readUntil(topic: string, isolationLevel: number, last: string): Promise<string[]> {
  const consumer = new Consumer({
    clientId: uniqueName('smoke-consumer'),
    groupId: uniqueName('smoke-group'),
    bootstrapBrokers: KAFKA_BROKERS,
    deserializers: stringDeserializers,
    isolationLevel,
    maxWaitTime: 200,
  });
  closers.push(() => consumer.close());
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
  const values: string[] = [];
  const timer = setTimeout(() => void stream.close(), 20_000);
  try {
    for await (const message of stream) {
      values.push(message.value);
      if (message.value === last) break;
    }
  } finally {
    clearTimeout(timer);
    await stream.close();
    await consumer.close();
  }
  return values;
}

test('kafka: committed transaction is visible to read_committed, aborted one is not', { timeout: 90_000 }, async () => {
  const topic = uniqueName('smoke-tx');
  const admin = new Admin({ clientId: 'smoke-admin', bootstrapBrokers: KAFKA_BROKERS });
  closers.push(() => admin.close());
  await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });

  const producer = new Producer({
    clientId: 'smoke-producer',
    bootstrapBrokers: KAFKA_BROKERS,
    transactionalId: uniqueName('smoke-txid'),
    idempotent: true,
    serializers: stringSerializers,
  });
  closers.push(() => producer.close());

  const committed = await producer.beginTransaction();
  await committed.send({
    messages: [
      { topic, key: 'order-1', value: 'placed' },
      { topic, key: 'order-1', value: 'paid' },
    ],
  });
  await committed.commit();

  const aborted = await producer.beginTransaction();
  await aborted.send({ messages: [{ topic, key: 'order-1', value: 'aborted' }] });
  await aborted.abort();

  // a last committed record moves the stable offset past the aborted one
  const sentinel = await producer.beginTransaction();
  await sentinel.send({ messages: [{ topic, key: 'order-1', value: 'end' }] });
  await sentinel.commit();

  const readCommitted = await readUntil(topic, FetchIsolationLevels.READ_COMMITTED, 'end');
  assert.deepEqual(readCommitted, ['placed', 'paid', 'end']);

  // the aborted record was written to the log: read_uncommitted sees it
  const readUncommitted = await readUntil(topic, FetchIsolationLevels.READ_UNCOMMITTED, 'end');
  assert.deepEqual(readUncommitted, ['placed', 'paid', 'aborted', 'end']);

  await admin.deleteTopics({ topics: [topic] });
});

test('kafka: consumer group commits offsets', { timeout: 60_000 }, async () => {
  const topic = uniqueName('smoke-group');
  const groupId = uniqueName('smoke-group');
  const producer = new Producer({
    clientId: 'smoke-producer-2',
    bootstrapBrokers: KAFKA_BROKERS,
    serializers: stringSerializers,
    autocreateTopics: true,
  });
  closers.push(() => producer.close());
  await producer.send({
    messages: [
      { topic, value: 'a' },
      { topic, value: 'b' },
    ],
  });

  const consumer = new Consumer({
    clientId: 'smoke-consumer-2',
    groupId,
    bootstrapBrokers: KAFKA_BROKERS,
    deserializers: stringDeserializers,
    maxWaitTime: 200,
  });
  closers.push(() => consumer.close());
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
  const seen: string[] = [];
  for await (const message of stream) {
    seen.push(message.value);
    await message.commit();
    if (seen.length === 2) break;
  }
  await stream.close();
  assert.deepEqual(seen, ['a', 'b']);

  const offsets = await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [0] }] });
  assert.equal(offsets.get(topic)?.[0], 2n);
  await consumer.close();
});
