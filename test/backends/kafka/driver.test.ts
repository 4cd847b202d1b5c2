// Driver-level tests of the Kafka driver on a real broker (scripts/services starts it on 127.0.0.1:9092).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Admin, Producer } from '@platformatic/kafka';
import { kafka, type KafkaDriver } from '../../../src/backends/kafka/index.ts';
import type { AppendRequest, EncodedEvent } from '../../../src/core/driver.ts';
import { InvalidArgumentError, PartitionFencedError } from '../../../src/core/errors.ts';
import { partitionOf } from '../../../src/core/partition.ts';
import { deleteStoreTopics } from './cleanup.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';

const prefixes: string[] = [];
const drivers: KafkaDriver[] = [];
const closers: (() => Promise<unknown>)[] = [];

async function openDriver(prefix: string, partitions = 2): Promise<KafkaDriver> {
  if (!prefixes.includes(prefix)) prefixes.push(prefix);
  const driver = kafka({ brokers: KAFKA_BROKERS, prefix, partitions });
  await driver.open();
  drivers.push(driver);
  return driver;
}

after(async () => {
  await Promise.allSettled(closers.map((c) => c()));
  await Promise.allSettled(drivers.map((d) => d.close()));
  await deleteStoreTopics(prefixes, 'driver-test-cleanup');
});

let ids = 0;
function event(overrides: Partial<EncodedEvent> = {}): EncodedEvent {
  return {
    id: `00000000-0000-4000-8000-${String(++ids).padStart(12, '0')}`,
    type: 'Deposited',
    schemaVersion: 1,
    codec: 'json',
    data: new TextEncoder().encode(JSON.stringify({ amount: ids })),
    metadata: '{}',
    time: Date.now(),
    ...overrides,
  };
}

function request(driver: KafkaDriver, streamId: string, expectedVersion: number, events: EncodedEvent[]): AppendRequest {
  return { streamId, partition: partitionOf(streamId, driver.partitions), expectedVersion, events };
}

/** A stream id that lands in `partition`. */
function streamIn(driver: KafkaDriver, partition: number, base = 'account'): string {
  for (let i = 0; ; i++) if (partitionOf(`${base}-${i}`, driver.partitions) === partition) return `${base}-${i}`;
}

describe('kafka driver', () => {
  it('refuses a bad prefix; is a partition-owner driver (no plain append: appends go through leases)', async () => {
    assert.throws(() => kafka({ prefix: 'a/b' }), InvalidArgumentError);
    assert.throws(() => kafka({ prefix: '..x' }), InvalidArgumentError);
    assert.throws(() => kafka({ partitions: 0 }), InvalidArgumentError);
    const driver = await openDriver(uniqueName('kdrv-plain'));
    assert.equal(driver.concurrency, 'partition-owner');
    assert.deepEqual(driver.capabilities, { timeIndex: true });
    assert.equal('append' in driver, false);
    assert.equal(typeof driver.appendAcross, 'function', 'appends across partitions');
    assert.ok(driver.appendLimits.maxAppends > 0 && driver.appendLimits.maxBytes > 0);
  });

  it('appends through a lease and reads back every field byte for byte', async () => {
    const driver = await openDriver(uniqueName('kdrv-rt'));
    const streamId = streamIn(driver, 1);
    const lease = await driver.claimPartition(1);
    assert.equal(lease.caughtUpTo, undefined, 'an empty partition');
    const bytes = new Uint8Array(256).map((_, i) => i);
    const first = event({
      codec: 'protobuf',
      data: bytes,
      metadata: JSON.stringify({ tenant: 'ácme ✓', correlationId: 'c-1' }),
      schemaVersion: 3,
      time: 1_700_000_000_123.5,
    });
    const second = event({ type: 'Withdrawn', data: new Uint8Array(0) });
    const [result] = await lease.append([request(driver, streamId, 0, [first, second])]);
    assert.equal(result?.nextExpectedVersion, 2);
    assert.equal(result?.positions.length, 2);

    const [again] = await lease.append([request(driver, streamId, 2, [event()])]);
    assert.equal(again?.nextExpectedVersion, 3);

    const log = await driver.readPartition(1, { after: undefined, limit: 100 });
    assert.deepEqual(
      log.map((e) => e.version),
      [1, 2, 3],
    );
    assert.deepEqual(
      log.slice(0, 2).map((e) => e.position),
      result?.positions,
      'positions returned by the append are where the events are',
    );
    const [a, b] = log;
    assert.equal(a?.id, first.id);
    assert.equal(a?.type, 'Deposited');
    assert.equal(a?.schemaVersion, 3);
    assert.equal(a?.codec, 'protobuf');
    assert.deepEqual(Buffer.from(a!.data), Buffer.from(bytes));
    assert.equal(a?.metadata, first.metadata);
    assert.equal(a?.time, first.time);
    assert.equal(a?.streamId, streamId);
    assert.equal(b?.type, 'Withdrawn');
    assert.equal(b?.data.byteLength, 0);

    const read = await driver.readPartition(1, { after: log[0]!.position.offset, limit: 10, streamId });
    assert.deepEqual(
      read.map((e) => e.version),
      [2, 3],
    );
    assert.deepEqual(read[0], log[1]);
    assert.deepEqual(await driver.readPartition(1, { after: undefined, limit: 10, streamId: 'account-none' }), [], 'filtered by stream id');
    assert.deepEqual(await driver.readPartition(1, { after: log[2]!.position.offset, limit: 10 }), []);
    assert.equal(await driver.partitionHead(1), log[2]!.position.offset, 'the head is the last event, not the transaction marker after it');
    assert.equal(await driver.partitionHead(0), undefined);
    await lease.release();

    // A new claim catches up to the last committed event.
    const next = await driver.claimPartition(1);
    assert.equal(next.caughtUpTo, log[2]!.position.offset);
    await next.release();
  });

  it('a claim fences the earlier holder; what the zombie sent never becomes visible', async () => {
    const prefix = uniqueName('kdrv-fence');
    const one = await openDriver(prefix);
    const two = await openDriver(prefix);
    const streamId = streamIn(one, 0);
    const lease1 = await one.claimPartition(0);
    await lease1.append([request(one, streamId, 0, [event()])]);

    // A zombie of the same transactional id with two open transactions' worth of records.
    const zombie = new Producer({
      clientId: 'zombie',
      bootstrapBrokers: KAFKA_BROKERS,
      transactionalId: one.names.writer(0),
      idempotent: true,
      producerId: -1n,
      producerEpoch: -1,
    });
    closers.push(() => zombie.close());
    for (let i = 0; i < 2; i++) {
      const tx = await zombie.beginTransaction();
      await tx.send({ messages: [{ topic: one.names.events, partition: 0, key: Buffer.from(streamId), value: Buffer.from('zombie') }] });
      if (i === 0) await tx.abort();
    }
    // The zombie's claim fenced lease1.
    await assert.rejects(lease1.append([request(one, streamId, 1, [event()])]), PartitionFencedError);

    const lease2 = await two.claimPartition(0); // fences the zombie, aborting its open transaction
    const zombieCommit = zombie.transaction!.commit();
    await assert.rejects(zombieCommit);
    await zombie.close().catch(() => undefined);
    await assert.rejects(lease1.append([request(one, streamId, 1, [event()])]), PartitionFencedError);

    const [result] = await lease2.append([request(two, streamId, 1, [event()])]);
    assert.equal(result?.nextExpectedVersion, 2);
    const log = await two.readPartition(0, { after: undefined, limit: 100 });
    assert.deepEqual(
      log.map((e) => e.version),
      [1, 2],
      'no aborted or fenced record is visible',
    );
    assert.ok(log.every((e) => Buffer.from(e.data).toString() !== 'zombie'));
    assert.equal((await one.readPartition(0, { after: undefined, limit: 10, streamId })).length, 2);
    assert.equal(await two.partitionHead(0), log[1]!.position.offset);
    await lease2.release();
    await lease1.release();
  });

  it('finds offsets by time', async () => {
    const driver = await openDriver(uniqueName('kdrv-time'), 1);
    const base = Date.now() - 60_000;
    const lease = await driver.claimPartition(0);
    for (let i = 1; i <= 4; i++) await lease.append([request(driver, 'account-t', i - 1, [event({ time: base + i * 1000 })])]);
    const log = await driver.readPartition(0, { after: undefined, limit: 10 });
    assert.equal(await driver.firstOffsetAtTime(0, base), 0n, 'before everything: the start');
    // Transaction markers carry the broker's time, so the offset may be a marker before the event.
    const at = await driver.firstOffsetAtTime(0, base + 2500);
    assert.ok(at !== undefined && at > log[0]!.position.offset && at <= log[2]!.position.offset, `offset ${at} bounds the events`);
    const since = (await driver.readPartition(0, { after: at! - 1n, limit: 10 })).filter((e) => e.time >= base + 2500);
    assert.deepEqual(
      since.map((e) => e.version),
      [3, 4],
    );
    assert.equal(await driver.firstOffsetAtTime(0, base + 60_000 * 10), undefined, 'nothing that recent');
    await lease.release();
  });

  it('keeps the last snapshot per stream and name, across driver instances', async () => {
    const prefix = uniqueName('kdrv-snap');
    const driver = await openDriver(prefix);
    assert.equal(await driver.readSnapshot('account-s', 'account'), undefined);
    const state = new Uint8Array([0, 1, 2, 255]);
    await driver.writeSnapshot({
      streamId: 'account-s',
      name: 'account',
      schemaVersion: 1,
      version: 3,
      position: { partition: 1, offset: 7n },
      state,
      takenAt: 1000,
    });
    await driver.writeSnapshot({
      streamId: 'account-s',
      name: 'account',
      schemaVersion: 2,
      version: 6,
      position: { partition: 1, offset: 12n },
      state,
      takenAt: 2000,
    });
    await driver.writeSnapshot({
      streamId: 'account-s',
      name: 'other',
      schemaVersion: 1,
      version: 1,
      position: { partition: 1, offset: 1n },
      state: new Uint8Array(0),
      takenAt: 3000,
    });
    const read = await driver.readSnapshot('account-s', 'account');
    assert.deepEqual(read, {
      streamId: 'account-s',
      name: 'account',
      schemaVersion: 2,
      version: 6,
      position: { partition: 1, offset: 12n },
      state,
      takenAt: 2000,
    });
    const other = await openDriver(prefix);
    assert.deepEqual(await other.readSnapshot('account-s', 'account'), read);
    assert.equal((await other.readSnapshot('account-s', 'other'))?.version, 1);
    assert.equal(await other.readSnapshot('account-t', 'account'), undefined);
  });

  it('keeps checkpoints as consumer-group offsets; a write replaces the whole vector', async () => {
    const prefix = uniqueName('kdrv-ckpt');
    const driver = await openDriver(prefix, 3);
    assert.equal(await driver.readCheckpoint('projector'), undefined);
    await driver.writeCheckpoint('projector', [
      { partition: 0, offset: 0n },
      { partition: 2, offset: 41n },
    ]);
    assert.deepEqual(await driver.readCheckpoint('projector'), [
      { partition: 0, offset: 0n },
      { partition: 2, offset: 41n },
    ]);
    await driver.writeCheckpoint('projector', [{ partition: 1, offset: 5n }]);
    assert.deepEqual(await driver.readCheckpoint('projector'), [{ partition: 1, offset: 5n }]);
    assert.equal(await driver.readCheckpoint('other'), undefined);
    // Kafka sees a real group: committed offset = next offset to read.
    const admin = new Admin({ clientId: 'ckpt-check', bootstrapBrokers: KAFKA_BROKERS });
    const [group] = await admin.listConsumerGroupOffsets({
      groups: [{ groupId: driver.names.group('projector'), topics: [{ name: driver.names.events, partitionIndexes: [1] }] }],
    });
    assert.equal(group?.topics[0]?.partitions[0]?.committedOffset, 6n);
    await admin.close();
    await driver.deleteCheckpoint('projector');
    assert.equal(await driver.readCheckpoint('projector'), undefined);
    await driver.deleteCheckpoint('never-written');
  });
});
