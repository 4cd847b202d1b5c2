// Child process for test/backends/kafka/group-assignment.test.ts: one member of a `store.consume` group in
// a process (and store) of its own. Prints one JSON line per step on stdout:
//   {"started":true}                              the consumer runs (it joins on its first read)
//   {"handled":{"id","partition"}}                an event was handled (then acknowledged)
//   {"stopped":n}                                 on SIGTERM: stopped (left the group), n handled
//
//   node group-member-worker.ts <brokers> <prefix> <partitions> <group> <consumer>
import { createEventStore } from '../../../src/index.ts';
import { kafka } from '../../../src/backends/kafka/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';

const [brokers, prefix, partitions, group, consumer] = process.argv.slice(2);
const print = (line: unknown): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};

// The same group timings as test/backends/kafka/consumer-groups.test.ts: the broker's floor for session timeouts is 6 s.
const store = createEventStore({
  driver: kafka({
    brokers: brokers!.split(','),
    prefix: prefix!,
    partitions: Number(partitions),
    consumerGroups: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 300 },
  }),
  events: [Deposited, Withdrawn],
});
let handled = 0;
const running = store.consume({
  group: group!,
  consumer: consumer!,
  blockMs: 100,
  handler: (event) => {
    handled++;
    print({ handled: { id: event.id, partition: event.position.partition } });
  },
});
print({ started: true });
process.once('SIGTERM', () => {
  void (async () => {
    await running.stop();
    await store.close();
    print({ stopped: handled });
    process.exit(0);
  })();
});
