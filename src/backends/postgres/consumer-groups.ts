import type pg from 'pg';
import type { ConsumerGroupDriver, ConsumerGroupPartition, DeadLetter, Delivery } from '../../core/driver.ts';
import type { PostgresNames } from './names.ts';
import { EVENT_COLUMNS, type EventRow, STABLE_BOUND, toStoredEvent } from './rows.ts';

export interface GroupContext {
  readonly names: PostgresNames;
  query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>>;
  /** The driver's LISTEN: resolves on the next append anywhere in the store, or after `ms`. */
  wait(ms: number, signal?: AbortSignal): { armed: Promise<void>; fired: Promise<void> };
}

type DeliveryRow = EventRow & { deliveries: number };

/**
 * Consumer groups in tables: a group's `cursor` is the last offset handed out (only ever inside
 * the stable prefix, so nothing is skipped); each handed-out event is an entry naming its
 * consumer until it is acknowledged (deleted) or dead-lettered (moved). An entry whose consumer
 * is NULL waits to be handed out again (a redriven dead letter). Every step is one statement.
 */
export class PostgresConsumerGroups implements ConsumerGroupDriver {
  readonly #ctx: GroupContext;
  constructor(ctx: GroupContext) {
    this.#ctx = ctx;
  }

  async ensureGroup(group: string, start: 'beginning' | 'end'): Promise<void> {
    const n = this.#ctx.names;
    await this.#ctx.query(
      `INSERT INTO ${n.groups} (group_name, cursor)
       SELECT $1, CASE WHEN $2 THEN (SELECT coalesce(max(off), -1) FROM ${n.events} WHERE off < ${STABLE_BOUND}) ELSE -1 END
       ON CONFLICT (group_name) DO NOTHING`,
      [group, start === 'end'],
    );
  }

  /** The group's cursor (-1: nothing handed out yet) and its entries still waiting for an ack. */
  async describeGroup(group: string): Promise<ConsumerGroupPartition[] | undefined> {
    const n = this.#ctx.names;
    const { rows } = await this.#ctx.query<{ cursor: string; pending: string }>(
      `SELECT g.cursor, (SELECT count(*) FROM ${n.entries} x WHERE x.group_name = g.group_name) AS pending
       FROM ${n.groups} g WHERE g.group_name = $1`,
      [group],
    );
    const row = rows[0];
    if (!row) return undefined;
    const cursor = BigInt(row.cursor);
    return [{ partition: 0, position: cursor < 0n ? undefined : cursor, pending: Number(row.pending) }];
  }

  /** Redriven entries first, then new events after the cursor; when there are none, waits for an append (up to `blockMs`) and looks once more. */
  async read(group: string, consumer: string, options: { limit: number; blockMs: number }): Promise<Delivery[]> {
    const first = await this.#readOnce(group, consumer, options.limit);
    if (first.length > 0 || options.blockMs <= 0) return first;
    const { armed, fired } = this.#ctx.wait(options.blockMs);
    await armed;
    const second = await this.#readOnce(group, consumer, options.limit);
    if (second.length > 0) return second;
    await fired;
    return this.#readOnce(group, consumer, options.limit);
  }

  async readPending(group: string, consumer: string, options: { limit: number }): Promise<Delivery[]> {
    return this.#take(group, consumer, 'consumer = $2', options.limit, []);
  }

  async claimIdle(group: string, consumer: string, options: { minIdleMs: number; limit: number }): Promise<Delivery[]> {
    return this.#take(group, consumer, 'consumer IS NOT NULL AND delivered_at <= $5', options.limit, [
      Date.now() - Math.floor(options.minIdleMs),
    ]);
  }

  async ack(group: string, deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await this.#ctx.query(`DELETE FROM ${this.#ctx.names.entries} WHERE group_name = $1 AND off = ANY($2::bigint[])`, [
      group,
      deliveries.map((d) => d.receipt),
    ]);
  }

  async deadLetter(group: string, delivery: Delivery, reason: string): Promise<void> {
    const n = this.#ctx.names;
    await this.#ctx.query(
      `WITH acked AS (DELETE FROM ${n.entries} WHERE group_name = $1 AND off = $2)
       INSERT INTO ${n.deadLetters} (group_name, off, reason, deliveries, dead_at) VALUES ($1, $2, $3, $4, $5)`,
      [group, delivery.receipt, reason, delivery.deliveries, Date.now()],
    );
  }

  async listDeadLetters(group: string, limit: number): Promise<DeadLetter[]> {
    const n = this.#ctx.names;
    const { rows } = await this.#ctx.query<EventRow & { letter: string; reason: string; letter_deliveries: number; dead_at: string }>(
      `SELECT d.id AS letter, d.reason, d.deliveries AS letter_deliveries, d.dead_at, ${EVENT_COLUMNS}
         FROM ${n.deadLetters} d JOIN ${n.events} e ON e.off = d.off
        WHERE d.group_name = $1 ORDER BY d.dead_at, d.id LIMIT $2`,
      [group, limit],
    );
    return rows.map((r) => ({
      id: r.letter,
      event: toStoredEvent(r),
      reason: r.reason,
      deliveries: r.letter_deliveries,
      deadAt: Number(r.dead_at),
    }));
  }

  async redrive(group: string, ids: readonly string[] | undefined): Promise<number> {
    const n = this.#ctx.names;
    // Dead-letter ids are numbers; any other string names no letter.
    const wanted = ids?.filter((id) => /^[0-9]{1,18}$/.test(id));
    if (wanted && wanted.length === 0) return 0;
    const { rows } = await this.#ctx.query<{ moved: string }>(
      `WITH gone AS (DELETE FROM ${n.deadLetters} WHERE group_name = $1 AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[])) RETURNING off),
            back AS (INSERT INTO ${n.entries} (group_name, off, consumer, deliveries, delivered_at)
                     SELECT DISTINCT $1, off, NULL::text, 0, NULL::bigint FROM gone ON CONFLICT (group_name, off) DO NOTHING)
       SELECT count(*) AS moved FROM gone`,
      [group, wanted ?? null],
    );
    return Number(rows[0]!.moved);
  }

  async resetGroup(group: string, to: 'beginning' | 'end'): Promise<void> {
    const n = this.#ctx.names;
    await this.#ctx.query(
      `UPDATE ${n.groups}
          SET cursor = CASE WHEN $2 THEN (SELECT coalesce(max(off), -1) FROM ${n.events} WHERE off < ${STABLE_BOUND}) ELSE -1 END
        WHERE group_name = $1`,
      [group, to === 'end'],
    );
  }

  async #readOnce(group: string, consumer: string, limit: number): Promise<Delivery[]> {
    const redriven = await this.#take(group, consumer, 'consumer IS NULL', limit, []);
    if (redriven.length >= limit) return redriven;
    return [...redriven, ...(await this.#advance(group, consumer, limit - redriven.length))];
  }

  /**
   * Hands out the next events after the group's cursor and moves the cursor past them, in one
   * statement: the group's row is locked, so competing consumers never take the same events.
   */
  async #advance(group: string, consumer: string, limit: number): Promise<Delivery[]> {
    const n = this.#ctx.names;
    const { rows } = await this.#ctx.query<DeliveryRow>(
      `WITH g AS (SELECT cursor FROM ${n.groups} WHERE group_name = $1 FOR UPDATE),
            picked AS (SELECT e.off FROM ${n.events} e, g WHERE e.off > g.cursor AND e.off < ${STABLE_BOUND} ORDER BY e.off LIMIT $3),
            moved AS (UPDATE ${n.groups} SET cursor = (SELECT max(off) FROM picked)
                       WHERE group_name = $1 AND EXISTS (SELECT 1 FROM picked)),
            given AS (INSERT INTO ${n.entries} (group_name, off, consumer, deliveries, delivered_at)
                      SELECT $1, off, $2, 1, $4 FROM picked
                      ON CONFLICT (group_name, off) DO UPDATE
                        SET consumer = excluded.consumer, deliveries = ${n.entries}.deliveries + 1, delivered_at = excluded.delivered_at
                      RETURNING off, deliveries)
       SELECT ${EVENT_COLUMNS}, given.deliveries FROM given JOIN ${n.events} e ON e.off = given.off ORDER BY e.off`,
      [group, consumer, limit, Date.now()],
    );
    return rows.map(toDelivery);
  }

  /** Takes entries matching `where` for `consumer` (SKIP LOCKED: two takers never get one entry), counting a delivery each. */
  async #take(group: string, consumer: string, where: string, limit: number, extra: unknown[]): Promise<Delivery[]> {
    const n = this.#ctx.names;
    const { rows } = await this.#ctx.query<DeliveryRow>(
      `WITH taken AS (
         UPDATE ${n.entries} x SET consumer = $2, deliveries = x.deliveries + 1, delivered_at = $4
          WHERE x.group_name = $1 AND x.off IN (
            SELECT off FROM ${n.entries} WHERE group_name = $1 AND ${where} ORDER BY off LIMIT $3 FOR UPDATE SKIP LOCKED)
          RETURNING x.off, x.deliveries)
       SELECT ${EVENT_COLUMNS}, taken.deliveries FROM taken JOIN ${n.events} e ON e.off = taken.off ORDER BY e.off`,
      [group, consumer, limit, Date.now(), ...extra],
    );
    return rows.map(toDelivery);
  }
}

function toDelivery(row: DeliveryRow): Delivery {
  return { event: toStoredEvent(row), deliveries: row.deliveries, receipt: String(row.off) };
}
