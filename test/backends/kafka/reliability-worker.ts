// Child process for test/backends/kafka/reliability.test.ts: appends continuously to a set of streams of
// one Kafka store (one loop per stream, each append 1-3 events expecting the version the loop
// last saw) until the test SIGKILLs it. Prints one JSON line per step on stdout (a pipe, written
// synchronously on Linux, so a line printed is a line the test sees even when killed right after):
//   {"ready":{"versions":{stream:version}}}                   connected, versions read
//   {"try":{"append","stream","expected","ids"}}              before an append
//   {"ack":{"append","stream","version","ids"}}               the append was acknowledged (version = its last event's)
//   {"held":n}                                                hold mode: a commit is being held back (n so far)
//   {"error":{"append","stream","name","message"}}            an append failed (the loop reads the version again)
//
//   node reliability-worker.ts <brokers> <prefix> <partitions> <streams,comma,separated> <run|hold:N> <name>
//
// Mode `hold:N`: after N acknowledged appends, every transaction that reaches its commit is held
// there forever: its records are in the log, its EndTxn never sent. The test kills the process
// then, so at least one transaction is certainly open at the kill. This is done by wrapping the
// client library's Producer.beginTransaction in this process only; the driver is unchanged.
import { Producer } from '@platformatic/kafka';
import { createEventStore, ExpectedVersionConflictError } from '../../../src/index.ts';
import { kafka } from '../../../src/backends/kafka/index.ts';
import { Deposited, Withdrawn } from '../../conformance/fixtures.ts';

const [brokers, prefix, partitions, streamList, mode, name] = process.argv.slice(2);
const streams = streamList!.split(',');
const holdAfter = mode!.startsWith('hold:') ? Number(mode!.slice(5)) : undefined;

const print = (line: unknown): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};

let acks = 0;
let held = 0;
if (holdAfter !== undefined) {
  type Tx = { commit: (...args: unknown[]) => Promise<unknown> };
  const proto = Producer.prototype as unknown as { beginTransaction: (...args: unknown[]) => unknown };
  const begin = proto.beginTransaction;
  proto.beginTransaction = function (this: unknown, ...args: unknown[]): unknown {
    const result = begin.apply(this, args);
    if (typeof args[args.length - 1] === 'function') return result; // callback style: not used by the driver
    return (result as Promise<Tx>).then((tx) => {
      const commit = tx.commit.bind(tx);
      tx.commit = (...a: unknown[]) => {
        if (acks < holdAfter) return commit(...a);
        print({ held: ++held });
        return new Promise(() => undefined); // never committed: the kill finds it open
      };
      return tx;
    });
  };
}

const store = createEventStore({
  // Takeover on demand (routing: false): the test's new writer claims the partitions, which must
  // abort this process's open transaction at once. The transaction timeout is set far above what
  // the test allows, so a takeover that waited for the coordinator to time it out would show.
  driver: kafka({
    brokers: brokers!.split(','),
    prefix: prefix!,
    partitions: Number(partitions),
    routing: false,
    transactionTimeoutMs: 60_000,
  }),
  events: [Deposited, Withdrawn],
});
const versions: Record<string, number> = {};
for (const stream of streams) versions[stream] = await store.streamVersion(stream);
print({ ready: { versions } });

let sequence = 0;
async function loop(stream: string): Promise<void> {
  let version = versions[stream]!;
  for (;;) {
    const append = `${name}-${stream}-${++sequence}`;
    const size = 1 + (sequence % 3);
    const events = Array.from({ length: size }, (_, i) => Deposited({ amount: i + 1 }, { metadata: { append, size: String(size) } }));
    const ids = events.map((e) => e.id);
    print({ try: { append, stream, expected: version, ids } });
    try {
      const outcome = await store.append(stream, events, { expectedVersion: version });
      version = outcome.nextExpectedVersion;
      acks++;
      print({ ack: { append, stream, version, ids } });
    } catch (error) {
      print({ error: { append, stream, name: (error as Error).name, message: (error as Error).message.slice(0, 300) } });
      if (!(error instanceof ExpectedVersionConflictError)) await new Promise((r) => setTimeout(r, 20));
      version = await store.streamVersion(stream);
    }
  }
}
await Promise.all(streams.map((s) => loop(s)));
