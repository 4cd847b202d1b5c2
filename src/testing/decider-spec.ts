// given/when/then for a decider, in memory: fold the given events with `evolve`, `decide` the
// command, compare what it returned (or threw) with what the spec expects. No store, no I/O,
// no test runner: a failed spec throws an AssertionError, which node:test, vitest and jest report.
import type { AggregateDefinition, Decider } from '../core/aggregate.ts';
import { CommandRejectedError } from '../core/errors.ts';
import type { AnyEventType, Event } from '../core/event-type.ts';
import type { EventInput } from '../core/recorded-event.ts';
import {
  assertEvents,
  assertRejection,
  type ErrorClass,
  failedWithError,
  refuseAwait,
  rejectionOf,
  type SpecScene,
} from './spec-report.ts';

/** What a spec's `then` hands back, for checks of your own: the state after the new events, and the events. */
export interface DeciderOutcome<State, E extends Event> {
  readonly state: State;
  readonly events: readonly E[];
}

export interface DeciderSpec<State, E extends Event, Command> {
  /** The history: events folded with `evolve`, in order (constructed, or plain `{ type, data }`). */
  given(events: readonly EventInput<E>[]): DeciderGiven<State, E, Command>;
}

export interface DeciderGiven<State, E extends Event, Command> {
  when(command: Command): DeciderWhen<State, E>;
}

export interface DeciderWhen<State, E extends Event> {
  /**
   * Asserts `decide` returned exactly these events, in order: type and data, and metadata when
   * an expected event states some (ids are never compared). `[]`: the command changes nothing.
   */
  then(expected: readonly EventInput<E>[]): DeciderOutcome<State, E>;
  /** Asserts `decide` threw an instance of `error` (and, when given, with this message or one matching it). Returns it. */
  thenThrows<T extends Error>(error: ErrorClass<T>, message?: string | RegExp): T;
  /** Asserts `decide` threw an error with this message (exact), or one matching the pattern. */
  thenThrows(message: string | RegExp): Error;
}

/**
 * Specs for a decider or an aggregate definition (`defineAggregate`):
 *
 *     const spec = deciderSpec(order);
 *     spec.given([OrderPlaced({ … })]).when({ type: 'Ship', … }).then([OrderShipped({ … })]);
 *     spec.given([]).when({ type: 'Ship', … }).thenThrows(OrderRejectedError, /cannot ship/);
 *
 * With an aggregate definition, plain given events are validated by their event type's schema
 * and a decided event of a type the aggregate does not list is refused, as the repository does.
 */
export function deciderSpec<State, E extends Event, Command>(
  decider: Decider<State, E, Command> | AggregateDefinition<State, E, Command>,
): DeciderSpec<State, E, Command> {
  const types = eventTypesOf(decider);
  return {
    given(history) {
      const given = [...history].map((e) => toEvent(e, types));
      return {
        when(command) {
          const scene: SpecScene = { given, when: command, source: 'decide' };
          const run = (): { state: State; events: E[] } => {
            let state = given.reduce((s, e) => decider.evolve(s, e), decider.initialState());
            const decided = decider.decide(command, state);
            const events = (Array.isArray(decided) ? [...decided] : [decided]) as E[];
            for (const e of events) {
              if (types && !types.has(e.type)) {
                throw new CommandRejectedError(`${nameOf(decider)}.decide returned a ${e.type} event, not one of its events`);
              }
            }
            for (const e of events) state = decider.evolve(state, e);
            return { state, events };
          };
          return {
            // biome-ignore lint/suspicious/noThenProperty: given/when/then is the API; awaiting the unfinished spec is refused (refuseAwait)
            then(expected: readonly EventInput<E>[]) {
              if (typeof expected === 'function') refuseAwait('deciderSpec(…).given(…).when(…)');
              let outcome: { state: State; events: E[] };
              try {
                outcome = run();
              } catch (error) {
                failedWithError(scene, [...expected], error);
              }
              assertEvents(scene, [...expected], outcome.events);
              return outcome;
            },
            thenThrows(error: ErrorClass | string | RegExp, message?: string | RegExp) {
              let events: E[];
              try {
                events = run().events;
              } catch (thrown) {
                assertRejection(scene, rejectionOf(error, message), { threw: true, error: thrown });
                return thrown as never;
              }
              assertRejection(scene, rejectionOf(error, message), { threw: false, events });
              throw new Error('unreachable: assertRejection throws when nothing was thrown');
            },
          };
        },
      };
    },
  };
}

function eventTypesOf(decider: object): Map<string, AnyEventType> | undefined {
  const events = (decider as { events?: unknown }).events;
  if (!Array.isArray(events)) return undefined;
  return new Map((events as AnyEventType[]).map((t) => [t.type, t]));
}

const nameOf = (decider: object): string => {
  const name = (decider as { name?: unknown }).name;
  return typeof name === 'string' ? name : 'decider';
};

/** A given event as `evolve` sees it: constructed events as they are, plain ones validated (when the types are known) and given an id. */
function toEvent<E extends Event>(input: EventInput<E>, types: Map<string, AnyEventType> | undefined): E {
  if ('id' in input && typeof input.id === 'string' && 'metadata' in input && input.metadata !== undefined) return input as E;
  const type = types?.get(input.type);
  if (types && !type) throw new TypeError(`given: a ${input.type} event, which this aggregate does not fold`);
  const data = type ? type.parse(input.data) : input.data;
  return { type: input.type, data, id: input.id ?? crypto.randomUUID(), metadata: { ...input.metadata } } as unknown as E;
}
