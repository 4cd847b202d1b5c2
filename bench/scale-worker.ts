// One writer process of the scale bench (scale.ts): opens the store, joins the writer
// group with a first append, prints {"ready":true}, waits for the start time, then runs
// `inFlight` loops until the stop time, each doing plain appends to random streams or transfers
// (appendMany of a debit and a credit at the versions just read). Prints one JSON summary,
// with the CPU time the process used between the start and the stop time.
//   node bench/scale-worker.ts <json config>
import { subscribe } from 'node:diagnostics_channel';
import { z } from 'zod';
import { kafka, type KafkaDriverOptions } from '../src/backends/kafka/index.ts';
import { pulsar, type PulsarDriverOptions } from '../src/backends/pulsar/index.ts';
import { createEventStore, defineEvent, ExpectedVersionConflictError, PartitionFencedError } from '../src/index.ts';
import { benchEvent } from './target.ts';

interface Config {
  readonly driver:
    | { readonly backend: 'kafka'; readonly options: KafkaDriverOptions }
    | { readonly backend: 'pulsar'; readonly options: PulsarDriverOptions };
  readonly workload: 'appends' | 'transfers';
  readonly streams: number;
  readonly inFlight: number;
  readonly startAt: number;
  readonly stopAt: number;
}

const config = JSON.parse(process.argv[2]!) as Config;
const Deposited = defineEvent({ type: 'Deposited', schema: z.object({ amount: z.number(), note: z.string() }) });
const Withdrawn = defineEvent({ type: 'Withdrawn', schema: z.object({ amount: z.number(), note: z.string() }) });
const store = createEventStore({
  driver: config.driver.backend === 'kafka' ? kafka(config.driver.options) : pulsar(config.driver.options),
  events: [Deposited, Withdrawn],
});
await store.append(`warmup-${process.pid}`, Deposited(benchEvent(0)));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, config.startAt - Date.now())));
const cpuAtStart = process.cpuUsage();
// Kafka requests this process sends while measured, by API key: @platformatic/kafka publishes
// each request on a tracing channel, so counting needs no patching of the client.
const requests: Record<number, number> = {};
const countRequest = (message: unknown): void => {
  const apiKey = (message as { apiKey?: number }).apiKey;
  if (typeof apiKey === 'number' && Date.now() < config.stopAt) requests[apiKey] = (requests[apiKey] ?? 0) + 1;
};
subscribe('tracing:plt:kafka:connections:api:start', countRequest);

const latencies: number[] = [];
let conflicts = 0;
let fenced = 0;
let failed = 0;
const errors: string[] = [];
const pick = (): number => Math.floor(Math.random() * config.streams);
let i = 0;
async function loop(): Promise<void> {
  while (Date.now() < config.stopAt) {
    const started = performance.now();
    try {
      if (config.workload === 'appends') {
        await store.append(`acct-${pick()}`, Deposited(benchEvent(i++)));
      } else {
        const from = pick();
        let to = pick();
        while (to === from) to = pick();
        const [a, b] = [`acct-${from}`, `acct-${to}`];
        const [va, vb] = await Promise.all([store.streamVersion(a), store.streamVersion(b)]);
        await store.appendMany([
          { streamId: a, events: [Withdrawn(benchEvent(i++))], expectedVersion: va },
          { streamId: b, events: [Deposited(benchEvent(i++))], expectedVersion: vb },
        ]);
      }
      latencies.push(performance.now() - started);
    } catch (error) {
      if (error instanceof ExpectedVersionConflictError) conflicts++;
      else if (error instanceof PartitionFencedError) fenced++;
      else {
        failed++;
        if (errors.length < 3) errors.push(String(error));
      }
    }
  }
}
await Promise.all(Array.from({ length: config.inFlight }, loop));
const cpu = process.cpuUsage(cpuAtStart);
await store.close();
const cpuMs = (cpu.user + cpu.system) / 1000;
process.stdout.write(`${JSON.stringify({ done: true, latencies, conflicts, fenced, failed, errors, cpuMs, requests })}\n`);
