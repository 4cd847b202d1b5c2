// Event types and an aggregate shared by the conformance suites.
import { defineAggregate } from '../../core/aggregate.ts';
import { defineEvent } from '../../core/event-type.ts';
import { everyNEvents } from '../../core/snapshot-policy.ts';
import { object, optional, positiveInt, text, unknown } from './schema.ts';

export const Deposited = defineEvent({
  type: 'Deposited',
  schema: object({ amount: positiveInt(), note: optional(text({ maxLength: 2_000_000 })) }),
});
export const Withdrawn = defineEvent({
  type: 'Withdrawn',
  schema: object({ amount: positiveInt() }),
});
/** Registered only in the "wide" store, to test reading a type the reader does not know. */
export const Audited = defineEvent({ type: 'Audited', schema: object({ by: text() }) });

/** Version 1 of a renamed field, and version 2 with its upcaster. */
export const RenamedV1 = defineEvent({ type: 'Renamed', schema: object({ name: text() }) });
export const RenamedV2 = defineEvent({
  type: 'Renamed',
  schemaVersion: 2,
  schema: object({ firstName: text(), lastName: text() }),
  upcasters: {
    1: (v1) => {
      const [firstName = '', lastName = ''] = (v1 as { name: string }).name.split(' ');
      return { firstName, lastName };
    },
  },
});

export const accountEvents = [Deposited, Withdrawn] as const;

export type AccountCommand = { kind: 'deposit'; amount: number } | { kind: 'withdraw'; amount: number };

export function accountAggregate(snapshot?: { every: number; schemaVersion?: number }) {
  return defineAggregate({
    name: 'account',
    events: accountEvents,
    initialState: () => ({ balance: 0, operations: 0 }),
    evolve: (state, event) => {
      switch (event.type) {
        case 'Deposited':
          return { balance: state.balance + event.data.amount, operations: state.operations + 1 };
        case 'Withdrawn':
          return { balance: state.balance - event.data.amount, operations: state.operations + 1 };
      }
    },
    decide: (command: AccountCommand, _state) =>
      command.kind === 'deposit' ? Deposited({ amount: command.amount }) : Withdrawn({ amount: command.amount }),
    ...(snapshot
      ? { snapshot: { policy: everyNEvents(snapshot.every), ...(snapshot.schemaVersion ? { schemaVersion: snapshot.schemaVersion } : {}) } }
      : {}),
  });
}

/** A permissive payload (any value): only the codec's own rules stand between it and the log. */
export const Free = defineEvent({ type: 'Free', schema: unknown() });
