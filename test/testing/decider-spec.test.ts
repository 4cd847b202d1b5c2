// deciderSpec: given/when/then on the orders example's aggregate, in memory. Passing specs, and
// failing ones whose AssertionError must name what was expected and what came out.
import assert from 'node:assert/strict';
import { AssertionError } from 'node:assert';
import { describe, it } from 'node:test';
import { CommandRejectedError, type Decider, type EventOf } from '../../src/index.ts';
import { deciderSpec } from '../../src/testing/index.ts';
import { InventoryReserved, OrderCancelled, OrderPlaced, OrderShipped, PaymentReceived } from '../../examples/orders/events.ts';
import { order, OrderRejectedError } from '../../examples/orders/order.ts';

const line = { sku: 'mug', quantity: 2, unitPriceCents: 1250 };
const placed = OrderPlaced({ customerId: 'alice', lines: [line] });
const reserved = InventoryReserved({ warehouse: 'north' });
const paid = PaymentReceived({ amountCents: 2500, method: 'card' });
const spec = deciderSpec(order);

/** The AssertionError a failing spec throws (fails the test if it does not throw one). */
function failure(run: () => unknown): AssertionError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof AssertionError, `an AssertionError, got ${String(error)}`);
    return error;
  }
  assert.fail('the spec was expected to fail');
}

describe('deciderSpec: passing specs', () => {
  it('given events, when a command, then the decided events; hands back the new state', () => {
    const outcome = spec
      .given([placed, reserved])
      .when({ type: 'Pay', amountCents: 2500, method: 'card' })
      .then([PaymentReceived({ amountCents: 2500, method: 'card' })]);
    assert.equal(outcome.state.status, 'paid');
    assert.equal(outcome.state.paidCents, 2500);
    assert.deepEqual(
      outcome.events.map((e) => e.type),
      ['PaymentReceived'],
    );
  });

  it('takes plain { type, data } events in given and then, and [] for "nothing happens"', () => {
    spec
      .given([{ type: 'OrderPlaced', data: { customerId: 'bob', lines: [line] } }])
      .when({ type: 'Cancel', reason: 'changed my mind' })
      .then([{ type: 'OrderCancelled', data: { reason: 'changed my mind' } }]);
    spec
      .given([placed, OrderCancelled({ reason: 'x' })])
      .when({ type: 'Cancel', reason: 'again' })
      .then([]);
  });

  it('then rejected: by class, by class and message, by message alone; returns the typed error', () => {
    const error = spec.given([]).when({ type: 'Ship', carrier: 'DHL', trackingNumber: '1' }).thenThrows(OrderRejectedError);
    assert.equal(error.rule, 'wrong-status');
    spec
      .given([placed, OrderCancelled({ reason: 'x' })])
      .when({ type: 'Pay', amountCents: 2500, method: 'card' })
      .thenThrows(CommandRejectedError, 'cannot pay a cancelled order');
    spec
      .given([placed])
      .when({ type: 'PlaceOrder', customerId: 'c', lines: [line] })
      .thenThrows(/already placed/);
  });

  it('compares metadata when the expected event states some', () => {
    const tagged: Decider<null, EventOf<typeof OrderShipped>, string> = {
      initialState: () => null,
      evolve: (s) => s,
      decide: (carrier) => OrderShipped({ carrier, trackingNumber: 't' }, { metadata: { tenant: 'acme' } }),
    };
    deciderSpec(tagged)
      .given([])
      .when('DHL')
      .then([OrderShipped({ carrier: 'DHL', trackingNumber: 't' }, { metadata: { tenant: 'acme' } })]);
    const error = failure(() =>
      deciderSpec(tagged)
        .given([])
        .when('DHL')
        .then([OrderShipped({ carrier: 'DHL', trackingNumber: 't' }, { metadata: { tenant: 'other' } })]),
    );
    assert.match(error.message, /metadata \{ tenant: 'other' \}/);
    assert.match(error.message, /metadata \{ tenant: 'acme' \}/);
  });
});

describe('deciderSpec: failing specs throw an AssertionError that shows expected and actual', () => {
  it('other data: lists both event lists, marks the differing one, shows given and when', () => {
    const error = failure(() =>
      spec
        .given([placed, reserved])
        .when({ type: 'Pay', amountCents: 2500, method: 'invoice' })
        .then([PaymentReceived({ amountCents: 2500, method: 'card' })]),
    );
    assert.equal(
      error.message,
      [
        'spec failed: decide gave other events than expected',
        '  given: OrderPlaced, InventoryReserved',
        "  when:  { type: 'Pay', amountCents: 2500, method: 'invoice' }",
        '  expected 1 event:',
        "  ✗ 1. PaymentReceived { amountCents: 2500, method: 'card' }",
        '  actual 1 event:',
        "  ✗ 1. PaymentReceived { amountCents: 2500, method: 'invoice' }",
      ].join('\n'),
    );
    assert.deepEqual(error.expected, [{ type: 'PaymentReceived', data: { amountCents: 2500, method: 'card' } }]);
    assert.deepEqual(error.actual, [{ type: 'PaymentReceived', data: { amountCents: 2500, method: 'invoice' } }]);
  });

  it('fewer or more events than expected: the counts and the lists say so', () => {
    const error = failure(() => spec.given([placed]).when({ type: 'Cancel', reason: 'r' }).then([]));
    assert.match(error.message, /expected 0 events:\n {6}\(none\)\n {2}actual 1 event:\n {2}✗ 1\. OrderCancelled \{ reason: 'r' \}/);
  });

  it('rejected instead of the expected events: names the error and keeps it as the cause', () => {
    const error = failure(() => spec.given([]).when({ type: 'Ship', carrier: 'DHL', trackingNumber: '1' }).then([paid]));
    assert.match(
      error.message,
      /^spec failed: expected 1 event, but the command was rejected: OrderRejectedError: "\[eventfold\] cannot ship an order that is new"/,
    );
    assert.match(error.message, /expected 1 event:\n {4}1\. PaymentReceived \{ amountCents: 2500, method: 'card' \}/);
    assert.ok(error.cause instanceof OrderRejectedError);
  });

  it('thenThrows but events came out: lists them', () => {
    const error = failure(() => spec.given([placed]).when({ type: 'Cancel', reason: 'r' }).thenThrows(OrderRejectedError));
    assert.match(error.message, /^spec failed: expected the command to be rejected with OrderRejectedError, but decide gave 1 event/);
    assert.match(error.message, /✗ 1\. OrderCancelled \{ reason: 'r' \}/);
  });

  it('thenThrows with another class or message: says what was expected and what was thrown', () => {
    const wrongClass = failure(() => spec.given([]).when({ type: 'Ship', carrier: 'D', trackingNumber: '1' }).thenThrows(TypeError));
    assert.match(
      wrongClass.message,
      /rejected with TypeError, but it was rejected with OrderRejectedError: "\[eventfold\] cannot ship an order that is new"/,
    );
    const wrongMessage = failure(() =>
      spec.given([]).when({ type: 'Ship', carrier: 'D', trackingNumber: '1' }).thenThrows(OrderRejectedError, 'cannot ship'),
    );
    assert.match(
      wrongMessage.message,
      /rejected with OrderRejectedError, message "cannot ship", but it was rejected with OrderRejectedError/,
    );
    const wrongPattern = failure(() =>
      spec
        .given([])
        .when({ type: 'Ship', carrier: 'D', trackingNumber: '1' })
        .thenThrows(/cancelled/),
    );
    assert.match(wrongPattern.message, /a message matching \/cancelled\//);
    assert.ok(wrongPattern.cause instanceof OrderRejectedError);
  });

  it('a decided event of a type the aggregate does not list is refused, as the repository refuses it', () => {
    const stray = { ...order, decide: () => OrderShipped({ carrier: 'x', trackingNumber: 'y' }), events: [OrderPlaced] };
    deciderSpec(stray)
      .given([])
      .when({ type: 'Cancel', reason: 'r' })
      .thenThrows(CommandRejectedError, 'order.decide returned a OrderShipped event, not one of its events');
  });

  it('a plain given event is validated by its schema', () => {
    assert.throws(
      () => spec.given([{ type: 'OrderPlaced', data: { customerId: 'a', lines: [] } }]),
      (error: unknown) => error instanceof Error && error.name === 'InvalidEventError',
    );
  });

  it('awaiting an unfinished spec is refused, not left hanging', async () => {
    await assert.rejects(
      async () => await (spec.given([]).when({ type: 'Cancel', reason: 'r' }) as unknown as Promise<unknown>),
      /is not a promise: finish the spec with \.then/,
    );
  });
});
