// Every public entry point refuses a wrong argument with an InvalidArgumentError that names it,
// before anything reaches the backend; and `handle` says how many attempts it took.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  anyOf,
  createEventStore,
  defineAggregate,
  defineEvent,
  everyInterval,
  everyNEvents,
  ExpectedVersionConflictError,
  InvalidArgumentError,
  whenStateExceeds,
} from '../../src/index.ts';
import { kafka } from '../../src/backends/kafka/index.ts';
import { redis } from '../../src/backends/redis/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';

const Added = defineEvent({ type: 'Added', schema: z.object({ n: z.number() }) });
const counterWith = (decide: (n: number) => ReturnType<typeof Added> | ReturnType<typeof Added>[]) =>
  defineAggregate({ name: 'counter', events: [Added], initialState: () => 0, evolve: (total: number, e) => total + e.data.n, decide });
const counter = counterWith((n) => Added({ n }));

/** Wrong values of every kind, typed as anything so the calls below compile. */
const sym = Symbol('s') as never;
const bad = <T = never>(value: unknown): T => value as T;

async function drain(iterable: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of iterable) break;
}

describe('argument checks', () => {
  it('refuses a wrong argument of every public call with an InvalidArgumentError naming it', async () => {
    const store = createEventStore({ driver: sqlite(), events: [Added] });
    const repo = store.aggregate(counter);
    await store.append('counter-1', Added({ n: 1 }));
    const before = await store.streamVersion('counter-1');

    // [the argument the message must name, the call]
    const calls: [string, () => unknown][] = [
      ['createEventStore options', () => createEventStore(bad(undefined))],
      ['driver', () => createEventStore({ driver: bad('sqlite'), events: [] })],
      ['driver', () => createEventStore({ driver: bad({}), events: [] })],
      ['events', () => createEventStore({ driver: sqlite(), events: bad(Added) })],
      ['events[1]', () => createEventStore({ driver: sqlite(), events: bad([Added, 'Removed']) })],
      ['maxEventBytes', () => createEventStore({ driver: sqlite(), events: [Added], maxEventBytes: bad('1mb') })],
      ['codec', () => createEventStore({ driver: sqlite(), events: [Added], codec: bad('json') })],
      ['codec.encode', () => createEventStore({ driver: sqlite(), events: [Added], codec: bad({ name: 'x', decode: () => 1 }) })],
      ['validateOnRead', () => createEventStore({ driver: sqlite(), events: [Added], validateOnRead: bad('yes') })],
      ['onBackgroundError', () => createEventStore({ driver: sqlite(), events: [Added], onBackgroundError: bad(console) })],
      ['clock', () => createEventStore({ driver: sqlite(), events: [Added], clock: bad(Date.now()) })],
      ['defineEvent options', () => defineEvent(bad('Added'))],
      ['event type name', () => defineEvent({ type: sym, schema: z.number() })],
      ['schema of Thing', () => defineEvent({ type: 'Thing', schema: bad({ parse: () => 1 }) })],
      ['schemaVersion of Thing', () => defineEvent({ type: 'Thing', schema: z.number(), schemaVersion: bad('2') })],
      ['upcasters of Thing', () => defineEvent({ type: 'Thing', schema: z.number(), schemaVersion: 2, upcasters: bad(5) })],
      ['Added options', () => Added({ n: 1 }, bad('id-1'))],
      ['aggregate definition', () => defineAggregate(bad(null))],
      ['aggregate name', () => defineAggregate({ ...counter, name: sym })],
      ['counter.evolve', () => defineAggregate({ ...counter, evolve: bad(1) })],
      ['counter.snapshot.policy', () => defineAggregate({ ...counter, snapshot: { policy: bad(10) } })],
      ['aggregate definition', () => store.aggregate(bad('counter'))],
      ['counter.decide', () => store.aggregate({ ...counter, decide: bad(undefined) })],
      ['streamId', () => store.append(sym, Added({ n: 1 }))],
      ['streamId', () => store.append(bad(42), Added({ n: 1 }))],
      ['append options', () => store.append('counter-1', Added({ n: 1 }), bad(5))],
      ['expectedVersion', () => store.append('counter-1', Added({ n: 1 }), { expectedVersion: bad('latest') })],
      ['appendMany batches', () => store.appendMany(bad({ streamId: 'counter-1' }))],
      ['appendMany batches[0]', () => store.appendMany(bad([null]))],
      ['streamId', () => store.streamVersion(sym)],
      ['streamId', () => store.partitionOf(bad(undefined))],
      ['streamId', () => drain(store.readStream(sym))],
      ['readStream options', () => drain(store.readStream('counter-1', bad('all')))],
      ['fromVersion', () => drain(store.readStream('counter-1', { fromVersion: bad('1') }))],
      ['toVersion', () => drain(store.readStream('counter-1', { toVersion: -1 }))],
      ['batchSize', () => drain(store.readStream('counter-1', { batchSize: 0 }))],
      ['after', () => drain(store.readStream('counter-1', { after: bad(5n) }))],
      ['after.offset', () => drain(store.readStream('counter-1', { after: bad({ partition: 0, offset: 5 }) }))],
      ['readAll options', () => drain(store.readAll(bad(1)))],
      ['after', () => drain(store.readAll({ after: bad({ partition: 0, offset: 0n }) }))],
      ['after[0].partition', () => drain(store.readAll({ after: [bad({ partition: -1, offset: 0n })] }))],
      ['since', () => drain(store.readSince(bad('yesterday')))],
      ['since', () => drain(store.readSince(new Date('not a date')))],
      ['since', () => drain(store.readSince(bad(Date.now())))],
      ['readSince options', () => drain(store.readSince(new Date(), bad('fast')))],
      ['subscribe options', () => store.subscribe(bad(undefined))],
      ['group name', () => store.subscribe({ group: sym, handler: () => undefined })],
      ['handler', () => store.subscribe({ group: 'g', handler: bad('log') })],
      ['start', () => store.subscribe({ group: 'g', handler: () => undefined, start: bad('now') })],
      ['batchSize', () => store.subscribe({ group: 'g', handler: () => undefined, batchSize: 1.5 })],
      ['pollIntervalMs', () => store.subscribe({ group: 'g', handler: () => undefined, pollIntervalMs: bad('1s') })],
      ['retries', () => store.subscribe({ group: 'g', handler: () => undefined, retries: -1 })],
      ['signal', () => store.subscribe({ group: 'g', handler: () => undefined, signal: bad({ aborted: false }) })],
      ['positions.save', () => store.subscribe({ group: 'g', handler: () => undefined, positions: bad({ load: async () => undefined }) })],
      ['group name', () => store.subscriptions.position(sym)],
      ['positions', () => store.subscriptions.seek('g', bad({ partition: 0, offset: 1n }))],
      ['positions[0].offset', () => store.subscriptions.seek('g', [bad({ partition: 0, offset: 1 })])],
      ['consume options', () => store.consume(bad('g'))],
      ['group name', () => store.resetConsumerGroup(sym)],
      ['listener', () => store.onAppend(bad(undefined))],
      ['id', () => repo.load(sym)],
      ['id', () => repo.load(bad(1))],
      ['id', () => repo.streamId(bad({}))],
      ['id', () => repo.handle(sym, 1)],
      ['handle options', () => repo.handle('1', 1, bad(3))],
      ['retries', () => repo.handle('1', 1, { retries: bad('3') })],
      ['expectedVersion', () => repo.handle('1', 1, { expectedVersion: -1 })],
      ['loadAt at', () => repo.loadAt('1', bad(3))],
      ['at.version', () => repo.loadAt('1', { version: bad('2') })],
      ['at.time', () => repo.loadAt('1', { time: bad('2026-01-01') })],
      ['everyNEvents(n)', () => everyNEvents(bad('10'))],
      ['whenStateExceeds(bytes)', () => whenStateExceeds(0)],
      ['everyInterval(ms)', () => everyInterval(Number.NaN)],
      ['anyOf policy 2', () => anyOf(everyNEvents(1), bad(5))],
      ['sqlite options', () => sqlite(bad('events.db'))],
      ['path', () => sqlite({ path: bad(5) })],
      ['synchronous', () => sqlite({ synchronous: bad('off') })],
      // Driver factories check before they connect (nothing listens on these).
      ['redis options', () => redis(bad('redis://127.0.0.1:1'))],
      ['url', () => redis({ url: bad(6379) })],
      ['partitions', () => redis({ partitions: 0 })],
      ['prefix', () => redis({ prefix: sym })],
      ['kafka options', () => kafka(bad('127.0.0.1:1'))],
      ['brokers', () => kafka({ brokers: bad('127.0.0.1:1') })],
      ['brokers[0]', () => kafka({ brokers: [bad(9092)] })],
      ['categories[1]', () => kafka({ categories: ['order', bad(null)] })],
      ['transactionTimeoutMs', () => kafka({ transactionTimeoutMs: bad('10s') })],
    ];
    for (const [name, call] of calls) {
      let outcome: unknown;
      try {
        outcome = await call();
      } catch (error) {
        outcome = error;
      }
      assert.ok(outcome instanceof InvalidArgumentError, `${name}: expected an InvalidArgumentError, got ${String(outcome)}`);
      assert.ok(outcome.message.includes(name), `the message names ${name}: ${outcome.message}`);
    }
    assert.equal(await store.streamVersion('counter-1'), before, 'nothing was appended');
    await store.close();
  });

  it('passes an error thrown by the caller’s own getter through unchanged', async () => {
    const store = createEventStore({ driver: sqlite(), events: [Added] });
    const own = new Error('from the caller');
    const options = {
      get expectedVersion(): number {
        throw own;
      },
    };
    await assert.rejects(store.append('counter-1', Added({ n: 1 }), options), (error) => error === own);
    await store.close();
  });
});

describe('handle results', () => {
  it('counts the attempts and the version conflicts a command took', async () => {
    const store = createEventStore({ driver: sqlite(), events: [Added] });
    let interfere = 2;
    // Another writer appends between this load and this append, twice.
    const racy = store.aggregate(
      counterWith((n) => {
        if (interfere-- > 0) void store.append('counter-r', Added({ n: 100 }));
        return Added({ n });
      }),
    );
    const first = await store.aggregate(counter).handle('r', 1);
    assert.deepEqual([first.attempts, first.conflicts], [1, 0]);
    const raced = await racy.handle('r', 5, { retries: 3 });
    assert.deepEqual([raced.attempts, raced.conflicts], [3, 2]);
    assert.equal(raced.state, 1 + 100 + 100 + 5);
    interfere = 1;
    await assert.rejects(racy.handle('r', 5, { retries: 0 }), ExpectedVersionConflictError);
    const none = await store.aggregate(counterWith(() => [])).handle('r', 0);
    assert.deepEqual([none.attempts, none.conflicts, none.events.length], [1, 0, 0]);
    await store.close();
  });
});
