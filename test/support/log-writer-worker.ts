// Child process for the multi-process tests of the log backends (Kafka, Pulsar): appends to one
// shared stream until a deadline, each append expecting the version it just read. Prints one
// JSON line per acknowledged append ({ version, id, at }), then a summary line
// ({ done, conflicts, fenced }). A writer that has no ack by <stopAt> goes on until its first
// one or until <lastChance>: the tests ask that no writer starves, not that each wins within a
// fixed window on a loaded machine.
//   node log-writer-worker.ts <driver spec JSON> <worker> <startAt> <stopAt> <lastChance>
import { createEventStore, ExpectedVersionConflictError, PartitionFencedError } from '../../src/index.ts';
import { kafka } from '../../src/backends/kafka/index.ts';
import { pulsar } from '../../src/backends/pulsar/index.ts';
import { Deposited, Withdrawn } from '../conformance/fixtures.ts';
import type { LogWriterDriver } from './log-writers.ts';

const [specArg, worker, startAt, stopAt, lastChance] = process.argv.slice(2);
const spec = JSON.parse(specArg!) as LogWriterDriver;
const driver = spec.backend === 'kafka' ? kafka(spec.options) : pulsar(spec.options);
const store = createEventStore({ driver, events: [Deposited, Withdrawn] });
await store.streamVersion('account-shared'); // connect before the start line
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())));
let conflicts = 0;
let fenced = 0;
let acks = 0;
const goOn = () => Date.now() < Number(stopAt) || (acks === 0 && Date.now() < Number(lastChance));
while (goOn()) {
  const version = await store.streamVersion('account-shared');
  const event = Deposited({ amount: 1 }, { metadata: { worker: worker! } });
  try {
    const outcome = await store.append('account-shared', event, { expectedVersion: version });
    process.stdout.write(`${JSON.stringify({ version: outcome.nextExpectedVersion, id: event.id, at: Date.now() })}\n`);
    acks++;
  } catch (error) {
    if (error instanceof ExpectedVersionConflictError) conflicts++;
    // The core gave up after several takeovers in a row: nothing of this append is visible.
    else if (error instanceof PartitionFencedError) fenced++;
    else throw error;
  }
}
await store.close();
process.stdout.write(`${JSON.stringify({ done: true, conflicts, fenced })}\n`);
