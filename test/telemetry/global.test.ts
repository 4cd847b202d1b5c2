// The default setting on the global providers: a store made before the application registers
// its SDK records nothing until then, and everything after.
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { metrics, trace } from '@opentelemetry/api';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { createEventStore } from '../../src/index.ts';
import { accountEvents, Deposited } from '../conformance/fixtures.ts';
import { otel } from './otel.ts';

const sdk = otel();
after(() => sdk.shutdown());

it('binds to an SDK registered after the store was made', async () => {
  const store = createEventStore({ driver: sqlite(), events: accountEvents });
  await store.append('account-early', Deposited({ amount: 1 }));
  trace.setGlobalTracerProvider(sdk.tracerProvider);
  metrics.setGlobalMeterProvider(sdk.meterProvider);
  await store.append('account-late', [Deposited({ amount: 2 }), Deposited({ amount: 3 })]);
  const spans = await sdk.spans('eventfold.append');
  assert.deepEqual(
    spans.map((s) => s.attributes['eventfold.stream.id']),
    ['account-late'],
  );
  const appended = await sdk.points<number>('eventfold.events.appended');
  assert.deepEqual(
    appended.map((p) => p.value),
    [2],
  );
  await store.close();
});
