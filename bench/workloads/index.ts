// Suites by backend, in the order a default run measures them. Add `pulsar` here with its own
// target files.
import { comparisonTarget } from '../comparisons.ts';
import type { Suite } from '../target.ts';
import { describeKafka, preflightKafka, producerPerfTest } from './kafka-common.ts';
import { eventfoldKafka } from './kafka-eventfold.ts';
import { rawKafka } from './kafka-raw.ts';
import { describePostgres, preflightPostgres } from './postgres-common.ts';
import { eventfoldPostgres } from './postgres-eventfold.ts';
import { rawPostgres } from './postgres-raw.ts';
import { countingForks, describeRedis, preflightRedis } from './redis-common.ts';
import { eventfoldRedis } from './redis-eventfold.ts';
import { rawRedis } from './redis-raw.ts';
import { eventfoldSqlite } from './sqlite-eventfold.ts';

// Emmett's SQLite event store comes from its own package (bench/comparisons/emmett-sqlite).
const emmettSqlite = comparisonTarget('emmett-sqlite', 'sqlite-emmett.ts', 'emmettSqlite');
// Emmett's PostgreSQL event store pins another Emmett (0.42.0): a package of its own too.
const emmettPostgres = comparisonTarget('emmett-postgresql', 'postgres-emmett.ts', 'emmettPostgres');

export const suites: Readonly<Record<string, Suite>> = {
  sqlite: { name: 'sqlite', subject: eventfoldSqlite, baseline: emmettSqlite.target, prepare: emmettSqlite.prepare },
  redis: {
    name: 'redis',
    subject: () => countingForks(eventfoldRedis()),
    baseline: () => countingForks(rawRedis()),
    preflight: preflightRedis,
    describe: describeRedis,
  },
  kafka: {
    name: 'kafka',
    subject: eventfoldKafka,
    baseline: rawKafka,
    preflight: preflightKafka,
    describe: describeKafka,
    limit: {
      title: "Kafka's own `kafka-producer-perf-test` (ProducerPerformance from the kafka-tools jar): the limit of this machine",
      notes: [
        "The tool runs in its own JVM against the same broker, once, after all rounds of both targets, on a topic of its own (8 partitions), with --throughput -1, acks=all, enable.idempotence=true, and a payload file of the bench's own JSON payloads (no key, no headers)",
        'Its producer pipelines: sends are not awaited one by one, records are batched (linger.ms, batch.size) and up to 5 requests are in flight, so compare its records/s with the events/s of batch-100 appends, not with batch-1 appends; its latency is send-to-ack of a record inside that pipeline, not of an awaited call',
        'It is a reference, not a strict ceiling: its records are small batches spread by the sticky partitioner (linger 5 ms) from a JVM that warms up during the run, while a 100-event append is one ready-made record batch to one partition, so raw batch-100 appends can beat it',
      ],
      run: producerPerfTest,
    },
  },
  // Two suites, so each table stays one pair measured in interleaved rounds: eventfold vs raw
  // node-postgres, and eventfold vs Emmett's PostgreSQL event store, on the same server.
  postgres: {
    name: 'postgres',
    subject: eventfoldPostgres,
    baseline: rawPostgres,
    preflight: preflightPostgres,
    describe: describePostgres,
  },
  'postgres-emmett': {
    name: 'postgres-emmett',
    subject: eventfoldPostgres,
    baseline: emmettPostgres.target,
    prepare: emmettPostgres.prepare,
    preflight: preflightPostgres,
    describe: describePostgres,
  },
};
