// Telemetry on a real Redis, with the SDK registered globally and the store's `telemetry` option
// left out (the default: the global providers): appends, consumer-group batches, dead letters
// and the consumer-group lag gauge.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { metrics, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { createClient } from 'redis';
import { RedisKeys, redis } from '../../src/backends/redis/index.ts';
import { createEventStore } from '../../src/index.ts';
import { accountEvents, Deposited } from '../conformance/fixtures.ts';
import { until } from '../conformance/consumer-groups.ts';
import { REDIS_URL, uniqueName } from '../services/env.ts';
import { otel } from './otel.ts';

const sdk = otel();
// Registered before any store exists, as an application's SDK setup is.
trace.setGlobalTracerProvider(sdk.tracerProvider);
metrics.setGlobalMeterProvider(sdk.meterProvider);

const prefix = uniqueName('ef-otel');
after(async () => {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  for await (const keys of client.scanIterator({ MATCH: new RedisKeys(prefix).scanPattern(), COUNT: 500 })) {
    if (keys.length > 0) await client.unlink(keys);
  }
  await client.close();
  await sdk.shutdown();
});

describe('telemetry on redis (global SDK)', () => {
  it('traces appends, consumer-group batches and dead letters, and reports the group lag', async () => {
    // One partition: every event is in partition 0, where the lag is counted.
    const store = createEventStore({ driver: redis({ url: REDIS_URL, prefix, partitions: 1 }), events: accountEvents });
    await store.append('account-r1', [Deposited({ amount: 1 }), Deposited({ amount: 13 }), Deposited({ amount: 3 })]);
    const [append] = await sdk.spans('eventfold.append');
    assert.equal(append?.attributes['eventfold.backend'], 'redis');
    assert.equal(append?.attributes['db.system.name'], 'redis');
    assert.equal(append?.attributes['messaging.batch.message_count'], 3);

    let release: (() => void) | undefined;
    let held = false;
    const consumer = store.consume({
      group: 'otel-group',
      consumer: 'c1',
      retries: 0,
      blockMs: 50,
      handler: async (event) => {
        if (event.data.amount === 13) throw new Error('poison');
        if (event.data.amount === 100) {
          held = true;
          await new Promise<void>((resolve) => (release = resolve));
        }
      },
    });
    await until(() => consumer.handled + consumer.deadLettered === 3, 'three events consumed');

    const batches = await sdk.spans('eventfold.consumer_group.batch');
    assert.ok(batches.length >= 1);
    assert.equal(
      batches.reduce((n, b) => n + Number(b.attributes['messaging.batch.message_count']), 0),
      3,
    );
    assert.equal(
      batches.reduce((n, b) => n + Number(b.attributes['eventfold.dead_lettered']), 0),
      1,
    );
    for (const b of batches) {
      assert.equal(b.kind, SpanKind.CONSUMER);
      assert.equal(b.attributes['messaging.consumer.group.name'], 'otel-group');
      assert.equal(b.attributes['messaging.client.id'], 'c1');
      assert.equal(b.status.code, SpanStatusCode.UNSET, 'a dead letter is handled, not a failed batch');
    }
    const dead = (await sdk.points<number>('eventfold.dead_letters')).filter(
      (p) => p.attributes['messaging.consumer.group.name'] === 'otel-group',
    );
    assert.deepEqual(
      dead.map((p) => [p.value, p.attributes['eventfold.source'], p.attributes['eventfold.backend']]),
      [[1, 'consumer_group', 'redis']],
    );

    const lag = async () =>
      (await sdk.points<number>('eventfold.consumer_group.lag')).find(
        (p) => p.attributes['messaging.consumer.group.name'] === 'otel-group' && p.attributes['messaging.client.id'] === 'c1',
      );
    assert.equal((await lag())?.value, 0, 'caught up');
    assert.equal((await lag())?.attributes['messaging.destination.partition.id'], '0');

    // The handler holds the first of two new events: both are behind what c1 finished.
    await store.append('account-r2', [Deposited({ amount: 100 }), Deposited({ amount: 4 })]);
    await until(() => held, 'the handler holds an event');
    assert.equal((await lag())?.value, 2);
    release!();
    await until(() => consumer.handled === 4, 'the held events handled');
    assert.equal((await lag())?.value, 0);

    await consumer.stop();
    await store.close();
  });
});
