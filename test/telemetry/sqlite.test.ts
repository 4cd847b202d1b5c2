// Telemetry on the SQLite store, with the SDK's in-memory exporters passed as the store's
// providers: span names, attributes, parent/child, error status, metric values.
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { after, beforeEach, describe, it } from 'node:test';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { sqlProjection } from '../../src/backends/sqlite/projection.ts';
import {
  CommandRejectedError,
  createEventStore,
  defineAggregate,
  ExpectedVersionConflictError,
  InvalidArgumentError,
} from '../../src/index.ts';
import { LAG_COUNT_LIMIT } from '../../src/core/telemetry-lag.ts';
import { accountAggregate, accountEvents, Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { type HistogramPoint, isChildOf, otel } from './otel.ts';

const sdk = otel();
const telemetry = { tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider };
after(() => sdk.shutdown());
beforeEach(() => sdk.reset());

function newStore() {
  return createEventStore({ driver: sqlite(), events: accountEvents, telemetry });
}

/** The single span of that name. */
async function only(name: string) {
  const spans = await await sdk.spans(name);
  assert.equal(spans.length, 1, `one ${name} span, got ${spans.length}`);
  return spans[0]!;
}

/** Sum of a counter's points whose attributes include `match`. */
async function counted(metric: string, match: Record<string, unknown> = {}): Promise<number> {
  const points = await sdk.points<number>(metric);
  return points.filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v)).reduce((n, p) => n + p.value, 0);
}

describe('telemetry: appends', () => {
  it('traces an append with its stream, partition, event count and outcome, and counts it', async () => {
    const store = newStore();
    const before = await counted('eventfold.events.appended', { 'eventfold.backend': 'sqlite' });
    await store.append('account-1', [Deposited({ amount: 5 }), Withdrawn({ amount: 2 })], { expectedVersion: 'no_stream' });
    const span = await only('eventfold.append');
    assert.equal(span.kind, SpanKind.INTERNAL);
    assert.equal(span.instrumentationScope.name, 'eventfold');
    assert.deepEqual(span.attributes, {
      'eventfold.backend': 'sqlite',
      'db.system.name': 'sqlite',
      'eventfold.stream.id': 'account-1',
      'messaging.destination.partition.id': String(store.partitionOf('account-1')),
      'messaging.batch.message_count': 2,
      'eventfold.expected_version': 'no_stream',
      'eventfold.outcome': 'ok',
    });
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    assert.equal((await counted('eventfold.events.appended', { 'eventfold.backend': 'sqlite' })) - before, 2);
    const durations = (await sdk.points<HistogramPoint['value']>('eventfold.append.duration')).filter(
      (p) => p.attributes['eventfold.outcome'] === 'ok' && p.attributes['eventfold.operation'] === 'append',
    );
    assert.equal(durations.length, 1);
    assert.ok(durations[0]!.value.count >= 1);
    assert.ok((durations[0]!.value.sum ?? 0) > 0, 'a positive duration, in seconds');
    await store.close();
  });

  it('marks a version conflict as an error: status, error.type, the exception, outcome conflict', async () => {
    const store = newStore();
    await store.append('account-2', Deposited({ amount: 1 }));
    const appendedBefore = await counted('eventfold.events.appended');
    await assert.rejects(store.append('account-2', Deposited({ amount: 1 }), { expectedVersion: 0 }), ExpectedVersionConflictError);
    const failed = (await sdk.spans('eventfold.append')).find((s) => s.attributes['eventfold.outcome'] !== 'ok');
    assert.ok(failed, 'a failed append span');
    assert.equal(failed.status.code, SpanStatusCode.ERROR);
    assert.equal(failed.attributes['eventfold.outcome'], 'conflict');
    assert.equal(failed.attributes['error.type'], 'VERSION_CONFLICT');
    assert.equal(failed.attributes['eventfold.expected_version'], '0');
    const exception = failed.events.find((e) => e.name === 'exception');
    assert.equal(exception?.attributes?.['exception.type'], 'VERSION_CONFLICT', 'the SDK names an exception by its code');
    assert.match(String(exception?.attributes?.['exception.message']), /account-2/);
    assert.equal(await counted('eventfold.events.appended'), appendedBefore, 'a conflict stores no events');
    const conflict = (await sdk.points<HistogramPoint['value']>('eventfold.append.duration')).find(
      (p) => p.attributes['eventfold.outcome'] === 'conflict',
    );
    assert.equal(conflict?.attributes['error.type'], 'VERSION_CONFLICT');
    assert.equal(conflict?.value.count, 1);
    await store.close();
  });

  it('an exact retry is already_stored and counts no new events', async () => {
    const store = newStore();
    const event = Deposited({ amount: 3 });
    await store.append('account-3', event);
    const before = await counted('eventfold.events.appended');
    const again = await store.append('account-3', event);
    assert.equal(again.alreadyStored, true);
    assert.equal((await sdk.spans('eventfold.append')).at(-1)?.attributes['eventfold.outcome'], 'already_stored');
    assert.equal(await counted('eventfold.events.appended'), before);
    await store.close();
  });

  it('traces appendMany with its stream and event counts', async () => {
    const store = newStore();
    const before = await counted('eventfold.events.appended');
    await store.appendMany([
      { streamId: 'account-4', events: [Deposited({ amount: 1 }), Deposited({ amount: 2 })] },
      { streamId: 'account-5', events: Withdrawn({ amount: 1 }) },
    ]);
    const span = await only('eventfold.append_many');
    assert.equal(span.attributes['eventfold.stream.count'], 2);
    assert.equal(span.attributes['messaging.batch.message_count'], 3);
    assert.equal(span.attributes['eventfold.outcome'], 'ok');
    assert.equal((await counted('eventfold.events.appended')) - before, 3);
    const many = (await sdk.points<HistogramPoint['value']>('eventfold.append.duration')).find(
      (p) => p.attributes['eventfold.operation'] === 'append_many',
    );
    assert.equal(many?.value.count, 1);
    await store.close();
  });
});

describe('telemetry: aggregates', () => {
  it('a handled command is the parent of its load and its append', async () => {
    const store = newStore();
    const accounts = store.aggregate(accountAggregate({ every: 2 }));
    await accounts.handle('7', { kind: 'deposit', amount: 10 });
    await accounts.handle('7', { kind: 'deposit', amount: 5 });
    sdk.reset();
    await accounts.handle('7', { kind: 'withdraw', amount: 3 });
    const handle = await only('eventfold.aggregate.handle');
    const load = await only('eventfold.aggregate.load');
    const append = await only('eventfold.append');
    assert.ok(isChildOf(load, handle), 'load inside handle');
    assert.ok(isChildOf(append, handle), 'append inside handle');
    assert.equal(handle.parentSpanContext, undefined, 'handle is a root span here');
    assert.equal(handle.attributes['eventfold.aggregate.name'], 'account');
    assert.equal(handle.attributes['eventfold.stream.id'], accounts.streamId('7'));
    assert.equal(handle.attributes['eventfold.command.attempts'], 1);
    assert.equal(handle.attributes['eventfold.command.event_count'], 1);
    assert.equal(handle.attributes['eventfold.aggregate.version'], 3);
    assert.equal(load.attributes['eventfold.aggregate.version'], 2);
    assert.equal(load.attributes['eventfold.aggregate.snapshot_version'], 2, 'the load started from the snapshot at 2');
    assert.equal(load.attributes['eventfold.aggregate.events_folded'], 0);
    assert.equal(append.attributes['eventfold.expected_version'], '2');
    await store.close();
  });

  it('a rejected command and a conflicting one end their handle span in error', async () => {
    const store = newStore();
    const Account = defineAggregate({
      name: 'strict',
      events: accountEvents,
      initialState: () => 0,
      evolve: (balance, e) => (e.type === 'Deposited' ? balance + e.data.amount : balance - e.data.amount),
      decide: (amount: number, balance) => {
        if (amount > balance) throw new CommandRejectedError('insufficient funds');
        return Withdrawn({ amount });
      },
    });
    const accounts = store.aggregate(Account);
    await assert.rejects(accounts.handle('1', 5), CommandRejectedError);
    const rejected = await only('eventfold.aggregate.handle');
    assert.equal(rejected.status.code, SpanStatusCode.ERROR);
    assert.equal(rejected.attributes['eventfold.outcome'], 'rejected');
    assert.equal(rejected.attributes['error.type'], 'COMMAND_REJECTED');
    sdk.reset();
    await assert.rejects(accounts.handle('1', 5, { expectedVersion: 3 }), ExpectedVersionConflictError);
    const conflict = await only('eventfold.aggregate.handle');
    assert.equal(conflict.attributes['eventfold.outcome'], 'conflict');
    assert.equal(conflict.status.code, SpanStatusCode.ERROR);
    await store.close();
  });
});

describe('telemetry: subscriptions and projections', () => {
  it('each batch is a consumer span, the parent of what the handler traces', async () => {
    const store = newStore();
    for (let i = 1; i <= 5; i++) await store.append(`account-s${i}`, Deposited({ amount: i }));
    sdk.reset();
    const tracer = sdk.tracerProvider.getTracer('test');
    const sub = store.subscribe({
      group: 'telemetry-sub',
      batchSize: 2,
      handler: async () => tracer.startActiveSpan('handler', (span) => span.end()),
    });
    await sub.caughtUp();
    await sub.stop();
    const batches = await sdk.spans('eventfold.subscription.batch');
    assert.deepEqual(
      batches.map((b) => b.attributes['messaging.batch.message_count']),
      [2, 2, 1],
    );
    for (const b of batches) {
      assert.equal(b.kind, SpanKind.CONSUMER);
      assert.equal(b.attributes['messaging.consumer.group.name'], 'telemetry-sub');
      assert.equal(b.attributes['messaging.operation.type'], 'process');
      assert.equal(b.attributes['messaging.destination.partition.id'], '0');
      assert.equal(b.attributes['eventfold.outcome'], 'ok');
    }
    const handlers = await sdk.spans('handler');
    assert.equal(handlers.length, 5);
    assert.ok(
      handlers.every((h) => batches.some((b) => isChildOf(h, b))),
      'every handler span is inside a batch span',
    );
    await store.close();
  });

  it('reports a running subscription lag, in events, per partition', async () => {
    const store = newStore();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sub = store.subscribe({ group: 'telemetry-lag', handler: () => gate });
    for (let i = 1; i <= 3; i++) await store.append(`account-l${i}`, Deposited({ amount: i }));
    const lagOf = async () =>
      (await sdk.points<number>('eventfold.subscription.lag')).find(
        (p) => p.attributes['messaging.consumer.group.name'] === 'telemetry-lag',
      );
    const stuck = await lagOf();
    assert.equal(stuck?.value, 3, 'the handler holds the first event: all three are behind');
    assert.equal(stuck?.attributes['messaging.destination.partition.id'], '0');
    assert.equal(stuck?.attributes['eventfold.backend'], 'sqlite');
    release();
    await sub.caughtUp();
    assert.equal((await lagOf())?.value, 0);
    await sub.stop();
    // A stopped subscription is read no more: events appended now do not show as lag (the SDK
    // may go on exporting the last value it saw).
    for (let i = 4; i <= 5; i++) await store.append(`account-l${i}`, Deposited({ amount: i }));
    const stopped = await lagOf();
    assert.ok(stopped === undefined || stopped.value === 0, `no reading after stop, got ${stopped?.value}`);
    assert.ok(LAG_COUNT_LIMIT >= 1000);
    await store.close();
  });

  it('traces SQL projection batches', async () => {
    const store = newStore();
    for (let i = 1; i <= 3; i++) await store.append(`account-p${i}`, Deposited({ amount: i }));
    sdk.reset();
    const database = new DatabaseSync(':memory:');
    const projection = sqlProjection(store, { database, name: 'balances', handle: () => undefined, batchSize: 2 });
    await projection.caughtUp();
    await projection.stop();
    const batches = await sdk.spans('eventfold.projection.batch');
    assert.deepEqual(
      batches.map((b) => b.attributes['messaging.batch.message_count']),
      [2, 1],
    );
    assert.equal(batches[0]!.kind, SpanKind.CONSUMER);
    assert.equal(batches[0]!.attributes['eventfold.projection.name'], 'balances');
    assert.equal(batches[0]!.attributes['eventfold.projection.target'], 'sqlite');
    assert.equal(batches[0]!.attributes['eventfold.projection.version'], 1);
    assert.equal(batches[0]!.attributes['eventfold.projection.mode'], 'rebuild');
    database.close();
    await store.close();
  });
});

describe('telemetry: settings', () => {
  it('telemetry: false makes no spans and no metrics, even with an SDK', async () => {
    const before = await counted('eventfold.events.appended');
    const store = createEventStore({ driver: sqlite(), events: accountEvents, telemetry: false });
    await store.append('account-off', Deposited({ amount: 1 }));
    assert.equal((await sdk.spans()).length, 0);
    assert.equal(await counted('eventfold.events.appended'), before);
    await store.close();
  });

  it('refuses a telemetry setting that is not one', () => {
    for (const bad of [1, 'on', null, { tracerProvider: {} }, { meterProvider: 'x' }]) {
      assert.throws(
        () => createEventStore({ driver: sqlite(), events: accountEvents, telemetry: bad as never }),
        InvalidArgumentError,
        String(bad),
      );
    }
  });

  it('the spans of an append join the caller trace', async () => {
    const store = newStore();
    const tracer = sdk.tracerProvider.getTracer('test');
    await tracer.startActiveSpan('request', async (span) => {
      await store.append('account-ctx', Deposited({ amount: 1 }));
      span.end();
    });
    assert.ok(isChildOf(await only('eventfold.append'), await only('request')));
    assert.equal(trace.getActiveSpan(), undefined);
    await store.close();
  });
});
