// The README's usage snippets as one runnable file (kept in step with README.md):
//   node examples/quickstart.ts
import { z } from 'zod';
import { CommandRejectedError, createEventStore, defineAggregate, defineEvent, everyNEvents } from '../src/index.ts';
import { sqlite } from '../src/backends/sqlite/index.ts';

export const Deposited = defineEvent({
  type: 'Deposited',
  schema: z.object({ amount: z.number().int().positive() }),
});
export const Withdrawn = defineEvent({
  type: 'Withdrawn',
  schemaVersion: 2, // payload shape v2; v1 events are upcast when read
  schema: z.object({ amountCents: z.number().int().positive() }),
  upcasters: { 1: (v1) => ({ amountCents: (v1 as { amount: number }).amount * 100 }) },
});

const store = createEventStore({
  driver: sqlite(), // in memory; sqlite({ path: 'events.db' }) for a file in WAL mode
  events: [Deposited, Withdrawn],
});

const { nextExpectedVersion } = await store.append('account-42', [Deposited({ amount: 10 })], {
  expectedVersion: 'no_stream',
});
console.log('appended, stream now at version', nextExpectedVersion);

for await (const e of store.readStream('account-42', { fromVersion: 1 })) {
  if (e.type === 'Deposited') console.log('read', e.type, e.data.amount, 'at version', e.version);
}

const Account = defineAggregate({
  name: 'account',
  events: [Deposited, Withdrawn],
  initialState: () => ({ balanceCents: 0 }),
  evolve: (state, event) =>
    event.type === 'Deposited'
      ? { balanceCents: state.balanceCents + event.data.amount * 100 }
      : { balanceCents: state.balanceCents - event.data.amountCents },
  decide: (command: { kind: 'withdraw'; cents: number }, state) => {
    if (command.cents > state.balanceCents) throw new CommandRejectedError('insufficient funds');
    return Withdrawn({ amountCents: command.cents });
  },
  snapshot: { policy: everyNEvents(100), schemaVersion: 1 },
});

const accounts = store.aggregate(Account);
await accounts.handle('42', { kind: 'withdraw', cents: 500 }, { retries: 3 });
const { state, version } = await accounts.load('42');
console.log('account 42:', state, 'at version', version);
try {
  await accounts.handle('42', { kind: 'withdraw', cents: 1_000_000 });
} catch (error) {
  if (!(error instanceof CommandRejectedError)) throw error;
  console.log('refused:', error.message);
}
console.log('at version 1:', (await accounts.loadAt('42', { version: 1 })).state);
await store.close();
