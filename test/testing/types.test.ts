// Type-level checks of the specs, read by tsc (`tsc --noEmit` covers test/): the event payloads
// of a decider over `EventOf<typeof A | typeof B>` flow into given/then, and a wrong payload is a
// compile error (each @ts-expect-error fails the type check if the line below it compiles).
// At run time the specs also pass, so the file is a test like the others.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { z } from 'zod';
import { createEventStore, defineEvent, type Decider, type EventOf } from '../../src/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { deciderSpec, storeSpec } from '../../src/testing/index.ts';
import { order } from '../../examples/orders/order.ts';
import { orderEvents } from '../../examples/orders/events.ts';

const Opened = defineEvent({ type: 'Opened', schema: z.object({ owner: z.string() }) });
const Credited = defineEvent({ type: 'Credited', schema: z.object({ cents: z.number().int() }) });
type AccountEvent = EventOf<typeof Opened | typeof Credited>;

const account: Decider<{ open: boolean; cents: number }, AccountEvent, { credit: number }> = {
  initialState: () => ({ open: false, cents: 0 }),
  evolve: (s, e) => (e.type === 'Opened' ? { ...s, open: true } : { ...s, cents: s.cents + e.data.cents }),
  decide: (c) => Credited({ cents: c.credit }),
};

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(_proof?: T): void => undefined;

it('typed specs run as written', async () => {
  const outcome = deciderSpec(account)
    .given([Opened({ owner: 'ann' }), { type: 'Credited', data: { cents: 5 } }])
    .when({ credit: 7 })
    .then([{ type: 'Credited', data: { cents: 7 } }]);
  expectType<Equal<typeof outcome.state, { open: boolean; cents: number }>>();
  expectType<Equal<(typeof outcome.events)[number], AccountEvent>>();
  assert.deepEqual(outcome.state, { open: true, cents: 12 });

  const store = createEventStore({ driver: sqlite(), events: orderEvents });
  const done = await storeSpec(store, order)
    .given([])
    .when({ type: 'Cancel', reason: 'r' })
    .then([{ type: 'OrderCancelled', data: { reason: 'r' } }]);
  expectType<Equal<typeof done.state, ReturnType<typeof order.initialState>>>();
  await store.close();
});

/** Never called: each line must not compile. */
export function wrongPayloads(): void {
  const spec = deciderSpec(account);
  // @ts-expect-error: `cents` is a number
  spec.given([{ type: 'Credited', data: { cents: 'five' } }]);
  // @ts-expect-error: `Opened` has `owner`, not `name`
  spec.given([{ type: 'Opened', data: { name: 'ann' } }]);
  // @ts-expect-error: a type the decider does not know
  spec.given([{ type: 'Closed', data: {} }]);
  const when = spec.given([]).when({ credit: 1 });
  // @ts-expect-error: a wrong payload in then
  when.then([{ type: 'Credited', data: { cents: true } }]);
  // @ts-expect-error: a command the decider does not take
  spec.given([]).when({ debit: 1 });
  // @ts-expect-error: an event of another domain (the orders example)
  deciderSpec(order).given([Opened({ owner: 'ann' })]);
  const store = createEventStore({ driver: sqlite(), events: orderEvents });
  // @ts-expect-error: OrderCancelled has a reason
  void storeSpec(store, order).given([{ type: 'OrderCancelled', data: {} }]);
  // @ts-expect-error: thenThrows takes an error class or a message
  spec.given([]).when({ credit: 1 }).thenThrows(42);
}
