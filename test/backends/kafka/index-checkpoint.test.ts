// Cold start from an index checkpoint: a writer checkpoints the core's index of its partition
// into the compacted index topic; a fresh process restores it and reads only the partition's
// tail after it, and still gets versions, reads, conflicts and duplicate ids right.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Admin, Producer } from '@platformatic/kafka';
import { kafka, type KafkaDriver } from '../../../src/backends/kafka/index.ts';
import { ensureTopic } from '../../../src/backends/kafka/admin.ts';
import { indexPartition, searchIndexCheckpoints } from '../../../src/backends/kafka/index-checkpoint-read.ts';
import { CheckpointSearch, checkpointRecords } from '../../../src/backends/kafka/index-checkpoints.ts';
import { type LogRecord, PartitionLog } from '../../../src/backends/kafka/log.ts';
import { KafkaNames } from '../../../src/backends/kafka/topics.ts';
import { combineIndex, decodeIndex, encodeIndex } from '../../../src/core/log/index-checkpoint.ts';
import { createEventStore, DuplicateEventIdError, ExpectedVersionConflictError } from '../../../src/index.ts';
import { accountEvents, Deposited } from '../../conformance/fixtures.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';
import { referenceCheckpoints } from './index-checkpoint-reference.ts';

const prefixes: string[] = [];
const closers: (() => Promise<void>)[] = [];

function open(prefix: string, indexCheckpointEvents = 500): { store: ReturnType<typeof storeOf>; driver: KafkaDriver } {
  const driver = kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 1, indexCheckpointEvents });
  const store = storeOf(driver);
  closers.push(() => store.close());
  return { store, driver };
}

function storeOf(driver: KafkaDriver) {
  return createEventStore({ driver, events: accountEvents });
}

after(async () => {
  await Promise.allSettled(closers.map((close) => close()));
  const admin = new Admin({ clientId: 'index-checkpoint-test-cleanup', bootstrapBrokers: KAFKA_BROKERS });
  const topics = new Set(await admin.listTopics());
  const mine = prefixes.flatMap((p) => {
    const names = new KafkaNames(p);
    return [names.events, names.snapshots, names.index()];
  });
  const existing = mine.filter((t) => topics.has(t));
  if (existing.length > 0) await admin.deleteTopics({ topics: existing });
  await admin.close();
});

describe('index checkpoints', () => {
  it('encode/decode round-trips an index exactly; foreign or truncated bytes decode to nothing', () => {
    const state = {
      through: 123_456_789_012n,
      streams: new Map([
        ['account-ä', [0, 1, 5, 2 ** 40]],
        ['x', [7]],
      ]),
      ids: [
        ['id-1', 0],
        ['id-2', 5],
      ] as [string, number][],
    };
    const bytes = encodeIndex(state);
    assert.deepEqual(decodeIndex(bytes), state);
    assert.equal(decodeIndex(bytes.subarray(0, bytes.length - 1)), undefined, 'truncated');
    assert.equal(decodeIndex(new TextEncoder().encode('{"json":true}')), undefined, 'not a checkpoint');
    assert.deepEqual(decodeIndex(encodeIndex({ through: undefined, streams: new Map(), ids: [] })), {
      through: undefined,
      streams: new Map(),
      ids: [],
    });
  });

  it('a cold process restores the checkpoint and reads only the tail after it', { timeout: 120_000 }, async () => {
    const prefix = uniqueName('kidx');
    prefixes.push(prefix);
    const writer = open(prefix);
    // 4,000 events over 30 streams, written 100 per append: full checkpoints at 500, …, 2500
    // and 3500, deltas at 3000 and 4000 (once a quarter of the index is more than 500 events).
    for (let round = 0; round < 40; round++) {
      await writer.store.append(
        `account-${round % 30}`,
        Array.from({ length: 100 }, () => Deposited({ amount: 1 })),
      );
    }
    // A stream whose last append's ids the duplicate check must still know after a restore.
    const last = Deposited({ amount: 7 });
    await writer.store.append('account-last', last);
    const checkpoints = await writer.driver.readIndexCheckpoints(0);
    assert.ok(checkpoints.full && checkpoints.delta, 'the writer wrote a full checkpoint and a delta');
    const full = decodeIndex(checkpoints.full);
    const restored = combineIndex(checkpoints.full, checkpoints.delta);
    assert.ok(full && restored && restored.state.through !== undefined, 'they decode');
    const count = (streams: Map<string, number[]>) => [...streams.values()].reduce((n, offsets) => n + offsets.length, 0);
    const covered = count(restored!.state.streams);
    assert.ok(count(full!.streams) <= 3500, 'the full checkpoint alone covers at most 3,500 events');
    assert.ok(covered >= 3900, `full and delta cover most of the partition (${covered} of 4001 events)`);

    const reader = open(prefix);
    assert.equal(await reader.store.streamVersion('account-3'), 200);
    const fetched = reader.driver.recordsFetched;
    assert.ok(fetched <= 4001 - covered + 100, `the cold reader fetched ${fetched} event records, not the partition's 4001`);
    const events = [];
    for await (const e of reader.store.readStream('account-29', { fromVersion: 91 })) events.push(e.version);
    assert.deepEqual(
      events,
      Array.from({ length: 10 }, (_, i) => 91 + i),
    );

    // The cold writer checks versions and recent ids against the restored index.
    const coldWriter = open(prefix);
    await assert.rejects(
      coldWriter.store.append('account-5', Deposited({ amount: 1 }), { expectedVersion: 199 }),
      ExpectedVersionConflictError,
    );
    const retry = await coldWriter.store.append('account-last', last, { expectedVersion: 0 });
    assert.equal(retry.alreadyStored, true, 'an exact retry of the last append is recognised');
    await assert.rejects(coldWriter.store.append('account-other', last), DuplicateEventIdError, 'a recent id is refused in another stream');
    const next = await coldWriter.store.append('account-5', Deposited({ amount: 1 }), { expectedVersion: 200 });
    assert.equal(next.nextExpectedVersion, 201);
    assert.equal(await writer.store.streamVersion('account-5'), 201, 'the first writer sees it');
  });
});

/** The old reader: every record of the index partition from offset 0, and what that fetched. */
async function fullScan(topic: string): Promise<{ records: LogRecord[]; fetched: number; end: bigint }> {
  const admin = new Admin({ clientId: 'index-checkpoint-test-scan', bootstrapBrokers: KAFKA_BROKERS });
  try {
    const log = new PartitionLog(admin);
    await log.describe(topic, 1);
    const end = await log.lastStable(topic, 0);
    const records: LogRecord[] = [];
    for (let at = 0n; at < end; ) {
      const page = await log.fetch(topic, 0, at);
      records.push(...page.records.filter((r) => r.offset < end));
      if (page.next <= at) break;
      at = page.next;
    }
    return { records, fetched: log.recordsFetched, end };
  } finally {
    await admin.close();
  }
}

/** A cold driver's read of partition 0's checkpoints, and the records it fetched for it. */
async function coldRead(prefix: string): Promise<{ full?: Uint8Array; delta?: Uint8Array; fetched: number }> {
  const driver = kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 1 });
  await driver.open();
  try {
    const before = driver.recordsFetched;
    const checkpoints = await driver.readIndexCheckpoints(0);
    return { ...checkpoints, fetched: driver.recordsFetched - before };
  } finally {
    await driver.close();
  }
}

const sameBytes = (actual: Uint8Array | undefined, expected: Uint8Array | undefined, what: string) =>
  assert.ok(
    actual === expected || (actual && expected && Buffer.from(actual).equals(Buffer.from(expected))),
    `${what}: ${actual?.byteLength} bytes, expected ${expected?.byteLength}`,
  );

describe('cold read of index checkpoints: backwards from the end', () => {
  it('reads a few records of an uncompacted index partition, not its whole history', { timeout: 300_000 }, async () => {
    const prefix = uniqueName('kidxb');
    prefixes.push(prefix);
    // A checkpoint after every append of 10 events: 150 of them, full ones ever wider apart (a
    // quarter's growth), deltas between; the topic's active segment is never compacted.
    const writer = open(prefix, 10);
    for (let round = 0; round < 150; round++) {
      await writer.store.append(
        `account-${round % 20}`,
        Array.from({ length: 10 }, () => Deposited({ amount: 1 })),
      );
    }
    await writer.store.close(); // its last checkpoints are written in the background: wait for them
    const topic = new KafkaNames(prefix).index();
    const old = await fullScan(topic);
    const expected = referenceCheckpoints(old.records);
    assert.ok(old.records.length >= 140, `the index partition holds ${old.records.length} checkpoint records`);
    assert.ok(expected.full && expected.delta, 'the last full checkpoint has a delta after it');
    const cold = await coldRead(prefix);
    sameBytes(cold.full, expected.full, 'full');
    sameBytes(cold.delta, expected.delta, 'delta');
    assert.ok(cold.fetched <= 40, `the cold read fetched ${cold.fetched} records; the old full scan ${old.fetched}`);
    console.log(`index partition of ${old.records.length} records: cold read fetched ${cold.fetched}, a full scan ${old.fetched}`);
  });

  it('skips a torn checkpoint and an aborted one for the previous complete one, across windows', { timeout: 180_000 }, async () => {
    const prefix = uniqueName('kidxt');
    prefixes.push(prefix);
    const driver = kafka({ brokers: KAFKA_BROKERS, prefix, partitions: 1 });
    closers.push(() => driver.close());
    await driver.open();
    const lease = await driver.claimPartition(0);
    const full = new Uint8Array(1_200_000).map((_, i) => (i * 7) % 251); // 3 chunks
    await lease.writeIndexCheckpoint!(full, 'full'); // offsets 0-2, its commit marker at 3
    // 20 deltas of 2 offsets each, then 5 offsets below: the windows [33, 49) and [1, 33) leave
    // the full one's chunk 0 to the window [0, 1): it straddles two windows.
    const deltas = Array.from({ length: 20 }, (_, i) => new Uint8Array(100 + i).fill(i));
    for (const delta of deltas) await lease.writeIndexCheckpoint!(delta, 'delta');
    await lease.release();
    const target = { topic: new KafkaNames(prefix).index(), partition: 0 };
    // An aborted transaction (its records are never read) and, written without one, a full
    // checkpoint without its last chunk and a delta without its last.
    const aborting = new Producer({
      clientId: 'index-checkpoint-test-abort',
      bootstrapBrokers: KAFKA_BROKERS,
      transactionalId: uniqueName('kidx-abort'),
      idempotent: true,
    });
    const transaction = await aborting.beginTransaction();
    for (const record of checkpointRecords(target, new Uint8Array(10).fill(5))) await transaction.send({ messages: [record] as never });
    await transaction.abort();
    await aborting.close();
    const plain = new Producer({ clientId: 'index-checkpoint-test-torn', bootstrapBrokers: KAFKA_BROKERS });
    const torn = [
      ...checkpointRecords(target, new Uint8Array(1_200_000).fill(9)).slice(0, 2),
      ...checkpointRecords(target, new Uint8Array(700_000).fill(8), 'delta').slice(0, 1),
    ];
    for (const record of torn) await plain.send({ messages: [record] as never });
    await plain.close();

    const old = await fullScan(target.topic);
    assert.equal(old.end, 49n, 'the offsets are as planned');
    const expected = referenceCheckpoints(old.records);
    sameBytes(expected.full, full, 'the reference takes the complete full checkpoint');
    sameBytes(expected.delta, deltas.at(-1), 'and the last complete delta');
    const cold = await coldRead(prefix);
    sameBytes(cold.full, full, 'full');
    sameBytes(cold.delta, deltas.at(-1), 'delta');
    console.log(`torn and aborted checkpoints: cold read fetched ${cold.fetched} records, a full scan ${old.fetched}`);
  });

  it('never asks below the log start (an operator gave the index topic retention)', { timeout: 120_000 }, async () => {
    const prefix = uniqueName('kidxs');
    prefixes.push(prefix);
    const target = { topic: new KafkaNames(prefix).index(), partition: 0 };
    const admin = new Admin({ clientId: 'index-checkpoint-test-start', bootstrapBrokers: KAFKA_BROKERS });
    const later = new Uint8Array(50).fill(2);
    try {
      // Created before the driver does, with deletion allowed: DeleteRecords is refused on a compact-only topic.
      await ensureTopic(admin, {
        topic: target.topic,
        partitions: 1,
        replicas: 1,
        configs: { 'cleanup.policy': 'compact,delete', 'retention.ms': '-1' },
      });
      const plain = new Producer({ clientId: 'index-checkpoint-test-start', bootstrapBrokers: KAFKA_BROKERS });
      const full = new Uint8Array(40).fill(1);
      const deltas = Array.from({ length: 30 }, (_, i) => new Uint8Array(20).fill(i));
      // A full checkpoint at offset 0, deltas at 1-30, another full one at 31 and a delta at 32.
      for (const record of [full, ...deltas].flatMap((bytes, i) => checkpointRecords(target, bytes, i === 0 ? 'full' : 'delta')))
        await plain.send({ messages: [record] as never });
      for (const record of [...checkpointRecords(target, later), ...checkpointRecords(target, new Uint8Array(5).fill(3), 'delta')])
        await plain.send({ messages: [record] as never });
      await plain.close();
      const log = new PartitionLog(admin);
      await log.describe(target.topic, 1);
      assert.equal(await log.logStart(target.topic, 0), 0n);
      await admin.deleteRecords({ topics: [{ name: target.topic, partitions: [{ partition: 0, offset: 31n }] }] });
      assert.equal(await log.logStart(target.topic, 0), 31n, 'the log now starts at the second full checkpoint');
      const asked: bigint[] = [];
      const partition = indexPartition(log, target.topic, 0);
      const fetch = (from: bigint, max: number) => {
        asked.push(from);
        return partition.fetch(from, max);
      };
      const found = await searchIndexCheckpoints({ ...partition, fetch });
      sameBytes(found.full, later, 'full');
      assert.deepEqual(asked, [31n], 'one fetch, from the log start');
      // Retention ran after the search asked for the bounds: the broker refuses the fetch below
      // the new start, and the search goes on from there.
      let calls = 0;
      const bounds = async () => ({ start: calls++ === 0 ? 0n : 31n, end: 33n });
      const late = await searchIndexCheckpoints({ ...partition, bounds });
      sameBytes(late.full, later, 'full, read after a refused fetch');
      sameBytes(late.delta, new Uint8Array(5).fill(3), 'delta, read after a refused fetch');
    } finally {
      await admin.close();
    }
    const cold = await coldRead(prefix);
    sameBytes(cold.full, later, 'full');
    sameBytes(cold.delta, new Uint8Array(5).fill(3), 'delta');
    assert.equal(cold.fetched, 2, 'one window, [31, 33): only what is left');
  });
});

describe('index checkpoint chunks', () => {
  const target = { topic: 't', partition: 0 };
  const asRead = (records: ReturnType<typeof checkpointRecords>, from = 0): LogRecord[] =>
    records.map((r, i) => ({ offset: BigInt(from + i), key: r.key, value: r.value, headers: [...r.headers], timestamp: r.timestamp }));

  it('reassembles a checkpoint of several chunks, and takes the last complete one', () => {
    const big = new Uint8Array(1_300_000).map((_, i) => i % 251);
    const older = checkpointRecords(target, new Uint8Array([1, 2, 3]));
    const chunks = checkpointRecords(target, big);
    assert.equal(chunks.length, 3, 'split in 512 KiB chunks');
    const search = new CheckpointSearch();
    assert.equal(search.addWindow([...asRead(older), ...asRead(chunks, 10)]), true, 'done: a full checkpoint was found');
    assert.deepEqual(Buffer.from(search.result.full!), Buffer.from(big));
  });

  it('ignores an incomplete checkpoint and stray chunks of older ones (compaction leftovers)', () => {
    const complete = checkpointRecords(target, new Uint8Array(700_000).fill(7));
    const stray = checkpointRecords(target, new Uint8Array(1_200_000).fill(1)).slice(2); // its chunk 2 only
    const partial = checkpointRecords(target, new Uint8Array(1_200_000).fill(9)).slice(0, 2); // no chunk 2
    const search = new CheckpointSearch();
    search.addWindow([...asRead(stray), ...asRead(complete, 5), ...asRead(partial, 20)]);
    assert.deepEqual(Buffer.from(search.result.full!), Buffer.from(new Uint8Array(700_000).fill(7)));
  });

  it('a torn checkpoint followed by strays of another one with as many chunks is no checkpoint', () => {
    const torn = checkpointRecords(target, new Uint8Array(1_200_000).fill(1)).slice(0, 1); // chunk 0 of 3
    const strays = checkpointRecords(target, new Uint8Array(1_200_000).fill(2)).slice(1); // chunks 1 and 2 of 3
    const search = new CheckpointSearch();
    assert.equal(search.addWindow([...asRead(torn), ...asRead(strays, 1)]), false, 'not done: no complete full checkpoint');
    assert.equal(search.result.full, undefined);
  });

  it('keeps a full checkpoint and a delta apart: a delta never replaces the full one', () => {
    const full = checkpointRecords(target, new Uint8Array(600_000).fill(3));
    const delta = checkpointRecords(target, new Uint8Array(10).fill(4), 'delta');
    assert.ok(delta.every((r) => r.key.toString().startsWith('delta-')) && full.every((r) => r.key.toString().startsWith('chunk-')));
    const search = new CheckpointSearch();
    search.addWindow([...asRead(full), ...asRead(delta, 5)]);
    assert.deepEqual(Buffer.from(search.result.full!), Buffer.from(new Uint8Array(600_000).fill(3)));
    assert.deepEqual(Buffer.from(search.result.delta!), Buffer.from(new Uint8Array(10).fill(4)));
    const before = new CheckpointSearch();
    before.addWindow([...asRead(delta), ...asRead(full, 5)]);
    assert.equal(before.result.delta, undefined, 'a delta older than the full checkpoint extends an older one: not returned');
  });
});
