// Child process for test/backends/pulsar/transaction-processes.test.ts. Prints JSON lines.
//   node transfer-worker.ts <driver options JSON> kill <streamA> <streamB>
//     begins an appendMany over the two streams (+666 each) and stops before END_TXN, printing
//     { began } after NEW_TXN and { sent } once every send has its receipt; the test SIGKILLs it.
//   node transfer-worker.ts <driver options JSON> append <streamA> <streamB>
//     appends to each stream at the version it reads; prints { versions, started, finished }.
//   node transfer-worker.ts <driver options JSON> transfers <worker> <accounts JSON> <loops> <perLoop> <startAt>
//     <loops> concurrent loops, each doing <perLoop> transfers (appendMany of a Withdrawn and a
//     Deposited, tagged with a transfer id) between two random accounts at the versions it
//     read, again on a conflict; prints { done, transfers, conflicts, fenced, errors }.
import { pulsar, type PulsarDriverOptions } from '../../../src/backends/pulsar/index.ts';
import { createEventStore, ExpectedVersionConflictError, PartitionFencedError } from '../../../src/index.ts';
import { accountEvents, Deposited, Withdrawn } from '../../conformance/fixtures.ts';
import { beforeCommit, beforeSends } from './txn-hooks.ts';

const [optionsArg, mode, ...args] = process.argv.slice(2);
const options = JSON.parse(optionsArg!) as PulsarDriverOptions;
const store = createEventStore({ driver: pulsar(options), events: accountEvents });
const print = (line: unknown): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};

if (mode === 'kill') {
  const [a, b] = args as [string, string];
  const [va, vb] = [await store.streamVersion(a), await store.streamVersion(b)];
  beforeSends(async () => {
    print({ began: Date.now() });
  });
  beforeCommit(async () => {
    print({ sent: Date.now() });
    await new Promise(() => undefined); // SIGKILLed here
  });
  await store.appendMany([
    { streamId: a, events: Deposited({ amount: 666 }), expectedVersion: va },
    { streamId: b, events: Deposited({ amount: 666 }), expectedVersion: vb },
  ]);
  print({ error: 'the appendMany returned although END_TXN never went out' });
} else if (mode === 'append') {
  const streams = args as [string, string];
  const started = Date.now();
  const versions: number[] = [];
  for (const s of streams) {
    const version = await store.streamVersion(s);
    versions.push((await store.append(s, Deposited({ amount: 1 }), { expectedVersion: version })).nextExpectedVersion);
  }
  print({ versions, started, finished: Date.now() });
} else if (mode === 'transfers') {
  const [worker, accountsArg, loops, perLoop, startAt] = args as [string, string, string, string, string];
  const accounts = JSON.parse(accountsArg) as string[];
  await store.streamVersion(accounts[0]!); // connect before the start line
  await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
  let transfers = 0;
  let conflicts = 0;
  let fenced = 0;
  const errors: string[] = [];
  const loop = async (l: number) => {
    for (let i = 0; i < Number(perLoop); i++) {
      const from = Math.floor(Math.random() * accounts.length);
      const to = (from + 1 + Math.floor(Math.random() * (accounts.length - 1))) % accounts.length;
      const amount = 1 + Math.floor(Math.random() * 9);
      const metadata = { transfer: `${worker}-${l}-${i}` };
      for (;;) {
        const [vf, vt] = await Promise.all([store.streamVersion(accounts[from]!), store.streamVersion(accounts[to]!)]);
        try {
          await store.appendMany([
            { streamId: accounts[from]!, events: Withdrawn({ amount }, { metadata }), expectedVersion: vf },
            { streamId: accounts[to]!, events: Deposited({ amount }, { metadata }), expectedVersion: vt },
          ]);
          transfers++;
          break;
        } catch (error) {
          if (error instanceof ExpectedVersionConflictError) conflicts++;
          else if (error instanceof PartitionFencedError) {
            fenced++; // nothing of it is visible: try again, but count it (the test wants none)
          } else {
            errors.push(String(error));
            break;
          }
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Number(loops) }, (_, l) => loop(l)));
  print({ done: true, transfers, conflicts, fenced, errors });
}
await store.close();
