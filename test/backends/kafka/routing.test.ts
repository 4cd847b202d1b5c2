// The routed-append process tests (test/conformance/routing-processes.ts) on the real Kafka broker.
import { after } from 'node:test';
import { kafka } from '../../../src/backends/kafka/index.ts';
import { runRoutingProcessesSuite } from '../../conformance/routing-processes.ts';
import { KAFKA_BROKERS, uniqueName } from '../../services/env.ts';
import { deleteStoreTopics } from './cleanup.ts';

const PARTITIONS = 8;
const SESSION_TIMEOUT_MS = 6000;
const prefixes: string[] = [];
after(() => deleteStoreTopics(prefixes, 'routing-test-cleanup'));

runRoutingProcessesSuite({
  name: 'kafka',
  partitions: PARTITIONS,
  uniqueName: (label) => uniqueName(`k${label}`),
  made: (prefix) => prefixes.push(prefix),
  worker: (prefix, kill) => ({
    backend: 'kafka',
    options: {
      brokers: KAFKA_BROKERS,
      prefix,
      partitions: PARTITIONS,
      ...(kill ? { routing: { sessionTimeoutMs: SESSION_TIMEOUT_MS } } : {}),
    },
  }),
  driver: (prefix) => kafka({ brokers: KAFKA_BROKERS, prefix, partitions: PARTITIONS }),
  // The group notices a dead member after its session timeout; then a takeover.
  recoveryMs: SESSION_TIMEOUT_MS + 4000,
});
