// A read model: one "order summary" row per order, in its own SQLite database (a read model
// usually lives apart from the events, often in another kind of database). It is fed by a
// subscription with a consumer group, so it catches up on history, then follows live appends,
// and resumes where it stopped after a restart.
//
// The group's position lives here, in the read model's database, not in the event store
// (`positions` of `store.subscribe`): each event's row change and its position are written in
// one transaction, so a crash can never keep one without the other.
//
// Delivery can still repeat: a rewind replays history, and anyone may hand the projection an
// old event. The projection is therefore idempotent: every row remembers the stream version
// it reflects, and the upsert only wins when the event is newer
// (`WHERE excluded.version > orders.version`).
import { DatabaseSync } from 'node:sqlite';
import type { EventStore, Position, PositionStore, RecordedEvent, Subscription } from '../../src/index.ts';
import type { OrderEvent } from './events.ts';
import { orderIdOf } from './order.ts';

/** The consumer group's name: its position is kept in the read model's `positions` table. */
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
-- How far the group got in each partition of the store, written in the same transaction as
-- the row change of the event at that position.
CREATE TABLE IF NOT EXISTS positions (
  group_name TEXT    NOT NULL,
  partition  INTEGER NOT NULL,
  offset     INTEGER NOT NULL,
  PRIMARY KEY (group_name, partition)
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
    return store.subscribe({ group: ORDER_SUMMARY_GROUP, positions: this.#positionStore, handler: (event) => void this.apply(event) });
  }

  /** The subscription reads its position from here; `apply` has already written it. */
  readonly #positionStore: PositionStore = {
    load: async () => {
      const saved = this.position();
      return saved.length > 0 ? saved : undefined; // undefined: a new group, start from the beginning
    },
    save: async () => undefined, // written by `apply`, in the row's transaction
  };

  /**
   * Folds one event into its row, in one transaction with the group's position. Returns
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
      // max(): an old event handed in again never moves the position back.
      db.prepare(
        `INSERT INTO positions (group_name, partition, offset) VALUES (?, ?, ?)
         ON CONFLICT (group_name, partition) DO UPDATE SET offset = max(offset, excluded.offset)`,
      ).run(ORDER_SUMMARY_GROUP, event.position.partition, event.position.offset);
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

  /** The group's position: the last event folded in, per partition of the store. */
  position(): Position[] {
    const query = this.#db.prepare('SELECT partition, offset FROM positions WHERE group_name = ? ORDER BY partition');
    query.setReadBigInts(true); // offsets are 64-bit
    return (query.all(ORDER_SUMMARY_GROUP) as { partition: bigint; offset: bigint }[]).map((r) => ({
      partition: Number(r.partition),
      offset: r.offset,
    }));
  }

  /** Forgets the group's position (with its subscription stopped): the next `start` replays everything. */
  rewind(): void {
    this.#db.prepare('DELETE FROM positions WHERE group_name = ?').run(ORDER_SUMMARY_GROUP);
  }

  close(): void {
    this.#db.close();
  }
}
