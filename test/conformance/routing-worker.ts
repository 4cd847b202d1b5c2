// Child process for the routed-append tests (routing-processes.ts): one writer process of a store,
// like one replica of a service. Until `stopAt` it runs `inFlight` loops, each doing either a
// transfer (appendMany of a Withdrawn and a Deposited between two random accounts, each at the
// version it just read) or a plain append to a random stream. Prints a JSON line per
// acknowledged append ({ ack: [{ stream, version, id }], at }), then a summary line.
//   node routing-worker.ts <json config>
import { kafka, type KafkaDriverOptions } from '../../src/backends/kafka/index.ts';
import { pulsar, type PulsarDriverOptions } from '../../src/backends/pulsar/index.ts';
import { createEventStore, ExpectedVersionConflictError, PartitionFencedError } from '../../src/index.ts';
import { Deposited, Withdrawn } from './fixtures.ts';

/** The driver of a worker, as JSON: which backend, and its options. */
export type WorkerDriver =
  | { readonly backend: 'kafka'; readonly options: KafkaDriverOptions }
  | { readonly backend: 'pulsar'; readonly options: PulsarDriverOptions };

interface Config {
  readonly driver: WorkerDriver;
  readonly mode: 'transfers' | 'appends';
  readonly accounts: number;
  readonly inFlight: number;
  readonly startAt: number;
  readonly stopAt: number;
}

const config = JSON.parse(process.argv[2]!) as Config;
const store = createEventStore({
  driver: config.driver.backend === 'kafka' ? kafka(config.driver.options) : pulsar(config.driver.options),
  events: [Deposited, Withdrawn],
});
const account = (i: number): string => `account-${i}`;
const pick = (): number => Math.floor(Math.random() * config.accounts);
// Join the writer group before the start line, as a running service would have.
await store.append(`warmup-${process.pid}`, Deposited({ amount: 1 }));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, config.startAt - Date.now())));

const summary = { ok: 0, conflicts: 0, fenced: 0, failed: 0, errors: [] as string[], latencies: [] as number[] };
async function loop(): Promise<void> {
  while (Date.now() < config.stopAt) {
    const started = performance.now();
    try {
      if (config.mode === 'transfers') {
        const from = pick();
        let to = pick();
        while (to === from) to = pick();
        const [vFrom, vTo] = await Promise.all([store.streamVersion(account(from)), store.streamVersion(account(to))]);
        const debit = Withdrawn({ amount: 1 });
        const credit = Deposited({ amount: 1 });
        const outcomes = await store.appendMany([
          { streamId: account(from), events: [debit], expectedVersion: vFrom },
          { streamId: account(to), events: [credit], expectedVersion: vTo },
        ]);
        const ack = [
          { stream: account(from), version: outcomes[0]!.nextExpectedVersion, id: debit.id },
          { stream: account(to), version: outcomes[1]!.nextExpectedVersion, id: credit.id },
        ];
        process.stdout.write(`${JSON.stringify({ ack, at: Date.now() })}\n`);
      } else {
        const stream = account(pick());
        const event = Deposited({ amount: 1 });
        const outcome = await store.append(stream, event);
        process.stdout.write(
          `${JSON.stringify({ ack: [{ stream, version: outcome.nextExpectedVersion, id: event.id }], at: Date.now() })}\n`,
        );
      }
      summary.ok++;
      summary.latencies.push(performance.now() - started);
    } catch (error) {
      if (error instanceof ExpectedVersionConflictError) summary.conflicts++;
      else if (error instanceof PartitionFencedError) summary.fenced++;
      else {
        summary.failed++;
        if (summary.errors.length < 5) summary.errors.push(String(error));
      }
    }
  }
}
await Promise.all(Array.from({ length: config.inFlight }, loop));
await store.close();
process.stdout.write(`${JSON.stringify({ done: true, ...summary })}\n`);
