// Child process for the cross-process race tests: appends until it has won `rounds` versions
// of one stream, each append expecting the version it just read, retrying on conflict.
// Prints JSON: the versions it won and how many conflicts it saw.
//   node race-worker.ts sqlite <file> <worker> <rounds> <startAt>
//   node race-worker.ts redis <url> <prefix> <worker> <rounds> <startAt>
//   node race-worker.ts fenced-sqlite <file> <worker> <rounds> <startAt>
//   node race-worker.ts postgres <url> <schema> <worker> <rounds> <startAt>
import { createEventStore, ExpectedVersionConflictError, type EventStoreDriver } from '../../src/index.ts';
import { sqlite } from '../../src/backends/sqlite/index.ts';
import { redis } from '../../src/backends/redis/index.ts';
import { postgres } from '../../src/backends/postgres/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import { fencedSqlite } from './fenced-sqlite.ts';

const args = process.argv.slice(2);
const backend = args.shift();
let driver: EventStoreDriver;
if (backend === 'sqlite') driver = sqlite({ path: args.shift()!, busyTimeoutMs: 20_000 });
else if (backend === 'fenced-sqlite') driver = fencedSqlite(args.shift()!);
else if (backend === 'postgres') driver = postgres({ connectionString: args.shift()!, schema: args.shift()! });
else if (backend === 'redis') driver = redis({ url: args.shift()!, prefix: args.shift()!, partitions: 4 });
else throw new Error(`unknown backend ${backend}`);
const [worker, roundsArg, startAtArg] = args;
const rounds = Number(roundsArg);
const store = createEventStore({ driver, events: [Deposited, Withdrawn] });
await store.streamVersion('account-shared'); // connect before the start line
// Both workers start at the same moment so that their appends really overlap.
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAtArg) - Date.now())));
const won: number[] = [];
let conflicts = 0;
while (won.length < rounds) {
  const version = await store.streamVersion('account-shared');
  try {
    const outcome = await store.append('account-shared', Deposited({ amount: 1 }, { metadata: { worker: worker! } }), {
      expectedVersion: version,
    });
    won.push(outcome.nextExpectedVersion);
  } catch (error) {
    if (!(error instanceof ExpectedVersionConflictError)) throw error;
    conflicts++;
  }
}
await store.close();
process.stdout.write(JSON.stringify({ worker, won, conflicts }));
