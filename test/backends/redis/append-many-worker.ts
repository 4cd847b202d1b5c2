// Child process for the appendMany race in append-many.test.ts. Connects, prints "ready", waits
// for a line on stdin, then for `durationMs` reads the versions of two of the given streams (a
// different pair each time, so every pair overlaps another) and appends to both in one
// appendMany expecting exactly those versions. Prints JSON on its last line: the batches it won
// (with the versions each stream went from and to), the event ids of the batches it lost to a
// version conflict, and how many conflicts it saw.
//   node append-many-worker.ts <redis url | cluster:<url,url…>> <prefix> <partitions> <worker> <durationMs> <stream,stream…>
import { createEventStore, ExpectedVersionConflictError } from '../../../src/index.ts';
import { redis } from '../../../src/backends/redis/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';

const [target, prefix, partitions, worker, durationArg, streamsArg] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
];
const driver = target.startsWith('cluster:')
  ? redis({
      cluster: {
        rootNodes: target
          .slice('cluster:'.length)
          .split(',')
          .map((url) => ({ url })),
      },
      prefix,
      partitions: Number(partitions),
    })
  : redis({ url: target, prefix, partitions: Number(partitions) });
const store = createEventStore({ driver, events: [Deposited, Withdrawn] });
const streams = streamsArg.split(',');
await store.streamVersion(streams[0]!); // connect before the start
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.pause();
const end = Date.now() + Number(durationArg);

const won: { batch: string; streams: { streamId: string; from: number; to: number }[] }[] = [];
const lost: { batch: string; eventIds: string[] }[] = [];
let conflicts = 0;
let attempt = 0;
for (; Date.now() < end; attempt++) {
  const first = (attempt + worker.charCodeAt(0)) % streams.length;
  const pair = [streams[first]!, streams[(first + 1) % streams.length]!];
  const versions = await Promise.all(pair.map((s) => store.streamVersion(s)));
  const batch = `${worker}-${attempt}`;
  const metadata = { metadata: { batch } };
  const requests = [
    { streamId: pair[0]!, events: [Deposited({ amount: 1 }, metadata)], expectedVersion: versions[0]! },
    { streamId: pair[1]!, events: [Deposited({ amount: 2 }, metadata), Withdrawn({ amount: 1 }, metadata)], expectedVersion: versions[1]! },
  ];
  try {
    const outcomes = await store.appendMany(requests);
    if (outcomes.some((o) => o.alreadyStored)) throw new Error(`batch ${batch} reported alreadyStored`);
    won.push({
      batch,
      streams: requests.map((r, i) => ({ streamId: r.streamId, from: r.expectedVersion, to: outcomes[i]!.nextExpectedVersion })),
    });
  } catch (error) {
    if (!(error instanceof ExpectedVersionConflictError)) throw error;
    const stale = requests.find((r) => r.streamId === error.streamId);
    if (!stale || stale.expectedVersion === error.actualVersion) throw new Error(`a conflict that is none: ${error.message}`);
    conflicts++;
    lost.push({ batch, eventIds: requests.flatMap((r) => r.events.map((e) => e.id)) });
  }
}
await store.close();
process.stdout.write(`${JSON.stringify({ worker, attempts: attempt, won, lost, conflicts })}\n`);
