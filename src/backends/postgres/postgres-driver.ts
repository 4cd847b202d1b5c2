import pg from 'pg';
import type {
  AppendRequest,
  AppendResult,
  ConditionalAppendDriver,
  DriverCapabilities,
  Position,
  StoredEvent,
  StoredSnapshot,
  StreamPage,
  VersionRange,
} from '../../core/driver.ts';
import { AppendTooLargeError, DriverError } from '../../core/errors.ts';
import { sleep, untilAborted } from '../../core/sleep.ts';
import { type AppendCheck, appendKeys, appendResults, type PlannedRow, planAppend } from '../sql/append-plan.ts';
import { postgresDialect } from '../sql/dialect.ts';
import { type EventRow, eventSql, type SnapshotRow, snapshotParams, toStoredEvent, toStoredSnapshot } from '../sql/event-sql.ts';
import { PostgresConsumerGroups } from './consumer-groups.ts';
import { Listener } from './listener.ts';
import { PostgresNames } from './names.ts';
import { asBuffer, STABLE_BOUND } from './rows.ts';
import { createTables, INDEX_BITS, MAX_EVENTS_PER_WRITE, SCHEMA_VERSION } from './schema.ts';

export interface PostgresDriverOptions {
  /** `postgres://user:password@host:port/database?sslmode=…`. Without it, `pool` or pg's PG* environment variables say where. */
  readonly connectionString?: string;
  /** node-postgres `Pool` options, passed through: `ssl` (TLS), `user`/`password`, `host`, `max` connections, timeouts… */
  readonly pool?: pg.PoolConfig;
  /** Schema holding the store's tables (created on open). Default `eventfold`. */
  readonly schema?: string;
  /**
   * Longest a read waits for older transactions still running to finish when newer events are
   * already committed (see README "PostgreSQL"). After it, the read returns the stable prefix
   * only. Default 1000 ms.
   */
  readonly stableReadWaitMs?: number;
  /** Longest a live subscription waits for a notification before it looks again. Default 1000 ms. */
  readonly pollMs?: number;
}

const NAME = 'postgres';
/** int4 columns hold versions: clamp open-ended ranges to them. */
const MAX_INT4 = 2 ** 31 - 1;
const MASK = (1n << BigInt(INDEX_BITS)) - 1n;

/**
 * PostgreSQL through node-postgres: one partition whose offsets are ordered by writing
 * transaction. An append is one INSERT statement (atomic; several streams for `appendMany`)
 * after one read of the current versions and of the ids it carries; the unique constraints on
 * (stream, version) and on the event id settle races between writers: the loser retries its
 * check, which then reports the conflict or the duplicate. Reads of the log see only the
 * stable prefix (`STABLE_BOUND`); live subscriptions wake on NOTIFY.
 */
export class PostgresDriver implements ConditionalAppendDriver {
  readonly name = NAME;
  readonly partitions = 1;
  readonly concurrency = 'conditional-append';
  readonly capabilities: DriverCapabilities = { timeIndex: true };
  readonly names: PostgresNames;
  readonly consumerGroups: PostgresConsumerGroups;
  readonly #options: PostgresDriverOptions;
  readonly #config: pg.PoolConfig;
  readonly #sql: ReturnType<typeof eventSql>;
  #pool: pg.Pool | undefined;
  #listener: Listener | undefined;

  constructor(options: PostgresDriverOptions = {}) {
    this.#options = options;
    this.names = new PostgresNames(options.schema ?? 'eventfold');
    this.#sql = eventSql(postgresDialect, {
      events: this.names.events,
      snapshots: this.names.snapshots,
      offsetColumn: 'off',
      snapshotOffsetColumn: 'off',
      stableBound: STABLE_BOUND,
    });
    this.#config = {
      connectionTimeoutMillis: 10_000,
      ...options.pool,
      ...(options.connectionString === undefined ? {} : { connectionString: options.connectionString }),
    };
    this.consumerGroups = new PostgresConsumerGroups({
      names: this.names,
      query: (sql, params) => this.#query(sql, params),
      wait: (ms, signal) => this.#l.wait(ms, signal),
    });
  }

  async open(): Promise<void> {
    const pool = new pg.Pool(this.#config);
    pool.on('error', () => undefined); // an idle connection that breaks is dropped; the next query gets a fresh one
    try {
      await this.#createTables(pool);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    this.#pool = pool;
    this.#listener = new Listener(() => new pg.Client(this.#config), this.names.channel);
  }

  async close(): Promise<void> {
    await this.#listener?.close();
    await this.#pool?.end();
    this.#listener = undefined;
    this.#pool = undefined;
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    return (await this.#write([request]))[0]!;
  }

  async appendMany(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    return this.#write(requests);
  }

  async streamVersion(streamId: string, _partition?: number): Promise<number> {
    const { rows } = await this.#query<{ version: number }>(this.#sql.streamVersion, [streamId]);
    return rows[0]!.version;
  }

  /** By version, without the stable-prefix guard: a stream's versions only ever commit in order. */
  async readStream(streamId: string, _partition: number, range: VersionRange): Promise<StoredEvent[]> {
    const { rows } = await this.#query<EventRow>(this.#sql.readStream, [
      streamId,
      Math.min(range.fromVersion, MAX_INT4),
      Math.min(range.toVersion, MAX_INT4),
      range.limit,
    ]);
    return rows.map(toStoredEvent);
  }

  async readPartition(partition: number, range: { after: bigint | undefined; limit: number }): Promise<StoredEvent[]> {
    if (partition !== 0) return [];
    const after = String(range.after ?? -1n);
    await this.#settle(after);
    const { rows } = await this.#query<EventRow>(this.#sql.readLog, [after, range.limit]);
    return rows.map(toStoredEvent);
  }

  async partitionHead(partition: number): Promise<bigint | undefined> {
    if (partition !== 0) return undefined;
    await this.#settle('-1');
    const { rows } = await this.#query<{ head: string | null }>(this.#sql.head);
    return rows[0]!.head === null ? undefined : BigInt(rows[0]!.head);
  }

  async firstOffsetAtTime(partition: number, time: number): Promise<bigint | undefined> {
    if (partition !== 0) return undefined;
    const { rows } = await this.#query<{ first: string | null }>(this.#sql.firstAtTime, [Math.floor(time)]);
    return rows[0]!.first === null ? undefined : BigInt(rows[0]!.first);
  }

  async readSnapshot(streamId: string, name: string): Promise<StoredSnapshot | undefined> {
    const { rows } = await this.#query<SnapshotRow>(this.#sql.readSnapshot, [streamId, name]);
    return rows[0] && toStoredSnapshot(streamId, name, rows[0]);
  }

  async writeSnapshot(s: StoredSnapshot): Promise<void> {
    await this.#query(this.#sql.writeSnapshot, snapshotParams(s));
  }

  async readCheckpoint(group: string): Promise<readonly Position[] | undefined> {
    const { rows } = await this.#query<{ partitions: number[]; offsets: string[] }>(
      `SELECT partitions, offsets FROM ${this.names.checkpoints} WHERE group_name = $1`,
      [group],
    );
    const row = rows[0];
    if (!row) return undefined;
    return row.partitions.map((partition, i) => ({ partition, offset: BigInt(row.offsets[i]!) }));
  }

  /** One row per group, replaced whole: a seek may name fewer partitions than before. */
  async writeCheckpoint(group: string, positions: readonly Position[]): Promise<void> {
    await this.#query(
      `INSERT INTO ${this.names.checkpoints} (group_name, partitions, offsets) VALUES ($1, $2::integer[], $3::bigint[])
       ON CONFLICT (group_name) DO UPDATE SET partitions = excluded.partitions, offsets = excluded.offsets`,
      [group, positions.map((p) => p.partition), positions.map((p) => String(p.offset))],
    );
  }

  async deleteCheckpoint(group: string): Promise<void> {
    await this.#query(`DELETE FROM ${this.names.checkpoints} WHERE group_name = $1`, [group]);
  }

  /** See `EventStoreDriver.listStreams`: keyset pages in stream id order; the cursor is the page's last id. */
  async listStreams(page: { cursor: string | undefined; limit: number }): Promise<StreamPage> {
    const { rows } = await this.#query<{ stream_id: string; version: number }>(this.#sql.listStreams, [page.cursor ?? '', page.limit]);
    return {
      streams: rows.map((r) => ({ streamId: r.stream_id, partition: 0, version: r.version })),
      cursor: rows.length === page.limit ? rows[rows.length - 1]!.stream_id : undefined,
    };
  }

  async listCheckpointGroups(): Promise<string[]> {
    const { rows } = await this.#query<{ group_name: string }>(`SELECT group_name FROM ${this.names.checkpoints} ORDER BY group_name`);
    return rows.map((r) => r.group_name);
  }

  /** Resolves on a NOTIFY from an append (after the LISTEN is in place, the log is checked once), after `pollMs`, or on abort. */
  async waitForEvents(after: readonly Position[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const { armed, fired } = this.#l.wait(this.#options.pollMs ?? 1000, signal);
    await armed;
    const head = await this.partitionHead(0);
    const seen = after.find((p) => p.partition === 0)?.offset;
    if (head !== undefined && (seen === undefined || head > seen)) return;
    await untilAborted(fired, signal);
  }

  /** Checks, then inserts; a unique violation means another writer got there in between: check again. */
  async #write(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const events = requests.reduce((n, r) => n + r.events.length, 0);
    if (events > MAX_EVENTS_PER_WRITE) {
      throw new AppendTooLargeError(
        NAME,
        requests.map((r) => r.streamId),
        events,
      );
    }
    const keys = appendKeys(requests);
    for (let attempt = 1; ; attempt++) {
      const rows = planAppend(NAME, requests, await this.#check(keys));
      try {
        return await this.#insert(requests, rows);
      } catch (error) {
        const constraint = uniqueViolation(error);
        if (constraint === undefined || attempt >= 100) throw error;
      }
    }
  }

  /** Current versions of the streams and where any of the ids is stored already, in one statement. */
  async #check({ streams, ids }: { streams: string[]; ids: string[] }): Promise<AppendCheck> {
    const { rows } = await this.#query<{ kind: string; stream_id: string; version: number; id: string | null }>(
      `SELECT 'v' AS kind, s.stream_id, coalesce((SELECT max(version) FROM ${this.names.events} e WHERE e.stream_id = s.stream_id), 0) AS version,
              NULL::text AS id
         FROM unnest($1::text[]) AS s(stream_id)
       UNION ALL
       SELECT 'd', stream_id, version, id FROM ${this.names.events} WHERE id = ANY($2::text[])`,
      [streams, ids],
    );
    const versions = new Map<string, number>();
    const stored = new Map<string, { streamId: string; version: number }>();
    for (const row of rows) {
      if (row.kind === 'v') versions.set(row.stream_id, row.version);
      else stored.set(row.id!, { streamId: row.stream_id, version: row.version });
    }
    return { versions, stored };
  }

  /**
   * One INSERT of every row: atomic on its own, and the transaction id it takes (the high bits
   * of each offset) is drawn after the check above, so a stream's later versions always get
   * higher offsets.
   */
  async #insert(requests: readonly AppendRequest[], rows: readonly PlannedRow[]): Promise<AppendResult[]> {
    const { rows: inserted } = await this.#query<{ off: string }>(
      `INSERT INTO ${this.names.events} (off, id, stream_id, version, type, schema_version, codec, data, metadata, recorded_at)
       SELECT (pg_current_xact_id()::text::bigint << ${INDEX_BITS}) + t.idx, t.id, t.stream_id, t.version, t.type, t.schema_version,
              t.codec, t.data, t.metadata, t.recorded_at
         FROM unnest($1::integer[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::integer[], $7::text[], $8::bytea[], $9::text[],
                     $10::bigint[])
           AS t(idx, id, stream_id, version, type, schema_version, codec, data, metadata, recorded_at)
       RETURNING off`,
      [
        rows.map((_, i) => i),
        rows.map((r) => r.event.id),
        rows.map((r) => r.streamId),
        rows.map((r) => r.version),
        rows.map((r) => r.event.type),
        rows.map((r) => r.event.schemaVersion),
        rows.map((r) => r.event.codec),
        rows.map((r) => asBuffer(r.event.data)),
        rows.map((r) => r.event.metadata),
        rows.map((r) => r.event.time),
      ],
    );
    // RETURNING gives no order; the low bits of each offset are its row's index.
    const offsets: bigint[] = [];
    for (const { off } of inserted) {
      const offset = BigInt(off);
      offsets[Number(offset & MASK)] = offset;
    }
    return appendResults(requests, rows, offsets);
  }

  /**
   * Waits (up to `stableReadWaitMs`) while committed events after `after` lie beyond the stable
   * prefix, until the transactions older than the newest of them have finished (later commits
   * do not extend the wait). Without it a reader could miss what was just appended, and
   * acknowledged, whenever an older write was still in flight.
   */
  async #settle(after: string): Promise<void> {
    const { rows } = await this.#query<{ top: string | null; bound: string }>(
      `SELECT max(off) AS top, ${STABLE_BOUND} AS bound FROM ${this.names.events} WHERE off > $1`,
      [after],
    );
    const top = rows[0]!.top === null ? undefined : BigInt(rows[0]!.top);
    if (top === undefined || top < BigInt(rows[0]!.bound)) return;
    const deadline = performance.now() + (this.#options.stableReadWaitMs ?? 1000);
    for (let delay = 1; performance.now() < deadline; delay = Math.min(delay * 2, 20)) {
      await sleep(delay);
      const { rows: now } = await this.#query<{ bound: string }>(`SELECT ${STABLE_BOUND} AS bound`);
      if (BigInt(now[0]!.bound) > top) return;
    }
  }

  async #createTables(pool: pg.Pool): Promise<void> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      // Several processes may open a new store at once: one creates, the others wait and see it.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`eventfold:${this.names.schema}`]);
      const { rows } = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [this.names.info]);
      if (rows[0]!.t === null) {
        await client.query(createTables(this.names));
        await client.query(`INSERT INTO ${this.names.info} (version) VALUES ($1)`, [SCHEMA_VERSION]);
      } else {
        const { rows: info } = await client.query<{ version: number }>(`SELECT max(version) AS version FROM ${this.names.info}`);
        const version = info[0]?.version ?? 0;
        if (version > SCHEMA_VERSION) {
          throw new DriverError(
            NAME,
            `schema "${this.names.schema}" has table version ${version}, newer than this eventfold (${SCHEMA_VERSION})`,
          );
        }
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  #query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    if (!this.#pool) throw new DriverError(NAME, 'not connected');
    return this.#pool.query<R>(sql, params);
  }

  get #l(): Listener {
    if (!this.#listener) throw new DriverError(NAME, 'not connected');
    return this.#listener;
  }
}

/** The constraint a unique violation (SQLSTATE 23505) broke, or undefined for any other error. */
function uniqueViolation(error: unknown): string | undefined {
  if (error instanceof pg.DatabaseError && error.code === '23505') return error.constraint ?? 'unknown';
  return undefined;
}
