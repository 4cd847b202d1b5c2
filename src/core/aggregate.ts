import { arg } from './arguments.ts';
import type { Position, StoredSnapshot } from './driver.ts';
import { describe } from './arguments.ts';
import { CommandRejectedError, ExpectedVersionConflictError, InvalidArgumentError } from './errors.ts';
import type { AnyEventType, Event, EventOf } from './event-type.ts';
import type { StoreContext } from './store-context.ts';
import { errorMessage } from './errors.ts';
import { parseJson } from './json-codec.ts';
import type { RecordedEvent } from './recorded-event.ts';
import type { SnapshotPolicy } from './snapshot-policy.ts';
import { ATTR } from './telemetry.ts';

/**
 * An aggregate as a decider: pure functions, no I/O. `evolve` folds one event into the state,
 * `decide` turns a command and the current state into new events (or throws
 * `CommandRejectedError` to refuse it).
 */
export interface Decider<State, E extends Event, Command> {
  initialState(): State;
  evolve(state: State, event: E): State;
  decide(command: Command, state: State): E | readonly E[];
}

export interface SnapshotOptions<State> {
  readonly policy: SnapshotPolicy;
  /** Bump when the state's shape changes: snapshots of another version are ignored and rebuilt. Default 1. */
  readonly schemaVersion?: number;
  /** State to a JSON value. Default: the state itself (it must be JSON-shaped). */
  readonly serialize?: (state: State) => unknown;
  /** JSON value back to state. Default: the value itself. */
  readonly deserialize?: (json: unknown) => State;
}

export interface AggregateDefinition<State, E extends Event, Command> extends Decider<State, E, Command> {
  /** Stream category: the aggregate with id `42` lives in stream `<name>-42`. */
  readonly name: string;
  /** The event types this aggregate folds; any other type in its stream is an error. */
  readonly events: readonly AnyEventType[];
  readonly snapshot?: SnapshotOptions<State>;
}

/** Defines an aggregate; the event union is inferred from `events`, the state from `initialState`. */
export function defineAggregate<const Types extends readonly AnyEventType[], State, Command>(
  definition: { readonly events: Types } & Omit<AggregateDefinition<State, EventOf<Types>, Command>, 'events'>,
): AggregateDefinition<State, EventOf<Types>, Command> {
  assertAggregateDefinition(definition);
  return definition;
}

type LooseDefinition = Partial<Record<'name' | 'events' | 'initialState' | 'evolve' | 'decide', unknown>> & {
  snapshot?: Partial<Record<'policy' | 'schemaVersion' | 'serialize' | 'deserialize', unknown>>;
};

function assertAggregateDefinition(value: object): void {
  const definition = arg.object(value, 'aggregate definition') as LooseDefinition;
  if (typeof definition.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.]*$/.test(definition.name)) {
    throw new InvalidArgumentError(`aggregate name ${describe(definition.name)} must be letters, digits, "_" or "." (no "-")`);
  }
  const name = definition.name;
  arg.array(definition.events as unknown[], `${name}.events`);
  for (const fn of ['initialState', 'evolve', 'decide'] as const) arg.function(definition[fn] as () => unknown, `${name}.${fn}`);
  const snapshot = definition.snapshot;
  if (snapshot !== undefined) {
    arg.object(snapshot, `${name}.snapshot`);
    arg.function(snapshot.policy as () => unknown, `${name}.snapshot.policy`);
    arg.optional(snapshot.schemaVersion as number | undefined, (v) => arg.positiveInt(v, `${name}.snapshot.schemaVersion`));
    for (const fn of ['serialize', 'deserialize'] as const) {
      arg.optional(snapshot[fn] as (() => unknown) | undefined, (f) => arg.function(f, `${name}.snapshot.${fn}`));
    }
  }
}

export interface LoadedAggregate<State> {
  readonly state: State;
  /** Stream version the state reflects (0: no events yet). */
  readonly version: number;
  /** Position of the last folded event, when there is one. */
  readonly position: Position | undefined;
  /** Version covered by the snapshot the load started from, if it used one. */
  readonly snapshotVersion: number | undefined;
  /** When that snapshot was taken (ms since the epoch). */
  readonly snapshotTakenAt: number | undefined;
  /** Events folded on top of the snapshot (or from the start). */
  readonly eventsFolded: number;
}

export interface HandleOptions {
  /** Fail with a conflict unless the aggregate is at this version. */
  readonly expectedVersion?: number;
  /** On a version conflict, reload and decide again up to this many times. Default 0. */
  readonly retries?: number;
}

export interface HandleResult<State, E extends Event> {
  readonly state: State;
  readonly version: number;
  readonly events: readonly RecordedEvent<E>[];
  /** Times the command was decided: 1, plus one per version conflict retried. */
  readonly attempts: number;
  /** Version conflicts met and retried (`attempts - 1`). */
  readonly conflicts: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Loads, time-travels and changes aggregates of one definition over one store. */
export class AggregateRepository<State, E extends Event, Command> {
  readonly #store: StoreContext<E>;
  readonly #def: AggregateDefinition<State, E, Command>;
  readonly #types: ReadonlySet<string>;
  /** Loads in flight per stream: concurrent loads of one aggregate share one rebuild. */
  readonly #loading = new Map<string, Promise<LoadedAggregate<State>>>();

  constructor(store: StoreContext<E>, definition: AggregateDefinition<State, E, Command>) {
    assertAggregateDefinition(definition);
    this.#store = store;
    this.#def = definition;
    this.#types = new Set(definition.events.map((t) => t.type));
  }

  streamId(id: string): string {
    return `${this.#def.name}-${arg.string(id, 'id')}`;
  }

  /** Current state: snapshot (if any, of the current schema version) plus the events after it. */
  load(id: string): Promise<LoadedAggregate<State>> {
    const streamId = this.streamId(id);
    const running = this.#loading.get(streamId);
    if (running) return running;
    const load = this.#store.telemetry
      .span('eventfold.aggregate.load', 'internal', { [ATTR.aggregate]: this.#def.name, [ATTR.streamId]: streamId }, async (span) => {
        const loaded = await this.#load(streamId);
        span.setAttribute(ATTR.aggregateVersion, loaded.version);
        span.setAttribute(ATTR.eventsFolded, loaded.eventsFolded);
        if (loaded.snapshotVersion !== undefined) span.setAttribute(ATTR.snapshotVersion, loaded.snapshotVersion);
        return loaded;
      })
      .finally(() => this.#loading.delete(streamId));
    this.#loading.set(streamId, load);
    return load;
  }

  /** State as it was at a version, or at a point in time (events appended at or before it). */
  async loadAt(id: string, at: { version: number } | { time: Date }): Promise<LoadedAggregate<State>> {
    const streamId = this.streamId(id);
    arg.object(at, 'loadAt at');
    if ('version' in at) {
      arg.nonNegativeInt(at.version, 'at.version');
      const snapshot = await this.#readSnapshot(streamId);
      const base = snapshot && snapshot.version <= at.version ? snapshot : undefined;
      return this.#fold(streamId, base, { toVersion: at.version });
    }
    if (!('time' in at)) throw new InvalidArgumentError('loadAt at must be { version } or { time }');
    const until = arg.date(at.time, 'at.time').getTime();
    return this.#fold(streamId, undefined, { until });
  }

  /**
   * Load → decide → append with the loaded version as expected version. Another writer in
   * between makes the append fail with `ExpectedVersionConflictError`; with `retries` the
   * command is decided again on the fresh state.
   */
  async handle(id: string, command: Command, options?: HandleOptions): Promise<HandleResult<State, E>> {
    const streamId = this.streamId(id);
    const o = arg.options(options, 'handle options');
    const retries = arg.nonNegativeInt(o.retries ?? 0, 'retries');
    const expectedVersion = arg.optional(o.expectedVersion, (v) => arg.nonNegativeInt(v, 'expectedVersion'));
    const attributes = { [ATTR.aggregate]: this.#def.name, [ATTR.streamId]: streamId };
    return this.#store.telemetry.span('eventfold.aggregate.handle', 'internal', attributes, async (span) => {
      const result = await this.#handle(id, streamId, command, retries, expectedVersion, (attempts) =>
        span.setAttribute(ATTR.attempts, attempts),
      );
      span.setAttribute(ATTR.aggregateVersion, result.version);
      span.setAttribute(ATTR.commandEvents, result.events.length);
      return result;
    });
  }

  async #handle(
    id: string,
    streamId: string,
    command: Command,
    retries: number,
    expectedVersion: number | undefined,
    onAttempt: (attempts: number) => void,
  ): Promise<HandleResult<State, E>> {
    for (let attempt = 0; ; attempt++) {
      onAttempt(attempt + 1);
      const tried = { attempts: attempt + 1, conflicts: attempt };
      const loaded = await this.load(id);
      if (expectedVersion !== undefined && loaded.version !== expectedVersion) {
        throw new ExpectedVersionConflictError(streamId, expectedVersion, loaded.version);
      }
      const decided = this.#def.decide(command, loaded.state);
      const events = (Array.isArray(decided) ? decided : [decided]) as E[];
      if (events.length === 0) return { state: loaded.state, version: loaded.version, events: [], ...tried };
      for (const e of events) {
        if (!this.#types.has(e.type))
          throw new CommandRejectedError(`${this.#def.name}.decide returned a ${e.type} event, not one of its events`);
      }
      try {
        const outcome = await this.#store.append(streamId, events as never, { expectedVersion: loaded.version });
        let state = loaded.state;
        for (const e of outcome.events) state = this.#def.evolve(state, e);
        const result = { state, version: outcome.nextExpectedVersion, events: outcome.events, ...tried };
        await this.#maybeSnapshot(streamId, {
          state,
          version: result.version,
          position: outcome.events[outcome.events.length - 1]?.position,
          snapshotVersion: loaded.snapshotVersion,
          snapshotTakenAt: loaded.snapshotTakenAt,
        });
        return result;
      } catch (error) {
        if (error instanceof ExpectedVersionConflictError && attempt < retries && expectedVersion === undefined) continue;
        throw error;
      }
    }
  }

  async #load(streamId: string): Promise<LoadedAggregate<State>> {
    const snapshot = await this.#readSnapshot(streamId);
    const loaded = await this.#fold(streamId, snapshot, {});
    if (loaded.eventsFolded > 0) await this.#maybeSnapshot(streamId, loaded);
    return loaded;
  }

  async #fold(
    streamId: string,
    snapshot: { state: State; version: number; position: Position; takenAt: number } | undefined,
    limit: { toVersion?: number; until?: number },
  ): Promise<LoadedAggregate<State>> {
    let state = snapshot ? snapshot.state : this.#def.initialState();
    let version = snapshot?.version ?? 0;
    let position = snapshot?.position;
    let folded = 0;
    const range = {
      fromVersion: version + 1,
      ...(limit.toVersion === undefined ? {} : { toVersion: limit.toVersion }),
      // Lets a log backend scan the partition from the snapshot on, not from its start.
      ...(position ? { after: position } : {}),
    };
    if (limit.toVersion === undefined || limit.toVersion > version) {
      for await (const event of this.#store.readStream(streamId, range)) {
        if (limit.until !== undefined && event.time.getTime() > limit.until) break;
        if (!this.#types.has(event.type)) {
          throw new InvalidArgumentError(
            `stream "${streamId}" holds a ${event.type} event at version ${event.version}, which ${this.#def.name} does not fold`,
          );
        }
        state = this.#def.evolve(state, event);
        version = event.version;
        position = event.position;
        folded++;
      }
    }
    return { state, version, position, snapshotVersion: snapshot?.version, snapshotTakenAt: snapshot?.takenAt, eventsFolded: folded };
  }

  async #readSnapshot(streamId: string): Promise<{ state: State; version: number; position: Position; takenAt: number } | undefined> {
    const options = this.#def.snapshot;
    if (!options) return undefined;
    const stored = await this.#store.runtime.use((d) => d.readSnapshot(streamId, this.#def.name));
    if (!stored) return undefined;
    // A snapshot of another state shape is ignored: the state is rebuilt from events and the
    // next snapshot replaces it. Snapshots are a cache, never the source of truth.
    if (stored.schemaVersion !== (options.schemaVersion ?? 1)) return undefined;
    try {
      const json = parseJson(decoder.decode(stored.state));
      const state = options.deserialize ? options.deserialize(json) : (json as State);
      return { state, version: stored.version, position: stored.position, takenAt: stored.takenAt };
    } catch (error) {
      this.#store.onBackgroundError(new Error(`[eventfold] ignoring unreadable snapshot of "${streamId}": ${errorMessage(error)}`));
      return undefined;
    }
  }

  async #maybeSnapshot(
    streamId: string,
    current: {
      state: State;
      version: number;
      position: Position | undefined;
      snapshotVersion: number | undefined;
      snapshotTakenAt: number | undefined;
    },
  ): Promise<void> {
    const options = this.#def.snapshot;
    if (!options || !current.position) return;
    const since = current.version - (current.snapshotVersion ?? 0);
    if (since <= 0) return;
    let bytes: Uint8Array | undefined;
    const serialize = (): Uint8Array =>
      (bytes ??= encoder.encode(JSON.stringify(options.serialize ? options.serialize(current.state) : current.state)));
    const lastTaken = current.snapshotTakenAt;
    const now = Date.now();
    try {
      const take = options.policy({
        version: current.version,
        eventsSinceSnapshot: since,
        get stateBytes() {
          return serialize().byteLength;
        },
        msSinceSnapshot: lastTaken === undefined ? undefined : now - lastTaken,
      });
      if (!take) return;
      const snapshot: StoredSnapshot = {
        streamId,
        name: this.#def.name,
        schemaVersion: options.schemaVersion ?? 1,
        version: current.version,
        position: current.position,
        state: serialize(),
        takenAt: now,
      };
      await this.#store.runtime.use((d) => d.writeSnapshot(snapshot));
    } catch (error) {
      // The events are stored; a failed snapshot only costs a longer load next time.
      this.#store.onBackgroundError(error);
    }
  }
}
