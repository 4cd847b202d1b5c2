import type { Position } from '../../core/driver.ts';
import type { EventStore } from '../../core/event-store.ts';
import type { Event } from '../../core/event-type.ts';
import type { RecordedEvent } from '../../core/recorded-event.ts';
import { sleep } from '../../core/sleep.ts';
import { storeContext } from '../../core/store-context.ts';
import { ATTR, type Telemetry } from '../../core/telemetry.ts';

/** Table of projection positions in a read-model database: one row per projection name. */
export const POSITIONS_TABLE = 'ef_projection_positions';

/** Table naming which version of each projection readers see (through views). */
export const ACTIVE_TABLE = 'ef_projection_active';

/** Switching readers to a version: its tables become the views' targets. */
export interface ProjectionSwitch {
  readonly version: number;
  /** Reader-facing names (`name` or `schema.name`); each is a view of `<name>_v<version>`. */
  readonly tables: readonly string[];
}

/** How a read-model database runs a projection's transactions (SQLite and PostgreSQL each have one). */
export interface ProjectionTarget<Tx> {
  /** The read model's database, for telemetry (`eventfold.projection.target`). */
  readonly system: 'sqlite' | 'postgres';
  /** The stored position (JSON of `[partition, offset]` pairs), or undefined for a new projection. */
  load(key: string): Promise<string | undefined>;
  /** The version readers see now, if any. */
  active(name: string): Promise<number | undefined>;
  /**
   * Runs `fn` in one transaction, then stores `position()` under `key` and, with `switchTo`,
   * points the views at that version and records it as active; commits; rolls back when anything throws.
   */
  transaction(
    fn: (tx: Tx) => Promise<void>,
    key: string,
    position: () => string,
    switchTo?: { name: string } & ProjectionSwitch,
  ): Promise<void>;
}

/** What a handler knows besides the event: whether it is building a new version or serving live, and where its tables are. */
export interface ProjectionContext {
  /** `'rebuild'` while this version is built from the start (readers see another one, or none yet); `'live'` once readers see it. */
  readonly mode: 'rebuild' | 'live';
  readonly version: number;
  /** This version's table for a reader-facing name: `balances` → `balances_v2` (write here; readers read the view `balances`). */
  table(name: string): string;
}

export interface SqlProjectionLoop<E extends Event, Tx> {
  /** Names the projection's position row (with its version: `<name>.v<version>`). */
  readonly name: string;
  readonly handle: (event: RecordedEvent<E>, tx: Tx, context: ProjectionContext) => void | Promise<void>;
  /**
   * Version of the read model (default 1). A version newer than the one readers see is built
   * from the start into its own tables (`<table>_v<version>`) while the older one serves; once
   * it has caught up, one transaction points the views named in `tables` at it. A projector of
   * an older version stops by itself when it sees a newer one active.
   */
  readonly version?: number;
  /** Reader-facing table names that `version` switches (each a view of `<name>_v<version>`). Default none. */
  readonly tables?: readonly string[];
  /** Events per transaction. Default 100. */
  readonly batchSize?: number;
  /** Pause when caught up. Default 100 ms. */
  readonly pollMs?: number;
}

/** `balances` → `balances_v2`, `shop.balances` → `shop.balances_v2`. */
export function versionedTable(name: string, version: number): string {
  return `${name}_v${version}`;
}

/**
 * A read model fed by any event store: each batch of events is handled inside one transaction
 * of the read model's database that also stores the projection's position, so the rows and
 * the position commit together or not at all — a crash anywhere replays exactly the batch
 * whose commit did not happen, and nothing is applied twice.
 */
export class SqlProjection<E extends Event, Tx> {
  readonly done: Promise<void>;
  readonly #store: EventStore<E>;
  readonly #target: ProjectionTarget<Tx>;
  readonly #o: SqlProjectionLoop<E, Tx>;
  readonly #telemetry: Telemetry;
  readonly #stop = new AbortController();
  #idle: (() => void)[] = [];
  #caughtUp = false;
  #mode: 'rebuild' | 'live' = 'rebuild';

  constructor(store: EventStore<E>, target: ProjectionTarget<Tx>, options: SqlProjectionLoop<E, Tx>) {
    this.#store = store;
    this.#target = target;
    this.#o = options;
    this.#telemetry = storeContext(store).telemetry;
    this.done = this.#run();
    this.done.catch(() => undefined); // the caller sees it through `done`, `caughtUp` or `stop`
  }

  /** Resolves once the projection has handled everything the store had when it last looked; rejects if it stopped on an error. */
  caughtUp(): Promise<void> {
    if (this.#caughtUp) return Promise.resolve();
    return Promise.race([new Promise<void>((resolve) => this.#idle.push(resolve)), this.done]);
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.done;
  }

  get #version(): number {
    return this.#o.version ?? 1;
  }

  /** Whether this version is being built (`'rebuild'`) or is the one readers see (`'live'`). */
  get mode(): 'rebuild' | 'live' {
    return this.#mode;
  }

  /** The position stored with the read model. */
  async position(): Promise<Position[]> {
    const stored = await this.#target.load(`${this.#o.name}.v${this.#version}`);
    if (stored === undefined) return [];
    return (JSON.parse(stored) as [number, string][]).map(([partition, offset]) => ({ partition, offset: BigInt(offset) }));
  }

  get #key(): string {
    return `${this.#o.name}.v${this.#version}`;
  }

  #positionJson(positions: ReadonlyMap<number, Position>): string {
    return JSON.stringify([...positions.values()].map((p) => [p.partition, String(p.offset)]));
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    const batchSize = this.#o.batchSize ?? 100;
    while (!signal.aborted) {
      const active = await this.#target.active(this.#o.name);
      if (active !== undefined && active > this.#version) return; // a newer version serves now
      this.#mode = active === this.#version ? 'live' : 'rebuild';
      const positions = new Map((await this.position()).map((p) => [p.partition, p]));
      let batch: RecordedEvent<E>[] = [];
      let handled = 0;
      for await (const event of this.#store.readAll({ after: [...positions.values()], batchSize })) {
        batch.push(event);
        if (batch.length >= batchSize) {
          handled += await this.#apply(batch, positions);
          batch = [];
        }
        if (signal.aborted) return;
      }
      handled += await this.#apply(batch, positions);
      if (handled === 0 && this.#mode === 'rebuild') {
        // Caught up: readers switch to this version in one transaction, then it serves live.
        await this.#target.transaction(
          async () => undefined,
          this.#key,
          () => this.#positionJson(positions),
          {
            name: this.#o.name,
            version: this.#version,
            tables: this.#o.tables ?? [],
          },
        );
        this.#mode = 'live';
      }
      this.#caughtUp = handled === 0;
      if (this.#caughtUp) {
        for (const resolve of this.#idle.splice(0)) resolve();
        await sleep(this.#o.pollMs ?? 100, signal);
      }
    }
  }

  /** One transaction: the handler's writes for every event of the batch, then the position after it. */
  async #apply(batch: readonly RecordedEvent<E>[], positions: Map<number, Position>): Promise<number> {
    if (batch.length === 0) return 0;
    const next = new Map(positions);
    const version = this.#version;
    const context: ProjectionContext = { mode: this.#mode, version, table: (name) => versionedTable(name, version) };
    const attributes = {
      [ATTR.operationType]: 'process',
      [ATTR.projection]: this.#o.name,
      [ATTR.projectionVersion]: version,
      [ATTR.projectionMode]: this.#mode,
      [ATTR.projectionTarget]: this.#target.system,
      [ATTR.eventCount]: batch.length,
    };
    await this.#telemetry.span('eventfold.projection.batch', 'consumer', attributes, () =>
      this.#target.transaction(
        async (tx) => {
          for (const event of batch) {
            await this.#o.handle(event, tx, context);
            next.set(event.position.partition, event.position);
          }
        },
        this.#key,
        () => this.#positionJson(next),
      ),
    );
    for (const [partition, p] of next) positions.set(partition, p);
    return batch.length;
  }
}
