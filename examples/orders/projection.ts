// A read model: one "order summary" row per order, in its own SQLite database (a read model
// usually lives apart from the events, often in another kind of database). It is fed by a
// subscription with a consumer group, so it catches up on history, then follows live appends,
// and resumes where it stopped after a restart.
//
// Delivery is at-least-once: after a crash, or after a group reset, events come again. The
// projection is therefore idempotent: every row remembers the stream version it reflects, and
// the upsert only wins when the event is newer (`WHERE excluded.version > orders.version`).
import { DatabaseSync } from 'node:sqlite';
import type { EventStore, RecordedEvent, Subscription } from '../../src/index.ts';
import type { OrderEvent } from './events.ts';
import { orderIdOf } from './order.ts';

/** The consumer group: its position is stored by the event store, per group name. */
export const ORDER_SUMMARY_GROUP = 'order-summary';

export interface OrderSummary {
  readonly order_id: string;
  readonly customer_id: string;
  readonly status: string;
  readonly item_count: number;
  readonly total_cents: number;
  readonly paid_cents: number;
  /** Stream version of the last event folded into this row: the idempotency guard. */
  readonly version: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS orders (
  order_id    TEXT PRIMARY KEY,
  customer_id TEXT    NOT NULL,
  status      TEXT    NOT NULL,
  item_count  INTEGER NOT NULL,
  total_cents INTEGER NOT NULL,
  paid_cents  INTEGER NOT NULL,
  version     INTEGER NOT NULL
);
-- How far the projection got, written in the same transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS projection_progress (
  group_name TEXT PRIMARY KEY,
  position   INTEGER NOT NULL,
  events     INTEGER NOT NULL
);
`;

/** The new row after one event: a pure function, easy to test on its own. */
export function summarize(row: OrderSummary | undefined, event: RecordedEvent<OrderEvent>): OrderSummary {
  const base: OrderSummary = row ?? {
    order_id: orderIdOf(event.streamId),
    customer_id: '',
    status: 'new',
    item_count: 0,
    total_cents: 0,
    paid_cents: 0,
    version: 0,
  };
  const next = { ...base, version: event.version };
  switch (event.type) {
    case 'OrderPlaced': {
      const { lines, customerId } = event.data;
      return {
        ...next,
        status: 'placed',
        customer_id: customerId,
        item_count: lines.reduce((n, l) => n + l.quantity, 0),
        total_cents: lines.reduce((n, l) => n + l.quantity * l.unitPriceCents, 0),
      };
    }
    case 'ItemAdded':
      return {
        ...next,
        item_count: base.item_count + event.data.quantity,
        total_cents: base.total_cents + event.data.quantity * event.data.unitPriceCents,
      };
    case 'InventoryReserved':
      return { ...next, status: 'reserved' };
    case 'PaymentReceived':
      return { ...next, status: 'paid', paid_cents: base.paid_cents + event.data.amountCents };
    case 'OrderShipped':
      return { ...next, status: 'shipped' };
    case 'OrderCancelled':
      return { ...next, status: 'cancelled' };
  }
}

export class OrderSummaryProjection {
  readonly #db: DatabaseSync;
  /** Events that changed a row / that were already reflected (re-deliveries). */
  applied = 0;
  skipped = 0;

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec('PRAGMA journal_mode = WAL');
    this.#db.exec(SCHEMA);
  }

  /** Starts (or resumes) the consumer group; `caughtUp()` on the result waits for history. */
  start(store: EventStore<OrderEvent>): Subscription<OrderEvent> {
    return store.subscribe({ group: ORDER_SUMMARY_GROUP, handler: (event) => void this.apply(event) });
  }

  /**
   * Folds one event into its row, in one transaction with the progress record. Returns
   * `'skipped'` when the row already reflects this event (a re-delivery): nothing changes.
   */
  apply(event: RecordedEvent<OrderEvent>): 'applied' | 'skipped' {
    const db = this.#db;
    db.exec('BEGIN IMMEDIATE');
    try {
      const current = this.get(orderIdOf(event.streamId));
      const row = summarize(current, event);
      const { changes } = db
        .prepare(
          `INSERT INTO orders (order_id, customer_id, status, item_count, total_cents, paid_cents, version)
           VALUES (:order_id, :customer_id, :status, :item_count, :total_cents, :paid_cents, :version)
           ON CONFLICT (order_id) DO UPDATE SET
             customer_id = excluded.customer_id, status = excluded.status, item_count = excluded.item_count,
             total_cents = excluded.total_cents, paid_cents = excluded.paid_cents, version = excluded.version
           WHERE excluded.version > orders.version`,
        )
        .run({ ...row });
      db.prepare(
        `INSERT INTO projection_progress (group_name, position, events) VALUES (?, ?, 1)
         ON CONFLICT (group_name) DO UPDATE SET position = max(position, excluded.position), events = events + 1`,
      ).run(ORDER_SUMMARY_GROUP, event.position.offset);
      db.exec('COMMIT');
      const outcome = Number(changes) > 0 ? 'applied' : 'skipped';
      this[outcome]++;
      return outcome;
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  }

  get(orderId: string): OrderSummary | undefined {
    return this.#db.prepare('SELECT * FROM orders WHERE order_id = ?').get(orderId) as OrderSummary | undefined;
  }

  all(): OrderSummary[] {
    return this.#db.prepare('SELECT * FROM orders ORDER BY order_id').all() as unknown as OrderSummary[];
  }

  /** Highest store position folded in, and how many deliveries the read model has seen. */
  progress(): { position: number; events: number } | undefined {
    return this.#db.prepare('SELECT position, events FROM projection_progress WHERE group_name = ?').get(ORDER_SUMMARY_GROUP) as
      | { position: number; events: number }
      | undefined;
  }

  close(): void {
    this.#db.close();
  }
}
