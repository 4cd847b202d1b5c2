// The facts of the orders domain. Each event type is defined once: a name, a zod schema
// (any Standard Schema validator works) and, when its shape changed over time, a schema
// version plus the upcasters that turn older stored payloads into the current shape.
import { z } from 'zod';
import { defineEvent, type EventOf } from '../../src/index.ts';

/** Money is kept in integer cents: no floating-point surprises. */
const cents = z.number().int().nonnegative();

const line = z.object({
  sku: z.string().min(1),
  quantity: z.number().int().positive(),
  unitPriceCents: cents,
});

export const OrderPlaced = defineEvent({
  type: 'OrderPlaced',
  schema: z.object({ customerId: z.string(), lines: z.array(line).min(1) }),
});

export const ItemAdded = defineEvent({
  type: 'ItemAdded',
  schema: line,
});

export const InventoryReserved = defineEvent({
  type: 'InventoryReserved',
  schema: z.object({ warehouse: z.string() }),
});

/**
 * Schema evolution. Version 1 stored `{ amount: 12.5 }` in dollars as a float; version 2 stores
 * integer cents and the payment method. Events written as v1 stay v1 on disk forever: when they
 * are read, the upcaster below turns them into v2, so the rest of the code only knows v2.
 */
export const PaymentReceived = defineEvent({
  type: 'PaymentReceived',
  schemaVersion: 2,
  schema: z.object({ amountCents: cents, method: z.enum(['card', 'invoice']) }),
  upcasters: {
    1: (v1) => {
      const { amount } = v1 as { amount: number };
      return { amountCents: Math.round(amount * 100), method: 'card' }; // v1 only took cards
    },
  },
});

/**
 * The v1 definition, as the first release of the app had it. A real app deletes it once v2
 * ships (the upcaster is all it needs); the demo keeps it to write a "last year" event.
 */
export const PaymentReceivedV1 = defineEvent({
  type: 'PaymentReceived',
  schema: z.object({ amount: z.number().positive() }),
});

export const OrderShipped = defineEvent({
  type: 'OrderShipped',
  schema: z.object({ carrier: z.string(), trackingNumber: z.string() }),
});

export const OrderCancelled = defineEvent({
  type: 'OrderCancelled',
  schema: z.object({ reason: z.string() }),
});

/** Every event type of the domain: what the store is allowed to write and read. */
export const orderEvents = [OrderPlaced, ItemAdded, InventoryReserved, PaymentReceived, OrderShipped, OrderCancelled] as const;

/** The same list as the first release had it (PaymentReceived at schema version 1). */
export const orderEventsV1 = [OrderPlaced, ItemAdded, InventoryReserved, PaymentReceivedV1, OrderShipped, OrderCancelled] as const;

/** The union of all order events, fully typed: `switch (event.type)` narrows `event.data`. */
export type OrderEvent = EventOf<typeof orderEvents>;
