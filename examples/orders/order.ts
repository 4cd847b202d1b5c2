// The order aggregate, written as a decider: three pure functions and no I/O.
//   initialState() — an order before anything happened;
//   evolve(state, event) — folds one stored event into the state (never fails, never decides);
//   decide(command, state) — checks the business rules and returns the new events, or throws.
// The repository (`store.aggregate(order)`) does the I/O: load, decide, append with the loaded
// version as expected version, snapshot.
import { CommandRejectedError, defineAggregate, everyNEvents } from '../../src/index.ts';
import { InventoryReserved, ItemAdded, OrderCancelled, OrderPlaced, OrderShipped, PaymentReceived, orderEvents } from './events.ts';

export interface OrderLine {
  readonly sku: string;
  readonly quantity: number;
  readonly unitPriceCents: number;
}

export type OrderStatus = 'new' | 'placed' | 'reserved' | 'paid' | 'shipped' | 'cancelled';

/** Plain JSON on purpose: snapshots store the state as JSON. */
export interface OrderState {
  readonly status: OrderStatus;
  readonly customerId: string | null;
  readonly lines: readonly OrderLine[];
  readonly totalCents: number;
  readonly paidCents: number;
}

/** What callers can ask of an order: a discriminated union, so `decide` is type-checked per case. */
export type OrderCommand =
  | { readonly type: 'PlaceOrder'; readonly customerId: string; readonly lines: readonly OrderLine[] }
  | { readonly type: 'AddItem'; readonly line: OrderLine }
  | { readonly type: 'ReserveInventory'; readonly warehouse: string }
  | { readonly type: 'Pay'; readonly amountCents: number; readonly method: 'card' | 'invoice' }
  | { readonly type: 'Ship'; readonly carrier: string; readonly trackingNumber: string }
  | { readonly type: 'Cancel'; readonly reason: string };

/** Why an order refused a command: callers branch on `error.rule`, not on the message. */
export type OrderRule = 'already-placed' | 'not-open' | 'wrong-status' | 'order-cancelled' | 'wrong-amount' | 'already-shipped';

/**
 * A typed rejection. It extends eventfold's `CommandRejectedError`, so generic code still sees
 * `code === 'COMMAND_REJECTED'`; order-aware code also gets the rule that was broken.
 */
export class OrderRejectedError extends CommandRejectedError {
  readonly rule: OrderRule;
  constructor(rule: OrderRule, message: string) {
    super(message);
    this.rule = rule;
  }
}

const totalOf = (lines: readonly OrderLine[]): number => lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0);

// `defineAggregate` infers the event union from `events`, the state from `initialState` and the
// command from `decide`: `evolve` below gets fully typed events without any annotation.
export const order = defineAggregate({
  // Order `1001` lives in stream `order-1001`.
  name: 'order',
  events: orderEvents,
  // Every 10 new events the repository stores the state, so a load starts from there.
  snapshot: { policy: everyNEvents(10) },

  initialState: (): OrderState => ({ status: 'new', customerId: null, lines: [], totalCents: 0, paidCents: 0 }),

  evolve(state, event): OrderState {
    switch (event.type) {
      case 'OrderPlaced':
        return {
          ...state,
          status: 'placed',
          customerId: event.data.customerId,
          lines: event.data.lines,
          totalCents: totalOf(event.data.lines),
        };
      case 'ItemAdded': {
        const lines = [...state.lines, event.data];
        return { ...state, lines, totalCents: totalOf(lines) };
      }
      case 'InventoryReserved':
        return { ...state, status: 'reserved' };
      case 'PaymentReceived': // always the v2 shape here: v1 events were upcast on read
        return { ...state, status: 'paid', paidCents: state.paidCents + event.data.amountCents };
      case 'OrderShipped':
        return { ...state, status: 'shipped' };
      case 'OrderCancelled':
        return { ...state, status: 'cancelled' };
    }
  },

  decide(command: OrderCommand, state: OrderState) {
    switch (command.type) {
      case 'PlaceOrder':
        if (state.status !== 'new') throw new OrderRejectedError('already-placed', 'the order was already placed');
        return OrderPlaced({ customerId: command.customerId, lines: [...command.lines] });
      case 'AddItem':
        if (state.status !== 'placed')
          throw new OrderRejectedError('not-open', `items can only be added before reservation (order is ${state.status})`);
        return ItemAdded(command.line);
      case 'ReserveInventory':
        if (state.status !== 'placed') throw new OrderRejectedError('wrong-status', `cannot reserve an order that is ${state.status}`);
        return InventoryReserved({ warehouse: command.warehouse });
      case 'Pay':
        if (state.status === 'cancelled') throw new OrderRejectedError('order-cancelled', 'cannot pay a cancelled order');
        if (state.status !== 'reserved') throw new OrderRejectedError('wrong-status', `cannot pay an order that is ${state.status}`);
        if (command.amountCents !== state.totalCents) {
          throw new OrderRejectedError(
            'wrong-amount',
            `payment of ${command.amountCents} cents does not match the total of ${state.totalCents}`,
          );
        }
        return PaymentReceived({ amountCents: command.amountCents, method: command.method });
      case 'Ship':
        if (state.status !== 'paid') throw new OrderRejectedError('wrong-status', `cannot ship an order that is ${state.status}`);
        return OrderShipped({ carrier: command.carrier, trackingNumber: command.trackingNumber });
      case 'Cancel':
        if (state.status === 'shipped') throw new OrderRejectedError('already-shipped', 'cannot cancel a shipped order');
        if (state.status === 'cancelled') return []; // cancelling twice changes nothing
        return OrderCancelled({ reason: command.reason });
    }
  },
});

/** `order-1001` → `1001` (for read models that key rows by order id). */
export function orderIdOf(streamId: string): string {
  return streamId.slice('order-'.length);
}
