// Core rules that do not depend on a backend.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  anyOf,
  assertStreamName,
  categoryOf,
  defineEvent,
  everyInterval,
  everyNEvents,
  InvalidArgumentError,
  InvalidEventError,
  InvalidStreamNameError,
  jsonCodec,
  partitionOf,
  whenStateExceeds,
  type SnapshotContext,
} from '../../src/index.ts';
import { murmur2 } from '../../src/core/partition.ts';

describe('partitioning', () => {
  it("matches Kafka's murmur2 on known vectors", () => {
    // Expected values of org.apache.kafka.common.utils.Utils.murmur2.
    const vectors: [string, number][] = [
      ['1', -1993445489],
      ['12', 126087238],
      ['123', -267702483],
      ['1234', -1614185708],
      ['12345', -1188365604],
    ];
    for (const [key, hash] of vectors) assert.equal(murmur2(new TextEncoder().encode(key)), hash, key);
  });

  it('puts a stream always in the same partition, spread over all of them', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) {
      const p = partitionOf(`order-${i}`, 8);
      assert.equal(partitionOf(`order-${i}`, 8), p);
      counts[p]!++;
    }
    for (const c of counts) assert.ok(c > 800 && c < 1200, `partition sizes ${counts.join(',')}`);
    assert.equal(partitionOf('anything', 1), 0);
  });
});

describe('stream names', () => {
  it('accepts ordinary names and gives the category', () => {
    for (const ok of ['order-42', 'order-1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed', 'Account_7.eu', 'x']) assertStreamName(ok);
    assert.equal(categoryOf('order-42-a'), 'order');
    assert.equal(categoryOf('ledger'), 'ledger');
  });
  it('rejects names that could reach another key or topic', () => {
    for (const bad of ['a/b', 'a:b', 'a{b}', 'a*', 'a..b', 'ümlaut', ' a', '']) {
      assert.throws(() => assertStreamName(bad), InvalidStreamNameError, bad);
    }
  });
});

describe('event types', () => {
  const Named = defineEvent({ type: 'Named', schema: z.object({ name: z.string().min(1) }) });

  it('builds frozen events with ids and validated data', () => {
    const e = Named({ name: 'x' }, { metadata: { tenant: 't1' } });
    assert.equal(e.type, 'Named');
    assert.match(e.id, /^[0-9a-f-]{36}$/);
    assert.ok(Object.isFrozen(e) && Object.isFrozen(e.data) && Object.isFrozen(e.metadata));
    assert.notEqual(Named({ name: 'x' }).id, e.id);
    assert.equal(Named({ name: 'x' }, { id: 'fixed' }).id, 'fixed');
  });

  it('reports schema issues with their path', () => {
    assert.throws(
      () => Named({ name: '' }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidEventError);
        assert.deepEqual(error.issues[0]?.path, ['name']);
        assert.match(error.message, /invalid Named event: name:/);
        return true;
      },
    );
  });

  it('refuses asynchronous schemas, bad names and versions', () => {
    const AsyncSchema = defineEvent({ type: 'Async', schema: z.object({ a: z.string() }).refine(async () => true) });
    assert.throws(() => AsyncSchema({ a: 'x' }), InvalidArgumentError);
    assert.throws(() => defineEvent({ type: 'bad name', schema: z.object({}) }), InvalidArgumentError);
    assert.throws(() => defineEvent({ type: 'V0', schema: z.object({}), schemaVersion: 0 }), InvalidArgumentError);
    assert.throws(
      () => defineEvent({ type: 'Gap', schema: z.object({}), schemaVersion: 3, upcasters: { 1: (x) => x } }),
      InvalidArgumentError,
    );
  });
});

describe('json codec', () => {
  it('round-trips and refuses __proto__ keys when decoding', () => {
    const codec = jsonCodec();
    const bytes = codec.encode({ type: 'T', schemaVersion: 1, data: { a: [1, 'b', null] } });
    assert.deepEqual(codec.decode({ type: 'T', schemaVersion: 1, data: bytes }), { a: [1, 'b', null] });
    const hostile = new TextEncoder().encode('{"a":{"__proto__":{"polluted":true}}}');
    assert.throws(() => codec.decode({ type: 'T', schemaVersion: 1, data: hostile }), /__proto__/);
    assert.throws(() => codec.decode({ type: 'T', schemaVersion: 1, data: new Uint8Array([0xff, 0xfe]) }));
  });
});

describe('snapshot policies', () => {
  const ctx = (over: Partial<SnapshotContext>): SnapshotContext => ({
    version: 10,
    eventsSinceSnapshot: 1,
    stateBytes: 10,
    msSinceSnapshot: 0,
    ...over,
  });
  it('every N events, state size, time window, any of', () => {
    assert.equal(everyNEvents(5)(ctx({ eventsSinceSnapshot: 4 })), false);
    assert.equal(everyNEvents(5)(ctx({ eventsSinceSnapshot: 5 })), true);
    assert.equal(whenStateExceeds(100)(ctx({ stateBytes: 99 })), false);
    assert.equal(whenStateExceeds(100)(ctx({ stateBytes: 100 })), true);
    assert.equal(everyInterval(1000)(ctx({ msSinceSnapshot: 999 })), false);
    assert.equal(everyInterval(1000)(ctx({ msSinceSnapshot: 1000 })), true);
    assert.equal(everyInterval(1000)(ctx({ msSinceSnapshot: undefined })), true);
    assert.equal(anyOf(everyNEvents(100), whenStateExceeds(5))(ctx({})), true);
    assert.equal(anyOf(everyNEvents(100), whenStateExceeds(50))(ctx({})), false);
    assert.throws(() => everyNEvents(0), InvalidArgumentError);
  });
});
