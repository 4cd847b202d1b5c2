// Cold start from an index checkpoint: a writer checkpoints the core's index of its partition
// into the compacted index topic; a fresh process restores it and reads only the partition's
// tail after it, and still gets versions, reads, conflicts and duplicate ids right.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Admin } from '@platformatic/kafka';
import { kafka, type KafkaDriver } from '../../../src/backends/kafka/index.ts';
import { CheckpointAssembler, checkpointRecords } from '../../../src/backends/kafka/index-checkpoints.ts';
import type { LogRecord } from '../../../src/backends/kafka/log.ts';
import { KafkaNames } from '../../../src/backends/kafka/topics.ts';
import { combineIndex, decodeIndex, encodeIndex } from '../../../src/core/log/index-checkpoint.ts';
import { createEventStore, DuplicateEventIdError, ExpectedVersionConflictError } from '../../../src/index.ts';
import { accountEvents, Deposited } from '../../conformance/fixtures.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';

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

describe('index checkpoint chunks', () => {
  const target = { topic: 't', partition: 0 };
  const asRead = (records: ReturnType<typeof checkpointRecords>, from = 0): LogRecord[] =>
    records.map((r, i) => ({ offset: BigInt(from + i), key: r.key, value: r.value, headers: [...r.headers], timestamp: r.timestamp }));

  it('reassembles a checkpoint of several chunks, and takes the last complete one', () => {
    const big = new Uint8Array(1_300_000).map((_, i) => i % 251);
    const older = checkpointRecords(target, new Uint8Array([1, 2, 3]));
    const chunks = checkpointRecords(target, big);
    assert.equal(chunks.length, 3, 'split in 512 KiB chunks');
    const assembler = new CheckpointAssembler();
    for (const r of [...asRead(older), ...asRead(chunks, 10)]) assembler.add(r);
    assert.deepEqual(Buffer.from(assembler.latest.full!), Buffer.from(big));
  });

  it('ignores an incomplete checkpoint and stray chunks of older ones (compaction leftovers)', () => {
    const complete = checkpointRecords(target, new Uint8Array(700_000).fill(7));
    const stray = checkpointRecords(target, new Uint8Array(1_200_000).fill(1)).slice(2); // its chunk 2 only
    const partial = checkpointRecords(target, new Uint8Array(1_200_000).fill(9)).slice(0, 2); // no chunk 2
    const assembler = new CheckpointAssembler();
    for (const r of [...asRead(stray), ...asRead(complete, 5), ...asRead(partial, 20)]) assembler.add(r);
    assert.deepEqual(Buffer.from(assembler.latest.full!), Buffer.from(new Uint8Array(700_000).fill(7)));
  });

  it('keeps a full checkpoint and a delta apart: a delta never replaces the full one', () => {
    const full = checkpointRecords(target, new Uint8Array(600_000).fill(3));
    const delta = checkpointRecords(target, new Uint8Array(10).fill(4), 'delta');
    assert.ok(delta.every((r) => r.key.toString().startsWith('delta-')) && full.every((r) => r.key.toString().startsWith('chunk-')));
    const assembler = new CheckpointAssembler();
    for (const r of [...asRead(full), ...asRead(delta, 5)]) assembler.add(r);
    assert.deepEqual(Buffer.from(assembler.latest.full!), Buffer.from(new Uint8Array(600_000).fill(3)));
    assert.deepEqual(Buffer.from(assembler.latest.delta!), Buffer.from(new Uint8Array(10).fill(4)));
  });
});
