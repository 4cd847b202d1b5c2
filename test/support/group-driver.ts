// The driver module of the consumer-group suite's worker process (src/testing/conformance/group-worker.ts)
// for this repository's backends. `arg` is `<backend>:<connection>`: `redis:<url>`,
// `kafka:<broker,broker…>`, `postgres:<url>` (the prefix is the schema) or `pulsar:<namespace>`
// (the broker of test/services/env.ts).
import type { EventStoreDriver } from '../../src/index.ts';
import { kafka } from '../../src/backends/kafka/index.ts';
import { postgres } from '../../src/backends/postgres/index.ts';
import { pulsar } from '../../src/backends/pulsar/index.ts';
import { redis } from '../../src/backends/redis/index.ts';
import { PULSAR_SERVICE_URL, PULSAR_URL } from '../services/env.ts';

export function openDriver(prefix: string, backend = ''): EventStoreDriver {
  const colon = backend.indexOf(':');
  const [kind, connection] = [backend.slice(0, colon), backend.slice(colon + 1)];
  if (kind === 'redis') return redis({ url: connection, prefix, partitions: 2 });
  if (kind === 'postgres') return postgres({ connectionString: connection, schema: prefix });
  // The same group timings as test/backends/kafka/consumer-groups.test.ts: the broker's floor for session timeouts is 6 s.
  if (kind === 'kafka')
    return kafka({
      brokers: connection.split(','),
      prefix,
      partitions: 2,
      consumerGroups: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 300 },
    });
  if (kind === 'pulsar')
    return pulsar({ serviceUrl: PULSAR_SERVICE_URL, adminUrl: PULSAR_URL, namespace: connection, prefix, partitions: 2 });
  throw new Error(`unknown backend ${backend}`);
}
