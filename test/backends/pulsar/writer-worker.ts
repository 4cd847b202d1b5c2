// Child process for the Pulsar multi-process tests: appends to one shared stream until a
// deadline, each append expecting the version it just read. Prints one JSON line per
// acknowledged append ({ version, id }), then a summary line ({ done, conflicts, fenced }).
//   node writer-worker.ts <serviceUrl> <adminUrl> <namespace> <prefix> <worker> <startAt> <stopAt>
import { createEventStore, ExpectedVersionConflictError, PartitionFencedError } from '../../../src/index.ts';
import { pulsar } from '../../../src/backends/pulsar/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';

const [serviceUrl, adminUrl, namespace, prefix, worker, startAt, stopAt] = process.argv.slice(2);
const store = createEventStore({
  driver: pulsar({ serviceUrl: serviceUrl!, adminUrl: adminUrl!, namespace: namespace!, prefix: prefix!, partitions: 2 }),
  events: [Deposited, Withdrawn],
});
await store.streamVersion('account-shared'); // connect before the start line
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())));
let conflicts = 0;
let fenced = 0;
while (Date.now() < Number(stopAt)) {
  const version = await store.streamVersion('account-shared');
  const event = Deposited({ amount: 1 }, { metadata: { worker: worker! } });
  try {
    const outcome = await store.append('account-shared', event, { expectedVersion: version });
    process.stdout.write(`${JSON.stringify({ version: outcome.nextExpectedVersion, id: event.id, at: Date.now() })}\n`);
  } catch (error) {
    if (error instanceof ExpectedVersionConflictError) conflicts++;
    // The core gave up after several takeovers in a row: nothing of this append is visible.
    else if (error instanceof PartitionFencedError) fenced++;
    else throw error;
  }
}
await store.close();
process.stdout.write(`${JSON.stringify({ done: true, conflicts, fenced })}\n`);
