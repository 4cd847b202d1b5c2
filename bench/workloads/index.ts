// Suites by backend, in the order a default run measures them.
import { comparisonTarget } from '../comparisons.ts';
import type { Suite } from '../target.ts';
import { describeKafka, preflightKafka, producerPerfTest } from './kafka-common.ts';
import { eventfoldKafka } from './kafka-eventfold.ts';
import { rawKafka } from './kafka-raw.ts';
import { describePostgres, preflightPostgres } from './postgres-common.ts';
import { eventfoldPostgres } from './postgres-eventfold.ts';
import { describePulsar, preflightPulsar } from './pulsar-common.ts';
import { eventfoldPulsar } from './pulsar-eventfold.ts';
import { pulsarProducePerf } from './pulsar-perf.ts';
import { rawPulsar } from './pulsar-raw.ts';
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
  pulsar: {
    name: 'pulsar',
    subject: eventfoldPulsar,
    baseline: rawPulsar,
    preflight: preflightPulsar,
    describe: describePulsar,
    limit: {
      title:
        "Pulsar's own Java client configured like `pulsar-perf produce` (pulsar-perf itself is not served here): the limit of this machine",
      notes: [
        "`pulsar-perf` is in org.apache.pulsar:pulsar-testclient, which the Maven repositories reachable from this machine do not serve, so the limit is Pulsar's own Java client (pulsar-client-original, the broker's jar) doing what `pulsar-perf produce` does: scripts/backends/pulsar-perf/PulsarProducePerf.java, compiled once with javac, run in its own JVM against the same broker, once, after all rounds of both targets",
        "It produces the bench's own JSON payloads (a random one of 1,000 per message, no key) with async sends to a partitioned topic of its own (8 partitions, round-robin, in a namespace with eventfold's policies: infinite retention, deduplication on), with pulsar-perf produce's producer defaults (batching on, 1 ms batch delay, at most 1,000 messages per batch, max pending 1,000 and 50,000 across partitions: its --max-outstanding and --max-outstanding-across-partitions) but unthrottled (pulsar-perf's default rate is 100 msg/s); a second run turns batching off, so each message is an entry, as both targets write them",
        'Its sends pipeline (many in flight, not awaited one by one): compare its records/s with the events/s of batch-100 appends, not with batch-1 appends; its latency is send() to ack of a message inside that pipeline (including the wait for a pending slot), not of an awaited call',
      ],
      run: pulsarProducePerf,
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
