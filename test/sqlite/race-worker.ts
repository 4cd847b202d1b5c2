// Child process for the cross-process race test: appends `rounds` events to one stream, each
// with the version it just read as expected version, retrying on conflict. Prints JSON stats.
import { createEventStore, ExpectedVersionConflictError } from '../../src/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';

const [path, worker, roundsArg, startAtArg] = process.argv.slice(2);
const rounds = Number(roundsArg);
const store = createEventStore({ driver: sqlite({ path: path!, busyTimeoutMs: 20_000 }), events: [Deposited, Withdrawn] });
await store.streamVersion('account-shared'); // open before the start line
// Both workers start at the same moment so that their appends really overlap.
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAtArg) - Date.now())));
let wins = 0;
let conflicts = 0;
while (wins < rounds) {
  const version = await store.streamVersion('account-shared');
  try {
    await store.append('account-shared', Deposited({ amount: 1 }, { metadata: { worker: worker! } }), { expectedVersion: version });
    wins++;
  } catch (error) {
    if (!(error instanceof ExpectedVersionConflictError)) throw error;
    conflicts++;
  }
}
await store.close();
process.stdout.write(JSON.stringify({ worker, wins, conflicts }));
