// Child process for the projector tests: runs one kafkaProjector instance that writes one
// record per event to an output topic, prints JSON lines ({ started }, { handled } every 50
// handler calls, then { caughtUp, … }),
// then closes the store (not the projector: closing the store must close it) and exits on its
// own, so a leaked client shows up as a worker that never exits.
//   node projector-worker.ts <brokers> <prefix> <group> <output> <instance>
// Env: PROJECTOR_KILL=second-partition  SIGKILL itself on the first event of the second
//        partition it handles, so the first partition's records are in the open transaction;
//      PROJECTOR_DELAY_MS=n  sleep n ms in each handler call (keeps transactions open longer).
import { createEventStore } from '../../../src/index.ts';
import { kafka, kafkaProjector } from '../../../src/backends/kafka/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';

const [brokers, prefix, group, output, instance] = process.argv.slice(2);
const kill = process.env.PROJECTOR_KILL;
const delayMs = Number(process.env.PROJECTOR_DELAY_MS ?? '0');

const store = createEventStore({
  driver: kafka({ brokers: brokers!.split(','), prefix: prefix!, partitions: 4 }),
  events: [Deposited, Withdrawn],
});
let firstPartition: number | undefined;
let handled = 0;
const projector = kafkaProjector(store, {
  group: group!,
  instance: instance!,
  batchSize: 200,
  createOutputs: { partitions: 3 },
  transactionTimeoutMs: 20_000,
  handle: async (event) => {
    firstPartition ??= event.position.partition;
    if (kill === 'second-partition' && event.position.partition !== firstPartition) {
      process.stdout.write(`${JSON.stringify({ killing: true, partition: event.position.partition })}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    if (++handled % 50 === 0) process.stdout.write(`${JSON.stringify({ handled })}\n`);
    const signed = event.type === 'Deposited' ? event.data.amount : -event.data.amount;
    return {
      topic: output!,
      key: event.streamId,
      value: JSON.stringify({ id: event.id, streamId: event.streamId, version: event.version, signed }),
    };
  },
});
await projector.started;
process.stdout.write(`${JSON.stringify({ started: true })}\n`);
await projector.caughtUp();
process.stdout.write(`${JSON.stringify({ caughtUp: true, processed: projector.processed, deadLettered: projector.deadLettered })}\n`);
await store.close();
await projector.done;
