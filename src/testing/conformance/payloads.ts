// Payloads at the codec's edge: what JSON cannot store is refused with its path and nothing is
// stored; what it can store reads back equal; nesting past the limit is a typed error. Run
// inside the conformance suite on every backend (`it` there closes the stores a test opened).
import assert from 'node:assert/strict';
import { InvalidEventError } from '../../index.ts';
import { MAX_PAYLOAD_DEPTH, MAX_PAYLOAD_OBJECTS } from '../../core/payload-shape.ts';
import { Deposited, Free } from './fixtures.ts';
import type { OpenStore } from './open-store.ts';
import type { TestRunner } from '../runner.ts';

type Collect = <T>(iterable: AsyncIterable<T>) => Promise<T[]>;

class Money {
  readonly cents: number;
  constructor(cents: number) {
    this.cents = cents;
  }
}

function nested(levels: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

export function payloadTests(
  { describe, it }: Pick<TestRunner, 'describe' | 'it'>,
  open: OpenStore,
  fresh: (label: string) => string,
  collect: Collect,
): void {
  const events = [Deposited, Free] as const;

  describe('payloads JSON cannot store', () => {
    const circular: Record<string, unknown> = { id: 1 };
    circular['self'] = circular;
    // [what, payload, the path the error names, what the message says]
    const refused: [string, unknown, string, RegExp][] = [
      ['undefined', undefined, 'data', /undefined is not representable/],
      ['a function', () => 1, 'data', /function/],
      ['a symbol', Symbol('s'), 'data', /symbol/],
      ['toJSON returning undefined', { toJSON: () => undefined }, 'data.toJSON', /function/],
      ['NaN deep inside', { items: [{}, {}, {}, { price: Number.NaN }] }, 'data.items[3].price', /NaN is not representable in JSON/],
      ['Infinity', { total: Number.POSITIVE_INFINITY }, 'data.total', /Infinity/],
      ['-Infinity', [Number.NEGATIVE_INFINITY], 'data[0]', /-Infinity/],
      ['a bigint', { n: 10n }, 'data.n', /bigint/],
      ['a Map', { m: new Map([['a', 1]]) }, 'data.m', /Map/],
      ['a Set', { s: new Set([1]) }, 'data.s', /Set/],
      ['a Date', { at: new Date(0) }, 'data.at', /Date.*toISOString/],
      ['an invalid Date', { at: new Date('nope') }, 'data.at', /Date/],
      ['a class instance', { price: new Money(5) }, 'data.price', /Money instance/],
      ['an Error', { error: new Error('x') }, 'data.error', /Error instance/],
      ['binary data', { bytes: new Uint8Array([1]) }, 'data.bytes', /binary/],
      // biome-ignore lint/suspicious/noSparseArray: the hole is the hostile input under test
      ['a sparse array', { list: [1, , 3] }, 'data.list[1]', /hole/],
      ['undefined in an array', { list: [1, undefined] }, 'data.list[1]', /undefined in an array/],
      ['a symbol key', { [Symbol('k')]: 1, ok: true }, 'data', /symbol keys/],
      ['a cycle', circular, 'data.self', /circular/],
      ['an odd key', { 'x-y': { z: Number.NaN } }, 'data["x-y"].z', /NaN/],
    ];

    it('refuses each with an InvalidEventError naming its path, and the log stays readable', async () => {
      const name = fresh('json-refused');
      const store = await open(name, { events });
      await store.append('free-1', [Free({ fine: true }), Deposited({ amount: 1 })]);
      const before = await collect(store.readAll());
      for (const [what, payload, path, message] of refused) {
        const check = (error: unknown): boolean => {
          assert.ok(error instanceof InvalidEventError, `${what}: ${String(error)}`);
          assert.equal(error.eventType, 'Free');
          assert.ok(error.message.includes(`${path}: `), `${what}: the message names ${path}: ${error.message}`);
          assert.match(error.message, message, what);
          assert.equal(error.issues[0]?.path[0], 'data');
          return true;
        };
        // The constructor may refuse it already (a cycle), or the codec at the append.
        await assert.rejects(async () => store.append('free-1', [Free(payload)]), check, what);
        await assert.rejects(store.append('free-2', { type: 'Free', data: payload } as never), check, what);
      }
      assert.deepEqual(await collect(store.readAll()), before, 'nothing was stored');
      assert.equal(await store.streamVersion('free-2'), 0);
      const reopened = await open(name, { events });
      assert.deepEqual(await collect(reopened.readAll()), before);
      assert.equal((await collect(reopened.readStream('free-1'))).length, 2);
    });

    it('stores what JSON can, and reads it back equal', async () => {
      const store = await open(fresh('json-equal'), { events });
      const payloads: unknown[] = [
        null,
        0,
        -1.5e-300,
        Number.MAX_SAFE_INTEGER,
        '',
        'naïve 🎉 \u2028 "quoted" \\ \u0000',
        '\ud800 a lone surrogate',
        true,
        [],
        {},
        [1, 'two', null, false, [[]], { x: [{}] }],
        { nested: { deeper: { list: [1, 2, { k: 'v' }] } }, 'odd key': 1, '': 'empty key', 123: 'numeric key' },
        nested(MAX_PAYLOAD_DEPTH),
      ];
      await store.append(
        'free-ok',
        payloads.map((p) => Free(p)),
      );
      const read = await collect(store.readStream('free-ok'));
      assert.deepEqual(
        read.map((e) => e.data),
        payloads,
      );
    });

    it('treats an undefined property as absent: it reads back without the key', async () => {
      const store = await open(fresh('json-undefined'), { events });
      await store.append('free-u', Free({ kept: 1, dropped: undefined }));
      const [event] = await collect(store.readStream('free-u'));
      assert.deepEqual(event?.data, { kept: 1 });
      assert.equal(Object.hasOwn(event?.data as object, 'dropped'), false);
    });
  });

  describe('deep nesting', () => {
    it(`accepts ${MAX_PAYLOAD_DEPTH} levels and refuses any deeper with a typed error, never a stack overflow`, async () => {
      const store = await open(fresh('deep'), { events });
      for (const levels of [MAX_PAYLOAD_DEPTH + 1, 7_000, 100_000]) {
        const payload = nested(levels);
        const check = (error: unknown): boolean => {
          assert.ok(error instanceof InvalidEventError, `${levels} levels: ${String(error)}`);
          assert.match(error.message, new RegExp(`nested deeper than ${MAX_PAYLOAD_DEPTH} levels`));
          return true;
        };
        assert.throws(() => Free(payload), check);
        await assert.rejects(store.append('free-deep', { type: 'Free', data: payload } as never), check);
        let array: unknown = 0;
        for (let i = 0; i < levels; i++) array = [array];
        assert.throws(() => Free(array), check);
      }
      await store.append('free-deep', Free(nested(MAX_PAYLOAD_DEPTH)));
      assert.equal(await store.streamVersion('free-deep'), 1);
    });

    it('sees depth through shared objects, refuses cycles, and stops at a graph that would expand past its object limit', async () => {
      const store = await open(fresh('shared'), { events });
      const deepCheck = (error: unknown): boolean => error instanceof InvalidEventError && /nested deeper than/.test(error.message);
      // The shared part is first met near the top, then again 100 levels down: 300 levels in all.
      const shared = nested(200);
      assert.throws(() => Free({ a: shared, b: nested(100, shared) }), deepCheck);
      const loop: Record<string, unknown> = { n: 1 };
      loop['next'] = { back: loop };
      assert.throws(
        () => Free(loop),
        (error: unknown) => error instanceof InvalidEventError && /data\.next\.back: circular reference/.test(error.message),
      );
      // 2^60 arrays as JSON from 61 objects: refused quickly, not expanded.
      let graph: unknown = [];
      for (let i = 0; i < 60; i++) graph = [graph, graph];
      const started = performance.now();
      await assert.rejects(store.append('free-graph', Free(graph)), (error: unknown) => {
        assert.ok(error instanceof InvalidEventError, String(error));
        assert.match(error.message, new RegExp(`more than ${MAX_PAYLOAD_OBJECTS} objects`));
        return true;
      });
      assert.ok(performance.now() - started < 30_000, 'refused in bounded time');
      assert.equal(await store.streamVersion('free-graph'), 0);
    });
  });
}
