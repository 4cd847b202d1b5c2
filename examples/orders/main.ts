// The eventfold tour: an orders domain on the embedded SQLite store, told as numbered steps.
//
//   npm run demo            # temp database, deleted at the end
//   npm run demo -- --keep  # keep it, to look inside with the sqlite3 CLI
//
// Every step checks its outcome with node:assert, so the demo doubles as a smoke test: it
// exits non-zero if eventfold stops behaving as shown.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEventStore, ExpectedVersionConflictError, type Position, type RecordedEvent } from '../../src/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { InventoryReserved, ItemAdded, OrderPlaced, PaymentReceivedV1, orderEvents, orderEventsV1, type OrderEvent } from './events.ts';
import { order, OrderRejectedError, type OrderCommand } from './order.ts';
import { OrderSummaryProjection, ORDER_SUMMARY_GROUP } from './projection.ts';
import { clockTime, currentStep, eventLine, money, say, step, table } from './print.ts';

const keep = process.argv.includes('--keep');
const dir = mkdtempSync(join(tmpdir(), 'eventfold-orders-'));
const eventsPath = join(dir, 'events.db');
const readModelPath = join(dir, 'read-model.db');

// A hand-driven clock, so event times (and the time-travel step) read like a real day.
let now = Date.parse('2025-06-02T09:00:00Z');
const at = (isoTime: string): void => {
  now = Date.parse(isoTime.length <= 5 ? `2025-06-02T${isoTime}:00Z` : isoTime);
};

// The event store: the driver, and every event type it may write and read. The store's event
// union (`OrderEvent`) is inferred from the list, so reads and subscriptions are fully typed.
const store = createEventStore({ driver: sqlite({ path: eventsPath }), events: orderEvents, clock: () => now });
const orders = store.aggregate(order);
const projection = new OrderSummaryProjection(readModelPath);

const line = (sku: string, quantity: number, unitPriceCents: number) => ({ sku, quantity, unitPriceCents });

/** `[27]`: the offset per partition (the SQLite store has one partition). */
const formatPositions = (positions: readonly Position[]): string => `[${positions.map((p) => p.offset).join(', ')}]`;

/** Runs a command and prints the events it appended. */
async function run(id: string, command: OrderCommand): Promise<number> {
  const result = await orders.handle(id, command);
  for (const e of result.events) say(eventLine(e));
  return result.version;
}

async function main(): Promise<void> {
  console.log('eventfold demo: an orders domain on the embedded SQLite store');
  console.log(`events:     ${eventsPath}`);
  console.log(`read model: ${readModelPath}`);
  console.log(keep ? '(kept after the run: --keep)' : '(both deleted at the end; pass --keep to keep them)');

  step('Alice places order 1001; it is reserved, paid and shipped. Each command appends one event.');
  at('09:00');
  await run('1001', { type: 'PlaceOrder', customerId: 'alice', lines: [line('mug', 2, 1250), line('teapot', 1, 2000)] });
  at('09:10');
  await run('1001', { type: 'ReserveInventory', warehouse: 'north' });
  at('09:20');
  await run('1001', { type: 'Pay', amountCents: 4500, method: 'card' });
  at('11:00');
  const shippedAt = await run('1001', { type: 'Ship', carrier: 'DHL', trackingNumber: 'JD0001' });
  const alice = await orders.load('1001');
  say(`state rebuilt from the stream: ${alice.state.status}, ${money(alice.state.paidCents)} paid, version ${alice.version}`);
  assert.equal(shippedAt, 4);
  assert.equal(alice.state.status, 'shipped');

  step('Bob places order 1002, then cancels it. Paying it now is refused with a typed error.');
  at('09:30');
  await run('1002', { type: 'PlaceOrder', customerId: 'bob', lines: [line('kettle', 1, 3900)] });
  at('09:35');
  await run('1002', { type: 'Cancel', reason: 'changed my mind' });
  at('09:40');
  const refused = await orders.handle('1002', { type: 'Pay', amountCents: 3900, method: 'card' }).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(refused instanceof OrderRejectedError, 'paying a cancelled order must be rejected');
  say(`${refused.name} (code ${refused.code}, rule "${refused.rule}"): ${refused.message}`);
  assert.equal(refused.rule, 'order-cancelled');
  assert.equal(refused.code, 'COMMAND_REJECTED');
  assert.equal(await store.streamVersion('order-1002'), 2);
  say('nothing was written: order-1002 is still at version 2');

  step('Two clerks change order 1003 at the same time (optimistic concurrency).');
  at('10:00');
  await run('1003', { type: 'PlaceOrder', customerId: 'carol', lines: [line('cup', 6, 800)] });
  const clerkA = await orders.load('1003');
  const clerkB = await orders.load('1003');
  say(`both clerks loaded order-1003 at version ${clerkA.version}`);
  at('10:01');
  await store.append('order-1003', ItemAdded(line('saucer', 6, 500)), { expectedVersion: clerkA.version });
  say(`clerk A appends with expectedVersion ${clerkA.version}: ok, the stream is now at version 2`);
  const conflict = await store.append('order-1003', ItemAdded(line('spoon', 6, 300)), { expectedVersion: clerkB.version }).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(conflict instanceof ExpectedVersionConflictError, 'the second writer must get a version conflict');
  say(
    `clerk B appends with expectedVersion ${clerkB.version}: ${conflict.name} (expected ${conflict.expectedVersion}, actual ${conflict.actualVersion})`,
  );
  assert.equal(conflict.actualVersion, 2);

  // Now through `handle`, which does load → decide → append. Two commands race; the loser
  // reloads and decides again because of `retries`. We count how often `decide` runs.
  let decisions = 0;
  const counted = store.aggregate({
    ...order,
    decide: (c: OrderCommand, s: typeof clerkA.state) => {
      decisions++;
      return order.decide(c, s);
    },
  });
  const [first, second] = await Promise.all([
    counted.handle('1003', { type: 'AddItem', line: line('spoon', 6, 300) }, { retries: 2 }),
    counted.handle('1003', { type: 'AddItem', line: line('napkin', 12, 100) }, { retries: 2 }),
  ]);
  say(`two concurrent handle() calls with { retries: 2 }: both succeeded (versions ${first.version} and ${second.version}),`);
  say(`decide() ran ${decisions} times for 2 commands: one writer lost the race, reloaded and decided again`);
  assert.deepEqual([first.version, second.version].sort(), [3, 4]);
  assert.equal(decisions, 3);

  step('Order 1004 is a wholesale order with 13 events; the aggregate snapshots every 10 events.');
  at('10:30');
  await orders.handle('1004', { type: 'PlaceOrder', customerId: 'dave-wholesale', lines: [line('plate', 50, 400)] });
  for (let i = 1; i <= 12; i++) {
    await orders.handle('1004', { type: 'AddItem', line: line(`sku-${i}`, 10, 100 * i) });
  }
  const wholesale = await orders.load('1004');
  say(`load('1004'): version ${wholesale.version}, started from the snapshot of version ${wholesale.snapshotVersion},`);
  say(
    `folded only ${wholesale.eventsFolded} events on top of it (instead of ${wholesale.version}); total ${money(wholesale.state.totalCents)}`,
  );
  assert.equal(wholesale.version, 13);
  assert.equal(wholesale.snapshotVersion, 10);
  assert.equal(wholesale.eventsFolded, 3);

  step('Time travel: order 1001 as it was at version 2, and as it was at 10:00.');
  const atV2 = await orders.loadAt('1001', { version: 2 });
  say(`loadAt({ version: 2 }):             status ${atV2.state.status}, ${money(atV2.state.paidCents)} paid`);
  const atTen = await orders.loadAt('1001', { time: new Date('2025-06-02T10:00:00Z') });
  say(
    `loadAt({ time: 2025-06-02 10:00 }): status ${atTen.state.status}, ${money(atTen.state.paidCents)} paid (version ${atTen.version}; it shipped at 11:00)`,
  );
  assert.equal(atV2.state.status, 'reserved');
  assert.equal(atTen.state.status, 'paid');
  assert.equal(atTen.version, 3);

  step('Schema evolution: order 0999 was paid last year, when PaymentReceived v1 stored dollars.');
  // The first release of the app, with the v1 event list, writing to the same database.
  const lastYear = createEventStore({ driver: sqlite({ path: eventsPath }), events: orderEventsV1, clock: () => now });
  at('2024-11-15T16:00:00Z');
  await lastYear.append(
    'order-0999',
    [
      OrderPlaced({ customerId: 'erin', lines: [line('vase', 1, 1250)] }),
      InventoryReserved({ warehouse: 'south' }),
      PaymentReceivedV1({ amount: 12.5 }),
    ],
    { expectedVersion: 'no_stream' },
  );
  await lastYear.close();
  say('stored by v1 code:      PaymentReceived {"amount":12.5}');
  const payments: RecordedEvent<OrderEvent>[] = [];
  for await (const e of store.readStream('order-0999')) if (e.type === 'PaymentReceived') payments.push(e);
  const payment = payments[0];
  assert.ok(payment?.type === 'PaymentReceived');
  say(
    `read by today's code:   PaymentReceived ${JSON.stringify(payment.data)} (storedSchemaVersion ${payment.storedSchemaVersion}, upcast to v2)`,
  );
  assert.deepEqual(payment.data, { amountCents: 1250, method: 'card' });
  assert.equal(payment.storedSchemaVersion, 1);

  step(`A new read model starts: consumer group "${ORDER_SUMMARY_GROUP}" catches up on all history.`);
  let subscription = projection.start(store);
  await subscription.caughtUp();
  say(`caughtUp(): ${subscription.processed} events handled, ${projection.applied} applied to the order summary table`);
  table(
    projection.all().map((r) => ({
      order: r.order_id,
      customer: r.customer_id,
      status: r.status,
      items: r.item_count,
      total: money(r.total_cents),
      paid: money(r.paid_cents),
      version: r.version,
    })),
  );
  const total = subscription.processed;
  assert.equal(total, 4 + 2 + 4 + 13 + 3);
  for (const id of ['0999', '1001', '1002', '1003', '1004']) {
    const { state, version } = await orders.load(id);
    const row = projection.get(id);
    assert.ok(row, `order ${id} must be in the read model`);
    assert.deepEqual(
      [row.status, row.total_cents, row.paid_cents, row.version],
      [state.status, state.totalCents, state.paidCents, version],
    );
  }
  say('every row matches the aggregate loaded from its events');

  at('12:00');
  await run('1003', { type: 'Cancel', reason: 'out of spoons' });
  await subscription.caughtUp();
  say(`the subscription is live: order 1003 is now "${projection.get('1003')?.status}" in the read model`);
  assert.equal(projection.get('1003')?.status, 'cancelled');
  const kept = projection.position();
  say(`its position ${formatPositions(kept)} is kept in read-model.db, written with each row; the event store keeps none`);
  assert.equal(kept[0]?.offset, subscription.positions()[0]?.offset);
  assert.deepEqual(await store.subscriptions.position(ORDER_SUMMARY_GROUP), []);

  step('At-least-once delivery: the same event delivered twice is applied once.');
  let lastOf1001: RecordedEvent<OrderEvent> | undefined;
  for await (const e of store.readStream('order-1001')) lastOf1001 = e;
  assert.ok(lastOf1001);
  const before = projection.get('1001');
  const outcome = projection.apply(lastOf1001);
  say(`re-delivering ${lastOf1001.type} v${lastOf1001.version} of order-1001: ${outcome} (the row already has version ${before?.version})`);
  assert.equal(outcome, 'skipped');
  assert.deepEqual(projection.get('1001'), before);

  step(`Restart, then rewind the consumer group: "${ORDER_SUMMARY_GROUP}" replays every event from the beginning.`);
  const rowsBefore = projection.all();
  await subscription.stop();
  subscription = projection.start(store);
  await subscription.caughtUp();
  say(`restarted: it resumed at ${formatPositions(projection.position())} and handled ${subscription.processed} events (nothing new)`);
  assert.equal(subscription.processed, 0);
  await subscription.stop();
  projection.rewind();
  say(`position after rewind: ${formatPositions(projection.position())} (none: start over)`);
  assert.deepEqual(projection.position(), []);
  const skippedBefore = projection.skipped;
  subscription = projection.start(store);
  await subscription.caughtUp();
  const replayed = subscription.processed;
  say(`replayed ${replayed} events; ${projection.skipped - skippedBefore} were already reflected, so no row changed`);
  assert.equal(replayed, total + 1);
  assert.equal(projection.skipped - skippedBefore, replayed);
  assert.deepEqual(projection.all(), rowsBefore);
  say(`(to rebuild a read model from scratch: empty its tables and rewind its group, in one transaction)`);
  await subscription.stop();

  console.log(`\nAll ${currentStep()} steps behaved as expected. Last event written at ${clockTime(new Date(now))} (simulated clock).`);
}

try {
  await main();
} catch (error) {
  console.error(`\nStep ${currentStep()} did not go as expected:`);
  console.error(error);
  process.exitCode = 1;
} finally {
  await store.close();
  projection.close();
  if (keep) console.log(`kept: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
