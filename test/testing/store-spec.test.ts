// storeSpec: given/when/then through a real store (the embedded SQLite store, in memory): the
// given events are appended, the command goes through the repository, the new events are read
// back. Failing specs must say what the store holds.
import assert from 'node:assert/strict';
import { AssertionError } from 'node:assert';
import { after, describe, it } from 'node:test';
import { createEventStore } from '../../src/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { storeSpec } from '../../src/testing/index.ts';
import { InventoryReserved, OrderPlaced, orderEvents, PaymentReceived } from '../../examples/orders/events.ts';
import { order, OrderRejectedError } from '../../examples/orders/order.ts';

const store = createEventStore({ driver: sqlite(), events: orderEvents });
after(() => store.close());
const spec = storeSpec(store, order);
const line = { sku: 'mug', quantity: 2, unitPriceCents: 1250 };
const placed = OrderPlaced({ customerId: 'alice', lines: [line] });

async function failure(run: () => Promise<unknown>): Promise<AssertionError> {
  try {
    await run();
  } catch (error) {
    assert.ok(error instanceof AssertionError, `an AssertionError, got ${String(error)}`);
    return error;
  }
  assert.fail('the spec was expected to fail');
}

describe('storeSpec', () => {
  it('appends the given events, handles the command, reads the new events back', async () => {
    const outcome = await spec
      .given([placed, InventoryReserved({ warehouse: 'north' })], { id: 'o-1' })
      .when({ type: 'Pay', amountCents: 2500, method: 'card' })
      .then([PaymentReceived({ amountCents: 2500, method: 'card' })]);
    assert.equal(outcome.streamId, 'order-o-1');
    assert.equal(outcome.version, 3);
    assert.equal(outcome.state.status, 'paid');
    assert.deepEqual(
      outcome.events.map((e) => [e.type, e.version, e.streamId]),
      [['PaymentReceived', 3, 'order-o-1']],
    );
    const stored = [];
    for await (const e of store.readStream('order-o-1')) stored.push(e.type);
    assert.deepEqual(stored, ['OrderPlaced', 'InventoryReserved', 'PaymentReceived']);
  });

  it('one event object serves many specs: given events are appended with new ids', async () => {
    await spec
      .given([placed])
      .when({ type: 'Cancel', reason: 'a' })
      .then([{ type: 'OrderCancelled', data: { reason: 'a' } }]);
    await spec
      .given([placed])
      .when({ type: 'Cancel', reason: 'b' })
      .then([{ type: 'OrderCancelled', data: { reason: 'b' } }]);
  });

  it('then rejected: the error, and nothing appended', async () => {
    const error = await spec
      .given([])
      .when({ type: 'Ship', carrier: 'DHL', trackingNumber: '1' })
      .thenThrows(OrderRejectedError, /cannot ship/);
    assert.equal(error.rule, 'wrong-status');
  });

  it('goes through the store: given events are validated by the store as any append is', async () => {
    // The store knows PaymentReceived v2 (cents); a v1 payload (dollars) is refused, and the spec with it.
    await assert.rejects(
      spec
        .given([{ type: 'PaymentReceived', data: { amount: 25 } as never }])
        .when({ type: 'Cancel', reason: 'x' })
        .then([]),
      (error: unknown) => error instanceof Error && error.name === 'InvalidEventError',
    );
  });

  it('a wrong expectation fails with both event lists and the stream name', async () => {
    const error = await failure(() =>
      spec
        .given([placed], { id: 'o-wrong' })
        .when({ type: 'ReserveInventory', warehouse: 'south' })
        .then([InventoryReserved({ warehouse: 'north' })]),
    );
    assert.equal(
      error.message,
      [
        'spec failed: the store (stream "order-o-wrong") gave other events than expected',
        '  given: OrderPlaced',
        "  when:  { type: 'ReserveInventory', warehouse: 'south' }",
        '  expected 1 event:',
        "  ✗ 1. InventoryReserved { warehouse: 'north' }",
        '  actual 1 event:',
        "  ✗ 1. InventoryReserved { warehouse: 'south' }",
      ].join('\n'),
    );
  });

  it('expected a rejection, the store got events: they are listed', async () => {
    const error = await failure(() => spec.given([placed]).when({ type: 'Cancel', reason: 'r' }).thenThrows(OrderRejectedError));
    assert.match(error.message, /rejected with OrderRejectedError, but the store \(stream "order-spec-[^"]+"\) gave 1 event/);
    assert.match(error.message, /✗ 1\. OrderCancelled \{ reason: 'r' \}/);
  });

  it('a command that threw after its events were stored fails thenThrows: the stream did change', async () => {
    // evolve fails on the new event, after the repository appended it: the error is there, yet so is the event.
    const brittle = {
      ...order,
      evolve: (state: ReturnType<typeof order.initialState>, event: Parameters<typeof order.evolve>[1]) => {
        if (event.type === 'OrderCancelled') throw new Error('evolve cannot fold a cancellation');
        return order.evolve(state, event);
      },
    };
    const error = await failure(() =>
      storeSpec(store, brittle)
        .given([placed])
        .when({ type: 'Cancel', reason: 'r' })
        .thenThrows(/cannot fold/),
    );
    assert.match(
      error.message,
      /^spec failed: the store \(stream "order-spec-[^"]+"\) after the rejection gave other events than expected/,
    );
    assert.match(error.message, /expected 0 events:\n {6}\(none\)\n {2}actual 1 event:\n {2}✗ 1\. OrderCancelled \{ reason: 'r' \}/);
  });

  it('refuses a stream that already holds events, and awaiting an unfinished spec', async () => {
    await store.append('order-taken', placed);
    await assert.rejects(
      spec.given([], { id: 'taken' }).when({ type: 'Cancel', reason: 'r' }).then([]),
      /stream "order-taken" already holds 1 events; a spec starts from an empty stream/,
    );
    await assert.rejects(
      async () => await (spec.given([]).when({ type: 'Cancel', reason: 'r' }) as unknown as Promise<unknown>),
      /is not a promise/,
    );
  });
});
