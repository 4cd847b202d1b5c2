// given/when/then through a real store: the given events are appended to the aggregate's stream,
// the command is handled by the store's repository (load, decide, append), and the new events
// are read back from the store. The same spec then checks the whole path (codec, upcasting,
// snapshots, the driver) instead of the decider alone.
import type { AggregateDefinition, HandleOptions } from '../core/aggregate.ts';
import type { EventStore } from '../core/event-store.ts';
import type { Event } from '../core/event-type.ts';
import type { EventInput, RecordedEvent } from '../core/recorded-event.ts';
import { uniqueName } from './runner.ts';
import {
  assertEvents,
  assertRejection,
  type ErrorClass,
  failedWithError,
  refuseAwait,
  rejectionOf,
  type SpecScene,
} from './spec-report.ts';

export interface StoreOutcome<State, E extends Event> {
  /** The aggregate's state after the command, as the repository returned it. */
  readonly state: State;
  readonly version: number;
  /** The new events, as read back from the store. */
  readonly events: readonly RecordedEvent<E>[];
  readonly streamId: string;
}

export interface StoreSpec<State, E extends Event, Command> {
  /**
   * The history, appended to the aggregate's stream (with new ids, so one event object can
   * serve many specs). `id`: the aggregate id; default a fresh one per spec. The stream must
   * be empty before the spec: a spec that starts from unknown events proves nothing.
   */
  given(events: readonly EventInput<E>[], options?: { readonly id?: string }): StoreGiven<State, E, Command>;
}

export interface StoreGiven<State, E extends Event, Command> {
  when(command: Command, options?: HandleOptions): StoreWhen<State, E>;
}

export interface StoreWhen<State, E extends Event> {
  /** Asserts the store holds exactly these new events after the command (type and data; metadata when stated). */
  then(expected: readonly EventInput<E>[]): Promise<StoreOutcome<State, E>>;
  /** Asserts the command was rejected with an instance of `error` (and message), and that nothing was appended. */
  thenThrows<T extends Error>(error: ErrorClass<T>, message?: string | RegExp): Promise<T>;
  thenThrows(message: string | RegExp): Promise<Error>;
}

/**
 * Specs through a store: `await storeSpec(store, order).given([…]).when(command).then([…])`.
 * Any store works; an in-memory SQLite store (`sqlite()` from `eventfold/sqlite`) is the quick one.
 */
export function storeSpec<StoreEvent extends Event, State, E extends StoreEvent, Command>(
  store: EventStore<StoreEvent>,
  definition: AggregateDefinition<State, E, Command>,
): StoreSpec<State, E, Command> {
  const repository = store.aggregate(definition);
  return {
    given(history, options = {}) {
      const id = options.id ?? uniqueName('spec');
      const streamId = repository.streamId(id);
      const given = [...history];
      return {
        when(command, handleOptions) {
          const scene: SpecScene = { given, when: command, source: `the store (stream "${streamId}")` };
          /** Appends the history and handles the command; `newEvents` reads what the command appended. */
          const run = async () => {
            const before = await store.streamVersion(streamId);
            if (before !== 0) {
              throw new Error(
                `storeSpec: stream "${streamId}" already holds ${before} events; a spec starts from an empty stream (pick another id)`,
              );
            }
            if (given.length > 0) {
              const fresh = given.map((e) => ({ type: e.type, data: e.data, ...(e.metadata ? { metadata: e.metadata } : {}) }));
              await store.append(streamId, fresh as unknown as EventInput<StoreEvent>[], { expectedVersion: 'no_stream' });
            }
            const newEvents = async (): Promise<RecordedEvent<E>[]> => {
              const out: RecordedEvent<E>[] = [];
              for await (const e of store.readStream(streamId, { fromVersion: given.length + 1 })) out.push(e as RecordedEvent<E>);
              return out;
            };
            try {
              const result = await repository.handle(id, command, handleOptions);
              return { threw: false as const, result, events: await newEvents() };
            } catch (error) {
              return { threw: true as const, error, events: await newEvents() };
            }
          };
          return {
            // Not async: awaiting the unfinished spec calls then(resolve, reject), and only a synchronous throw rejects that await.
            // biome-ignore lint/suspicious/noThenProperty: given/when/then is the API; awaiting the unfinished spec is refused (refuseAwait)
            then(expected: readonly EventInput<E>[]) {
              if (typeof expected === 'function') refuseAwait('storeSpec(…).given(…).when(…)');
              return run().then((outcome) => {
                if (outcome.threw) failedWithError(scene, [...expected], outcome.error);
                assertEvents(scene, [...expected], outcome.events);
                return { state: outcome.result.state, version: outcome.result.version, events: outcome.events, streamId };
              });
            },
            async thenThrows(error: ErrorClass | string | RegExp, message?: string | RegExp) {
              const outcome = await run();
              const expected = rejectionOf(error, message);
              if (!outcome.threw) {
                assertRejection(scene, expected, { threw: false, events: outcome.events });
                throw new Error('unreachable: assertRejection throws when nothing was thrown');
              }
              assertRejection(scene, expected, { threw: true, error: outcome.error });
              // A rejected command must leave the stream as it was.
              assertEvents({ ...scene, source: `the store (stream "${streamId}") after the rejection` }, [], outcome.events);
              return outcome.error as never;
            },
          };
        },
      };
    },
  };
}
